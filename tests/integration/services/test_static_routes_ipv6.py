"""IPv6 static routes through one router, with real packets.

A staticroutes bag whose network and next hop are IPv6 (accepted as the
management server's model allows it; see features/routes/model.py for what
upstream's SetStaticRouteConfigItem.java and cs/CsStaticRoutes.py make of
one): the next hop is a host on a dual-stack tier (4.20's static routes to a
next hop), routing a network of its own; a VM on the other tier reaches a
host in that network through the router with ping6 and TCP, the route
carries the agent's protocol, and once the route is revoked (StaticRoute
revoke=true) it is gone and so is the path.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vragent_lab.netns import in_ns, wait_for

from .conftest import Appliance, vm_ns
from .test_ipv6 import give_ipv6, ping6, tcp6_connect, tcp6_server

NEXT_HOP = "fd10:10:2::20"  # vm2, on tier 2, routes the network behind it
BEHIND_NET = "fd99:1::/64"
BEHIND_HOP = "fd99:1::1"  # vm2's side of the link to the host behind it
BEHIND = "fd99:1::2"
VM1 = "fd10:10:1::30"


def _routes(tmp: Path, revoke: bool, name: str) -> Path:
    path = tmp / name
    path.write_text(json.dumps({"type": "staticroutes", "routes": [
        {"network": BEHIND_NET, "gateway": NEXT_HOP, "revoke": revoke}]}))
    return path


@contextmanager
def host_behind(app: Appliance) -> Iterator[str]:
    """A namespace of ours behind vm2 (vm2 forwards for it); its name."""
    ns = f"{app.router.lab.prefix}b6"
    ns2 = vm_ns(app.router, "vm2")
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        in_ns(ns2, ["ip", "link", "add", "sr6a", "type", "veth", "peer", "name", "sr6b",
                    "netns", ns])
        in_ns(ns2, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
        in_ns(ns2, ["ip", "-6", "addr", "add", f"{NEXT_HOP}/64", "dev", "eth0", "nodad"])
        in_ns(ns2, ["ip", "-6", "addr", "add", f"{BEHIND_HOP}/64", "dev", "sr6a", "nodad"])
        in_ns(ns2, ["ip", "link", "set", "sr6a", "up"])
        # Back to tier 1 through the router's address on tier 2.
        in_ns(ns2, ["ip", "-6", "route", "replace", "fd10:10:1::/64", "via", "fd10:10:2::1"])
        in_ns(ns, ["ip", "link", "set", "lo", "up"])
        in_ns(ns, ["ip", "-6", "addr", "add", f"{BEHIND}/64", "dev", "sr6b", "nodad"])
        in_ns(ns, ["ip", "link", "set", "sr6b", "up"])
        in_ns(ns, ["ip", "-6", "route", "add", "default", "via", BEHIND_HOP])
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def _installed(app: Appliance) -> str:
    # -N: the protocol as a number (the agent's is settings.route_protocol, 157).
    return app.router.sh("ip", "-N", "-6", "route", "show", BEHIND_NET)


def test_ipv6_host_behind_a_next_hop_is_reached_until_the_route_is_revoked(
        appliance: Appliance, tmp_path: Path) -> None:
    router = appliance.router
    give_ipv6(appliance, tmp_path)
    ns1 = vm_ns(router, "vm1")
    in_ns(ns1, ["ip", "-6", "addr", "add", f"{VM1}/64", "dev", "eth0", "nodad"])
    in_ns(ns1, ["ip", "-6", "route", "replace", "default", "via", "fd10:10:1::1"])
    with host_behind(appliance) as behind:
        # Without the route the router sends it out by its IPv6 default route.
        assert not ping6(ns1, BEHIND)
        router.apply(_routes(tmp_path, False, "add.json"))
        shown = _installed(appliance)
        assert f"{BEHIND_NET} via {NEXT_HOP} dev eth3 proto 157" in shown, shown
        wait_for(lambda: ping6(ns1, BEHIND), 10, "ping6 to the host behind the next hop")
        with tcp6_server(behind, 8090):
            # Routed, not NATed: the host behind sees one of the VM's own
            # addresses (ours, or its SLAAC one), never the router's.
            seen = tcp6_connect(ns1, BEHIND, 8090)
            assert seen.startswith("fd10:10:1:") and seen != "fd10:10:1::1", seen
        router.apply(_routes(tmp_path, True, "revoke.json"))
        assert _installed(appliance).strip() == ""
        assert not ping6(ns1, BEHIND)
        with tcp6_server(behind, 8091):
            assert tcp6_connect(ns1, BEHIND, 8091) == ""
