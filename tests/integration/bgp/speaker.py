"""The BGP speaker outside the VPC: FRR's zebra and bgpd started by the test
in the outside namespace with its own configuration and paths."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from vragent_lab.netns import in_ns, wait_for

PASSWORD = "S3cr3t!pw"
ROUTER4, ROUTER6 = "100.64.10.10", "fd00:64:10::10"
SPEAKER4, SPEAKER6 = "100.64.10.1", "fd00:64:10::1"
SPEAKER_AS, VPC_AS = 64601, 64512


def speaker_conf(password: str) -> str:
    return f"""frr defaults traditional
hostname speaker
router bgp {SPEAKER_AS}
 bgp router-id {SPEAKER4}
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 timers bgp 3 9
 neighbor {ROUTER4} remote-as {VPC_AS}
 neighbor {ROUTER4} password {password}
 neighbor {ROUTER4} timers connect 2
 neighbor {ROUTER6} remote-as {VPC_AS}
 neighbor {ROUTER6} password {password}
 neighbor {ROUTER6} timers connect 2
 address-family ipv4 unicast
  neighbor {ROUTER4} activate
 exit-address-family
 address-family ipv6 unicast
  neighbor {ROUTER6} activate
 exit-address-family
exit
"""


class Speaker:
    """FRR (zebra and bgpd) in the outside namespace, on the test's own paths:
    what it learns is read from bgpd's table. (A zebra-less bgpd, -Z, takes
    no IPv6 route: it cannot resolve the link-local next hop.)"""

    def __init__(self, ns: str, root: Path) -> None:
        self.ns, self.dir = ns, root
        root.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, password: str) -> None:
        conf = self.dir / "bgpd.conf"
        conf.write_text(speaker_conf(password))
        (self.dir / "zebra.conf").write_text("hostname speaker\n")
        common = ["-u", "root", "-g", "frrvty", "-P", "0", "--vty_socket", str(self.dir),
                  "-z", str(self.dir / "zserv.api"), "--log", "stdout"]
        for name, extra in (("zebra", []), ("bgpd", ["-l", SPEAKER4, "-l", SPEAKER6])):
            log = (self.dir / f"{name}.log").open("ab")
            self.procs.append(subprocess.Popen(
                ["ip", "netns", "exec", self.ns, f"/usr/lib/frr/{name}", *common, "-i",
                 str(self.dir / f"{name}.pid"), "-f", str(self.dir / f"{name}.conf"), *extra],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            if name == "zebra":
                wait_for(lambda: (self.dir / "zserv.api").exists(), 10, "the speaker's zebra")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self.procs.clear()

    def vtysh(self, command: str) -> Any:
        out = in_ns(self.ns, ["vtysh", "--config_dir", str(self.dir), "--vty_socket",
                              str(self.dir), "-d", "bgpd", "-c", command], check=False)
        try:
            return json.loads(out or "{}")
        except ValueError:
            return {}

    def routes(self, family: str) -> set[str]:
        return set(self.vtysh(f"show bgp {family} unicast json").get("routes", {}))

    def nexthops(self, family: str) -> dict[str, set[str]]:
        """Each learnt prefix's next hops, by prefix (an IPv6 route carries
        the peer's global address and the link-local one of its interface)."""
        routes = self.vtysh(f"show bgp {family} unicast json").get("routes", {})
        return {prefix: {str(hop.get("ip")) for path in paths
                         for hop in path.get("nexthops", [])}
                for prefix, paths in routes.items()}
