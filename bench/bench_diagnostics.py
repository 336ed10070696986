"""Diagnostics benchmark: what the checks and the redaction cost, against
doing without them, in the same run on the same router.

    python bench/bench_diagnostics.py [--rounds R]

Runs as root (network namespaces). The sample VPC router runs as an
appliance (supervisord, the agent, dnsmasq, haproxy, charon) with every
secret a management server sends (the router password, VPN PSKs and users'
passwords, a load balancer's statistics password and TLS key, a VM's
password), as tests/integration/test_diagnostics.py sets it up.

a. ``diagnostics.py ping <vm> -c 1`` through a shell, as the management
   server's ssh runs it (median of R rounds), against the baseline
   ``ping -c 1 <vm>`` through the same shell: what the script adds (its
   interpreter's start, the allow-list, the answer).
b. ``get_diagnostics_files.py`` with diagnostics.data.router.defaults: the
   time, the zip's size and members; against the baseline of upstream's way,
   in the same namespace: the same four commands' output and the same
   files (the upstream paths as this router keeps them, the daemons'
   configuration files and logs) zipped as they are, nothing checked,
   redacted or scrubbed (median of R rounds each).

Printed: the times, the ratios a/baseline and b/baseline, the zip's size.
Every zip is searched for every secret (none may be found) and removed
with cleanup.sh, so a broken redaction cannot pass for a fast one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "compose")]

from vragent_lab.netns import VM1, wait_for  # noqa: E402

from tests.integration.harness import ALL_BAGS, vpc_lab  # noqa: E402
from tests.integration.services.conftest import SERVICE_BAGS, Appliance  # noqa: E402
from tests.unit.builders import lb_bag, vpn_bags  # noqa: E402

BIN = Path(sys.executable).parent
SECRETS = ["5517Rtr93k3yQ", "psk-one", "psk-two", "l2tp-psk", "Alice-Pw-1", "Bob-Pw-2",
           "AdMiN123", "Lab-Pass-4711"]
DEFAULTS = ("iptables ipaddr iprule iproute /etc/cloudstack-release /etc/dnsmasq.conf "
            "/etc/dhcphosts.txt /etc/dhcpopts.txt /etc/dnsmasq.d/cloud.conf "
            "/etc/dnsmasq-resolv.conf /var/lib/misc/dnsmasq.leases /var/log/dnsmasq.log "
            "/etc/hosts /etc/resolv.conf /etc/haproxy/haproxy.cfg /var/log/haproxy.log "
            "/etc/ipsec.d/l2tp.conf /var/log/cloud.log /var/log/routerServiceMonitor.log "
            "/var/log/daemon.log")

# Upstream's way (get_diagnostics_files.py): the commands' output and the files
# zipped as they are. Run in the router's namespace with the same inputs.
BASELINE = r'''
import subprocess, sys, time, zipfile
out, files = sys.argv[1], sys.argv[2:]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
    for name, argv in (("iptables", ["nft", "list", "ruleset"]), ("ipaddr", ["ip", "address"]),
                       ("iprule", ["ip", "rule", "list"]),
                       ("iproute", ["ip", "route", "show", "table", "all"])):
        zf.writestr(name + ".log", subprocess.run(argv, capture_output=True).stdout)
    for f in files:
        zf.write(f, f[f.rfind("/") + 1:])
print(out)
'''


def sh(ns: str, root: Path, line: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, "env", f"VRAGENT_ROOT={root}",
                           f"PATH={BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "sh", "-c", line],
                          capture_output=True, text=True, check=False, timeout=300)


def timed(ns: str, root: Path, line: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = sh(ns, root, line)
    return time.perf_counter() - start, proc


def no_secret(path: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            data = zf.read(name)
            for s in SECRETS:
                if s.encode() in data or s.encode().hex().encode() in data:
                    raise SystemExit(f"FAIL: {path.name}: {name} holds {s!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vrbd-"))
    with vpc_lab(tmp) as r:
        boot = r.root / "var/cache/cloud/cmd_line.json"
        doc = json.loads(boot.read_text())
        doc["cmd_line"].update({"router_password": SECRETS[0]})
        boot.write_text(json.dumps(doc))
        (r.root / "etc").mkdir()
        (r.root / "etc/cloudstack-release").write_text("Cloudstack Release vragent-bench\n")
        (r.root / "etc/resolv.conf").write_text("nameserver 100.64.10.1\n")
        app = Appliance(r)
        try:
            app.start()
            r.apply(*ALL_BAGS, *SERVICE_BAGS)
            batch = tmp / "secrets.json"
            batch.write_text(json.dumps([lb_bag(), *vpn_bags()]))
            r.apply(batch)
            wait_for(lambda: all(app.running(d) for d in ("dnsmasq", "haproxy", "charon")),
                     30, "dnsmasq, haproxy and charon to run")

            # a. diagnostics.py against ping itself
            wrapped, plain = [], []
            for _ in range(args.rounds):
                t, proc = timed(r.ns, r.root, f"diagnostics.py ping {VM1} -c 1 -W 2")
                assert proc.stdout.endswith("&&\n0\n"), proc.stdout
                wrapped.append(t)
                t, proc = timed(r.ns, r.root, f"ping -c 1 -W 2 {VM1}")
                assert proc.returncode == 0, proc.stderr
                plain.append(t)

            # b. the zip against upstream's way
            conf = r.root / "etc/vragent"
            logs = r.root / "var/log/vragent"
            raw = [str(p) for p in (*sorted(conf.glob("*.conf")), *sorted(conf.glob("*.cfg")),
                                    *sorted(conf.glob("dnsmasq.*")), *sorted(logs.glob("*.log")))
                   if p.is_file()]
            script = tmp / "baseline.py"
            script.write_text(BASELINE)
            ours, theirs, size, members = [], [], 0, 0
            for i in range(args.rounds):
                t, proc = timed(r.ns, r.root, f"get_diagnostics_files.py {DEFAULTS}")
                assert proc.returncode == 0, proc.stderr
                path = Path(proc.stdout.strip())
                no_secret(path)
                size = path.stat().st_size
                with zipfile.ZipFile(path) as zf:
                    members = len(zf.namelist())
                assert sh(r.ns, r.root, f"cleanup.sh {path}").returncode == 0
                ours.append(t)
                out = tmp / f"baseline-{i}.zip"
                t, proc = timed(r.ns, r.root,
                                f"{sys.executable} {script} {out} {' '.join(raw)}")
                assert proc.returncode == 0, proc.stderr
                theirs.append(t)
                out.unlink()
        finally:
            app.stop()

    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    print(f"diagnostics benchmark, {args.rounds} rounds each, medians")
    print(f"a. diagnostics.py ping -c 1   {ms(wrapped):8.1f} ms")
    print(f"   ping -c 1 (baseline)       {ms(plain):8.1f} ms   "
          f"ratio {ms(wrapped) / ms(plain):.2f}")
    print(f"b. get_diagnostics_files.py   {ms(ours):8.1f} ms   zip {size / 1024:.1f} KiB, "
          f"{members} members, no secret")
    print(f"   upstream's way (baseline)  {ms(theirs):8.1f} ms   ratio {ms(ours) / ms(theirs):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
