"""``make demo``: a router in a network namespace running the sample two-tier VPC.

Builds the namespace lab, boots the router from the sample boot parameters,
applies the sample bags with the real CLI, prints what was configured and
proves it with packets, then removes everything (unless ``--keep``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .netns import OUTSIDE_FAR, VM2, in_ns, sample_vpc

SAMPLE = Path(__file__).with_name("sample")
BAGS = [
    "ip_associations.json", "guest_network_tier1.json", "guest_network_tier2.json",
    "private_gateway.json", "network_acl_tier1.json", "network_acl_tier2.json",
    "forwarding_rules.json", "staticnat_rules.json", "static_routes.json",
]


def _title(text: str) -> None:
    print(f"\n=== {text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    args = parser.parse_args()
    prefix = "demo-"
    lab = sample_vpc(prefix)
    root = Path(tempfile.mkdtemp(prefix="vragent-demo-"))
    router = f"{prefix}r"

    def vragent(*argv: str) -> None:
        cmd = ["ip", "netns", "exec", router, sys.executable, "-m", "vragent", "--root",
               str(root), *argv]
        print("$ vragent " + " ".join(Path(a).name if a.startswith("/") else a for a in argv))
        subprocess.run(cmd, check=True)

    try:
        (root / "var/cache/cloud").mkdir(parents=True)
        shutil.copy(SAMPLE / "cmd_line.json", root / "var/cache/cloud/cmd_line.json")
        _title("boot from cmd_line.json")
        vragent("boot")
        _title("apply the sample VPC: public IPs, two tiers, private gateway, ACLs, NAT")
        vragent("apply", *[str(SAMPLE / b) for b in BAGS])
        _title("apply again: nothing to do")
        vragent("apply", *[str(SAMPLE / b) for b in BAGS])
        _title("addresses")
        print(in_ns(router, ["ip", "-4", "-br", "addr", "show"]), end="")
        _title("routes and policy rules the agent owns")
        print(in_ns(router, ["ip", "-4", "route", "show", "table", "all", "proto", "157"]), end="")
        print(in_ns(router, ["ip", "-4", "rule", "show", "protocol", "157"]), end="")
        _title("netfilter (table inet vragent)")
        print(in_ns(router, ["nft", "list", "table", "inet", "vragent"]), end="")
        _title("packets")
        probe = (f"import socket; s=socket.create_connection(('{OUTSIDE_FAR}', 7), 2); "
                 "print(s.recv(64).decode())")
        server = subprocess.Popen(
            ["ip", "netns", "exec", f"{prefix}out", sys.executable, "-c",
             "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,"
             "socket.SO_REUSEADDR,1);s.bind(('0.0.0.0',7));s.listen();print('ready',flush=True)\n"
             "while True:\n c,a=s.accept();c.sendall(a[0].encode());c.close()"],
            stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            server.stdout.readline()
            got = in_ns(f"{prefix}vm1", [sys.executable, "-c", probe])
            print(f"VM1 10.10.1.10 -> outside {OUTSIDE_FAR}:7: outside host saw {got.strip()}")
        finally:
            server.kill()
            server.wait()
        ping = in_ns(f"{prefix}vm1", ["ping", "-c1", "-W1", VM2], check=False)
        print(f"VM1 -> VM2 {VM2} ping (ACL allows icmp): "
              f"{'ok' if ' 0% packet loss' in ping else 'FAILED'}")
        if args.keep:
            print(f"\nlab kept: namespaces {', '.join(lab.namespaces)}; state in {root}")
            print(f"try: ip netns exec {router} {sys.executable} -m vragent --root {root} show")
            return 0
    finally:
        if not args.keep:
            lab.destroy()
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("the demo creates network namespaces: run it as root")
    sys.exit(main())
