"""Build and tear down namespace topologies with real veth links."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def sh(argv: list[str], check: bool = True, input: str | None = None) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, input=input)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


def in_ns(ns: str, argv: list[str], check: bool = True, input: str | None = None) -> str:
    return sh(["ip", "netns", "exec", ns, *argv], check=check, input=input)


def wait_for(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition",
             interval: float = 0.05) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Lab:
    prefix: str
    namespaces: list[str] = field(default_factory=list)

    def ns(self, name: str) -> str:
        full = f"{self.prefix}{name}"
        if full not in self.namespaces:
            sh(["ip", "netns", "add", full])
            self.namespaces.append(full)
            in_ns(full, ["ip", "link", "set", "lo", "up"])
        return full

    def link(self, a: str, a_if: str, b: str, b_if: str, a_mac: str | None = None) -> None:
        """A veth between namespaces ``a`` and ``b`` (short names)."""
        tmp_a, tmp_b = f"{self.prefix}{a_if}"[:15], f"{self.prefix}p{b_if}"[:15]
        ns_a, ns_b = self.ns(a), self.ns(b)
        sh(["ip", "link", "add", tmp_a, "netns", ns_a, "type", "veth", "peer", "name", tmp_b,
            "netns", ns_b])
        in_ns(ns_a, ["ip", "link", "set", tmp_a, "name", a_if])
        in_ns(ns_b, ["ip", "link", "set", tmp_b, "name", b_if])
        if a_mac:
            in_ns(ns_a, ["ip", "link", "set", a_if, "address", a_mac])
        in_ns(ns_b, ["ip", "link", "set", b_if, "up"])

    def host(self, name: str, ifname: str, cidr: str, gateway: str | None) -> None:
        ns = self.ns(name)
        in_ns(ns, ["ip", "addr", "add", cidr, "dev", ifname])
        in_ns(ns, ["ip", "link", "set", ifname, "up"])
        if gateway:
            in_ns(ns, ["ip", "route", "add", "default", "via", gateway])

    def destroy(self) -> None:
        for ns in reversed(self.namespaces):
            # Kill what still runs inside before the namespace goes.
            pids = sh(["ip", "netns", "pids", ns], check=False).split()
            for pid in pids:
                sh(["kill", "-9", pid], check=False)
            sh(["ip", "netns", "del", ns], check=False)
        self.namespaces.clear()


# The sample VPC (see sample/): fixed MACs and addresses the bags refer to.
ROUTER_MACS = {
    "eth1": "02:00:0a:00:00:01",
    "eth2": "02:00:0a:00:00:02",
    "eth3": "02:00:0a:00:00:03",
    "eth4": "02:00:0a:00:00:04",
}
# The VMs' MACs, as the sample DHCP entries name them.
VM_MACS = {"vm1": "02:00:0a:01:00:0a", "vm2": "02:00:0a:02:00:0a"}
OUTSIDE = "100.64.10.1"
OUTSIDE_FAR = "100.64.99.1"  # a host beyond the outside gateway
VM1 = "10.10.1.10"
VM2 = "10.10.2.10"
PGW_PEER = "172.30.0.254"
BEHIND_PGW = "10.99.0.1"


def sample_vpc(prefix: str) -> Lab:
    """Router ``r`` with public eth1, tiers eth2/eth3, private gateway eth4; hosts around it."""
    lab = Lab(prefix)
    lab.ns("r")
    # Control link: the hypervisor side of the link-local management network.
    lab.link("r", "eth0", "ctl", "eth0")
    lab.host("ctl", "eth0", "169.254.0.1/16", None)
    lab.link("r", "eth1", "out", "eth0", ROUTER_MACS["eth1"])
    lab.link("r", "eth2", "vm1", "eth0", ROUTER_MACS["eth2"])
    lab.link("r", "eth3", "vm2", "eth0", ROUTER_MACS["eth3"])
    lab.link("r", "eth4", "pgw", "eth0", ROUTER_MACS["eth4"])
    lab.host("out", "eth0", f"{OUTSIDE}/24", None)
    in_ns(lab.ns("out"), ["ip", "addr", "add", f"{OUTSIDE_FAR}/32", "dev", "lo"])
    for vm, mac in VM_MACS.items():
        in_ns(lab.ns(vm), ["ip", "link", "set", "eth0", "address", mac])
    lab.host("vm1", "eth0", f"{VM1}/24", "10.10.1.1")
    lab.host("vm2", "eth0", f"{VM2}/24", "10.10.2.1")
    lab.host("pgw", "eth0", f"{PGW_PEER}/24", "172.30.0.1")
    in_ns(lab.ns("pgw"), ["ip", "addr", "add", f"{BEHIND_PGW}/32", "dev", "lo"])
    return lab
