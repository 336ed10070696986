"""CloudStack's diagnostics on a running router, called as its management
server calls them: the script's command line through a shell, in the
router's namespace, as the ssh session to port 3922 runs it
(VirtualRoutingResource.execute(DiagnosticsCommand / PrepareFilesCommand /
DeleteFileInVrCommand), scripts/network/domr/router_proxy.sh).

The router is the sample VPC as an appliance, with every secret a
management server sends: the router password and an API token in its boot
parameters, two site-to-site PSKs, a remote-access PSK and two users'
passwords, a load balancer's statistics password and TLS key, a VM's
password. (keepalived's authentication, which only a pair has, is in the
unit tests' zip: tests/unit/diagnostics/test_bundle.py.)

Upstream (apache/cloudstack): systemvm/debian/opt/cloud/bin/diagnostics.py,
get_diagnostics_files.py, cleanup.sh; core/.../diagnostics/DiagnosticsAnswer.java
(the answer split on "&&"); server/.../diagnostics/fileprocessor/DiagnosticsFilesList.java
(diagnostics.data.router.defaults).
"""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from vragent_lab.netns import OUTSIDE, VM1, in_ns, wait_for

from tests.unit.builders import lb_bag, tls_pair, vpn_bags

from .harness import ALL_BAGS, Router, vpc_lab
from .services.conftest import SERVICE_BAGS, Appliance

BIN = Path(sys.executable).parent
ROUTER_PASSWORD = "5517Rtr93k3yQ"  # VRRP carries letters and digits only
API_TOKEN = "api-" + "Zx9q" * 8
SECRETS = [ROUTER_PASSWORD, API_TOKEN, "psk-one", "psk-two", "l2tp-psk", "Alice-Pw-1",
           "Bob-Pw-2", "AdMiN123", "Lab-Pass-4711"]
KEY_LINES = [line for line in tls_pair()[1].splitlines() if line and "-----" not in line]
DEFAULTS = ("iptables,ipaddr,iprule,iproute,/etc/cloudstack-release,/etc/dnsmasq.conf,"
            "/etc/dhcphosts.txt,/etc/dhcpopts.txt,/etc/dnsmasq.d/cloud.conf,"
            "/etc/dnsmasq-resolv.conf,/var/lib/misc/dnsmasq.leases,/var/log/dnsmasq.log,"
            "/etc/hosts,/etc/resolv.conf,/etc/haproxy/haproxy.cfg,/var/log/haproxy.log,"
            "/etc/ipsec.d/l2tp.conf,/var/log/cloud.log,/var/log/routerServiceMonitor.log,"
            "/var/log/daemon.log").split(",")


def execution_details(details: str) -> dict[str, str]:
    """DiagnosticsAnswer.getExecutionDetails: split on "&&", three parts, trimmed."""
    parts = details.split("&&")
    assert len(parts) >= 3, f"Unsupported diagnostics command type supplied: {details!r}"
    return {"stdout": parts[0].strip(), "stderr": parts[1].strip(), "exitcode": parts[2].strip()}


def ssh(router: Router, script: str, args: str = "") -> subprocess.CompletedProcess[str]:
    """``/opt/cloud/bin/<script> <args>`` as one command line through a shell,
    in the router's namespace, as the management server's ssh runs it."""
    line = f"{BIN / script} {args}".strip()
    return subprocess.run(["ip", "netns", "exec", router.ns, "env",
                           f"VRAGENT_ROOT={router.root}", "sh", "-c", line],
                          capture_output=True, text=True, check=False, timeout=120)


def diagnose(router: Router, args: str) -> dict[str, str]:
    proc = ssh(router, "diagnostics.py", args)
    assert proc.returncode == 0, proc.stderr  # upstream's script exits 0 once it answered
    return execution_details(proc.stdout)


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    tmp = tmp_path_factory.mktemp("diag")
    with vpc_lab(tmp) as r:
        boot = r.root / "var/cache/cloud/cmd_line.json"
        doc = json.loads(boot.read_text())
        doc["cmd_line"].update({"router_password": ROUTER_PASSWORD, "api_token": API_TOKEN})
        boot.write_text(json.dumps(doc))
        # What the image has: its release line, a resolver, a root-only file.
        (r.root / "etc").mkdir()
        (r.root / "etc/cloudstack-release").write_text("Cloudstack Release vragent-test\n")
        (r.root / "etc/resolv.conf").write_text("nameserver 100.64.10.1\n")
        (r.root / "etc/shadow").write_text(f"root:{ROUTER_PASSWORD}:19000::::::\n")
        (r.root / "etc/shadow").chmod(0o640)
        app = Appliance(r)
        try:
            app.start()
            r.apply(*ALL_BAGS, *SERVICE_BAGS)
            secrets = tmp / "secrets.json"
            secrets.write_text(json.dumps([lb_bag(), *vpn_bags()]))  # a batch: a JSON array
            r.apply(secrets)
            wait_for(lambda: all(app.running(d) for d in ("dnsmasq", "haproxy", "charon")),
                     30, "dnsmasq, haproxy and charon to run")
            yield r
        finally:
            app.stop()


# -- diagnostics.py -------------------------------------------------------------------------


@pytest.mark.parametrize("target", [VM1, OUTSIDE], ids=["vm", "outside"])
def test_ping_answers_in_upstreams_layout(router: Router, target: str) -> None:
    details = diagnose(router, f"ping {target} -c 2 -i 0.2 -W 2")
    assert details["exitcode"] == "0", details
    assert f"PING {target}" in details["stdout"]
    assert "2 packets transmitted, 2 received" in details["stdout"]
    assert details["stderr"] == ""


