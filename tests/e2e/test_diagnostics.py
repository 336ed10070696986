"""runDiagnostics and getDiagnosticsData against the router image, through the
same entry points a management server uses: /opt/cloud/bin/diagnostics.py,
get_diagnostics_files.py and cleanup.sh, each command line run by a shell in
the lab's master router (``docker exec ... sh -c``), as the management
server's ssh session to port 3922 runs it (VirtualRoutingResource.executeInVR,
scripts/network/domr/router_proxy.sh); the zip is copied off the router as
the server's scp does, then removed.

Upstream (apache/cloudstack): systemvm/debian/opt/cloud/bin/diagnostics.py,
get_diagnostics_files.py, cleanup.sh; core/.../diagnostics/DiagnosticsAnswer.java;
server/.../diagnostics/fileprocessor/DiagnosticsFilesList.java.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import PurePosixPath

from vragent_lab.lab import OUTSIDE, TIERS, Lab

VM1 = f"{TIERS['eth2'][0]}.10"
PASSWORD = "E2e-Vm-Pw-8812"  # a VM password the router must keep out of the zip
DEFAULTS = ("iptables ipaddr iprule iproute /etc/cloudstack-release /etc/dnsmasq.conf "
            "/etc/dhcphosts.txt /etc/dnsmasq.d/cloud.conf /var/lib/misc/dnsmasq.leases "
            "/var/log/dnsmasq.log /etc/hosts /etc/resolv.conf /var/log/cloud.log "
            "/var/log/daemon.log")


def ssh(lab: Lab, router: str, line: str) -> tuple[int, str, str]:
    code, (out, err) = lab.container(router).exec_run(["sh", "-c", line], demux=True)
    return code, (out or b"").decode(), (err or b"").decode()


def answer(lab: Lab, router: str, args: str) -> dict[str, str]:
    """DiagnosticsAnswer.getExecutionDetails of diagnostics.py's output."""
    code, out, err = ssh(lab, router, f"/opt/cloud/bin/diagnostics.py {args}")
    assert code == 0, err
    parts = out.split("&&")
    assert len(parts) >= 3, out
    return {"stdout": parts[0].strip(), "stderr": parts[1].strip(), "exitcode": parts[2].strip()}


def test_diagnostics_run_through_the_management_servers_entry_points(lab: Lab) -> None:
    master = lab.wait_one_master()
    lab.apply(master, {"type": "vmpassword", "ip_address": VM1, "password": PASSWORD})

    ping = answer(lab, master, f"ping {VM1} -c 2 -i 0.2")
    assert ping["exitcode"] == "0" and "2 received" in ping["stdout"], ping
    trace = answer(lab, master, f"traceroute {OUTSIDE} -n -q 1 -w 2")
    assert trace["exitcode"] == "0", trace
    assert trace["stdout"].splitlines()[-1].split()[:2] == ["1", OUTSIDE], trace
    for target in (VM1, OUTSIDE):
        arp = answer(lab, master, f"arping {target} -c 2 -w 4")
        assert arp["exitcode"] == "0" and "Received 2 response(s)" in arp["stdout"], arp

    # Hostile arguments, quoted past the shell as the server's own checks would
    # let none through: refused, and nothing ran.
    for args in (f"ping {VM1} '$(touch /tmp/pwned)'", f"ping '{VM1};touch /tmp/pwned'",
                 f"ping {VM1} -f", f"arping {VM1} -U"):
        refused = answer(lab, master, args)
        assert refused["exitcode"] == "2" and refused["stdout"] == "", refused
        assert refused["stderr"].startswith("diagnostics.py: "), refused
    assert ssh(lab, master, "test -e /tmp/pwned")[0] == 1

    # getDiagnosticsData: the zip in /root, copied off as the server's scp does.
    code, out, err = ssh(lab, master, f"/opt/cloud/bin/get_diagnostics_files.py {DEFAULTS}")
    assert code == 0, err
    path = PurePosixPath(out.strip())
    assert str(path.parent) == "/root" and path.name.startswith("diagnostics_files_")
    stream, _ = lab.container(master).get_archive(str(path))
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile(path.name)
        assert member is not None
        data = member.read()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        members = {n: zf.read(n) for n in names}
    print("\nthe zip:\n" + "\n".join(f"  {len(members[n]):8d}  {n}" for n in names))
    assert {"iptables.log", "ipaddr.log", "iproute.log", "cloudstack-release", "dnsmasq.conf",
            "hosts", "resolv.conf", "cloud.log", "fileinfo.txt", "vragent/configuration.json",
            "vragent/etc/vragent/keepalived.conf", "vragent/var/log/vragent/agent.log"} \
        <= set(names)
    assert b"Cloudstack Release vragent-" in members["cloudstack-release"]
    for name, content in members.items():
        assert PASSWORD.encode() not in content, name
        assert PASSWORD.encode().hex().encode() not in content, name
    assert b"/var/log/daemon.logFile Not Found!!" in members["fileinfo.txt"]

    code, out, _ = ssh(lab, master, f"/opt/cloud/bin/cleanup.sh {path}")
    assert (code, out) == (0, f"Deleting diagnostics zip file {path}\n")
    assert ssh(lab, master, f"test -e {path}")[0] == 1
    code, _, err = ssh(lab, master, "/opt/cloud/bin/cleanup.sh /etc/cloudstack-release")
    assert code == 1 and "nothing removed" in err
    assert ssh(lab, master, "test -e /etc/cloudstack-release")[0] == 0