@pytest.mark.parametrize("target", [VM1, OUTSIDE], ids=["vm", "outside"])
def test_traceroute_answers_in_upstreams_layout(router: Router, target: str) -> None:
    details = diagnose(router, f"traceroute {target} -n -q 1 -w 2")
    assert details["exitcode"] == "0", details
    lines = details["stdout"].splitlines()
    assert lines[0].startswith(f"traceroute to {target} ({target}), 20 hops max")  # -m 20
    assert lines[-1].split()[:2] == ["1", target], details  # one hop: directly connected


@pytest.mark.parametrize(("target", "dev"), [(VM1, "eth2"), (OUTSIDE, "eth1")],
                         ids=["vm", "outside"])
def test_arping_answers_in_upstreams_layout(router: Router, target: str, dev: str) -> None:
    details = diagnose(router, f"arping {target} -c 2 -w 4")
    assert details["exitcode"] == "0", details
    assert f"ARPING {target} from " in details["stdout"] and f" {dev}" in details["stdout"]
    assert "Received 2 response(s)" in details["stdout"]


def test_an_unreachable_address_is_the_tools_own_answer(router: Router) -> None:
    # 10.10.1.99: a free address of tier 1, nobody answers.
    details = diagnose(router, "ping 10.10.1.99 -c 1 -W 1")
    assert details["exitcode"] == "1"
    assert "1 packets transmitted, 0 received" in details["stdout"]


@pytest.mark.parametrize("args", [
    "'10.10.1.10;touch {mark}'",
    f"{VM1} '$(touch {{mark}})'",
    f"{VM1} '`touch {{mark}}`'",
    f"{VM1} -c '1;touch {{mark}}'",
    f"{VM1} -f",
    f"{VM1} --help",
    "not_an_address",
])
def test_hostile_arguments_run_nothing(router: Router, tmp_path: Path, args: str) -> None:
    mark = tmp_path / "ran"
    started = time.monotonic()
    details = diagnose(router, "ping " + args.format(mark=shlex.quote(str(mark))))
    assert details["exitcode"] == "2" and details["stdout"] == ""
    assert details["stderr"].startswith("diagnostics.py: "), details
    assert not mark.exists()
    assert time.monotonic() - started < 10  # refused at once, nothing ran


# -- get_diagnostics_files.py and cleanup.sh -------------------------------------------------


def test_the_zip_holds_upstreams_files_and_the_routers_own_and_no_secret(
        router: Router) -> None:
    proc = ssh(router, "get_diagnostics_files.py", " ".join([*DEFAULTS, "/etc/shadow"]))
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert proc.stdout == f"{path}\n" and path.parent == router.root / "root"
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        members = {n: zf.read(n) for n in names}
    print("\nthe zip:\n" + "\n".join(f"  {len(members[n]):8d}  {n}" for n in names))
    print("fileinfo.txt:\n" + members["fileinfo.txt"].decode())
    # No secret, in any form a file or log may carry it.
    for name, data in members.items():
        text = data.decode("utf-8", "replace")
        for secret in SECRETS:
            raw = secret.encode()
            for form in (secret, raw.hex(), base64.b64encode(raw).decode()):
                assert form not in text, f"{name} holds {secret!r} as {form!r}"
        for line in KEY_LINES:
            assert line not in text, f"{name} holds a line of the TLS key"
    # Upstream's commands and files, from where this router keeps them.
    assert {"iptables.log", "ipaddr.log", "iprule.log", "iproute.log", "cloudstack-release",
            "dnsmasq.conf", "dhcphosts.txt", "cloud.conf", "dnsmasq.log", "hosts", "resolv.conf",
            "haproxy.cfg", "haproxy.log", "cloud.log", "fileinfo.txt"} <= set(names)
    assert b"table inet vragent" in members["iptables.log"]
    assert b"10.10.1.1/24" in members["ipaddr.log"]
    assert b"dhcp-range" in members["dnsmasq.conf"]
    assert b"stats auth admin1:(secret, not shown)" in members["haproxy.cfg"]
    # The router's own: the configuration (redacted), the daemons' files, the logs.
    config = json.loads(members["vragent/configuration.json"])
    assert config["docs"]["site2sitevpn"] and config["docs"]["loadbalancer"]
    for member in ("vragent/etc/vragent/haproxy.cfg",
                   "vragent/etc/vragent/swanctl.conf", "vragent/etc/vragent/dnsmasq.conf",
                   "vragent/var/log/vragent/agent.log", "vragent/var/log/vragent/haproxy.log",
                   "vragent/var/log/vragent/charon.log"):
        assert member in names, member
    assert b"secret = (secret, not shown)" in members["vragent/etc/vragent/swanctl.conf"]
    info = members["fileinfo.txt"].decode()
    assert "ipsec-index.json Not Given!! holds secrets" in info
    assert "/etc/dhcpopts.txtFile Not Found!!" in info
    assert "/etc/shadow Not Given!! readable by its owner only" in info

    # cleanup.sh: that zip and nothing else.
    other = router.root / "etc/cloudstack-release"
    refused = ssh(router, "cleanup.sh", str(other))
    assert refused.returncode == 1 and "nothing removed" in refused.stderr and other.exists()
    done = ssh(router, "cleanup.sh", str(path))
    assert (done.returncode, done.stdout) == (0, f"Deleting diagnostics zip file {path}\n")
    assert not path.exists()
    again = ssh(router, "cleanup.sh", str(path))
    assert (again.returncode, again.stdout) == (0, f"File {path} not found in vm \n")


def test_the_router_keeps_running_its_services(router: Router) -> None:
    """Nothing of the above disturbed the router: it still answers its VMs."""
    out = in_ns(router.lab.ns("vm1"), ["ping", "-c", "1", "-W", "2", "10.10.1.1"], check=False)
    assert "1 received" in out
