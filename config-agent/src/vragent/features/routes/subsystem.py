"""Routes: default route, per-uplink policy routing, static routes.

Each public interface gets its own routing table holding a default route via
its gateway. Traffic sourced from one of its addresses, and replies of
connections that arrived on it (connection mark, set in netfilter), use that
table, so each public IP leaves by its own interface. A rule ahead of them
consults the main table for everything but its default route, so connected
tiers and static routes always win over the per-uplink default.

Routes and rules the agent installs carry ``proto <settings.route_protocol>``;
anything else (kernel, keepalived, an operator) is never touched.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ... import family
from ...config import RouterConfig
from ...family import V6
from ...feature import Text
from ...settings import Settings
from ...system import iproute
from ...system.iproute import MAIN, Route, Rule, route_argv, rule_argv
from ...topology import Topology

# Route, Rule and their argument lists are the system's (``system/iproute.py``):
# named here too, as this feature's vocabulary.
__all__ = ["MAIN", "NAME", "PRIO_FROM", "PRIO_FWMARK", "PRIO_MAIN_SPECIFIC", "Desired", "Route",
           "Rule", "apply", "desired", "render", "route_argv", "rule_argv", "verify"]

NAME = "routes"

PRIO_MAIN_SPECIFIC = 90
PRIO_FROM = 100
PRIO_FWMARK = 110


@dataclass(frozen=True)
class Desired:
    routes: frozenset[Route]
    rules: frozenset[Rule]
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def desired(cfg: RouterConfig, topo: Topology, settings: Settings) -> Desired:
    routes: set[Route] = set()
    rules: set[Rule] = set()
    warnings: list[str] = []
    main_uplink = topo.snat_interface()
    onlink = topo.redundant
    if main_uplink and main_uplink.gateway:
        routes.add(Route(MAIN, "default", main_uplink.gateway, main_uplink.ifname, onlink))
    elif not topo.public and cfg.cmdline.get("gateway"):
        # A box booted with its uplink on the command line (non-VPC routers).
        boot_gw = cfg.cmdline.get("gateway")
        for dev, cidr in topo.control.items():
            if ipaddress.IPv4Address(boot_gw) in ipaddress.IPv4Network(cidr, strict=False):
                routes.add(Route(MAIN, "default", boot_gw, dev))
    if topo.public:
        rules.add(Rule(PRIO_MAIN_SPECIFIC, MAIN, suppress_prefixlength=0))
    for p in topo.public:
        if not p.gateway:
            continue
        routes.add(Route(p.table, "default", p.gateway, p.ifname, onlink))
        rules.add(Rule(PRIO_FWMARK, p.table, fwmark=p.table))
        for a in p.addresses:
            rules.add(Rule(PRIO_FROM, p.table, src=a.public_ip))

    pub6 = topo.public6
    if pub6 is not None:
        # The VPC's IPv6 default route (cs/CsVpcGuestNetwork.py add_address_route:
        # "ip -6 route add default via <router_ip6_gateway>"), on the public
        # NIC the address is on. IPv6 is not NATed, so it needs no policy routing.
        routes.add(Route(MAIN, "default", pub6.gateway, pub6.ifname, onlink))

    # A static route's next hop is looked up on the links of its own family
    # (the model refuses a network and gateway of different families); an
    # IPv6 one (see model.py) is installed with `ip -6` by apply.
    connected: dict[int, list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]]] = {
        4: [*topo.connected()], 6: [*topo.connected6()]}
    # Links whose addresses keepalived moves: the backup has none there.
    vrrp_devs = topo.vrrp_devs
    for r in cfg.part(NAME, ()):
        gw_addr = ipaddress.ip_address(r.gateway)
        via_dev = next((d for net, d in connected[gw_addr.version] if gw_addr in net), None)
        if via_dev is None:
            # Upstream queues these too: the private gateway may arrive later.
            v6 = " IPv6" if gw_addr.version == 6 else ""
            warnings.append(f"staticroutes.{r.network}: gateway {r.gateway} is not on a "
                            f"connected{v6} network yet; route not installed")
            continue
        # As the kernel shows them (IPv6 compressed), so apply finds them installed.
        net = ipaddress.ip_network(r.network, strict=False)
        routes.add(Route(MAIN, str(net), str(gw_addr), via_dev,
                         onlink and via_dev in vrrp_devs))
    return Desired(frozenset(routes), frozenset(rules), (), tuple(warnings))


def verify(d: Desired) -> list[str]:
    return list(d.problems)


def render(d: Desired) -> Text:
    lines = ["route " + " ".join(route_argv(r)) for r in sorted(d.routes)]
    lines += ["rule " + " ".join(rule_argv(r)) for r in sorted(d.rules)]
    return Text("\n".join(lines) + ("\n" if lines else ""))


def apply(d: Desired, rendered: Text, settings: Settings, dry_run: bool = False) -> list[str]:
    proto = settings.route_protocol
    live_routes, live_rules = iproute.routing(proto)
    # IPv6 routes apart (their own `ip -6`); a route's family is its gateway's.
    live6, _ = iproute.routing(proto, V6)
    live_routes |= live6
    actions: list[tuple[str, Callable[[], None]]] = []
    # Remove stale rules first and add routes before rules, so no rule ever
    # points at a table that has lost its default route.
    for rule in sorted(live_rules - d.rules):
        actions.append((f"del rule {' '.join(rule_argv(rule))}",
                        partial(iproute.del_rule, rule, proto)))
    for route in sorted(live_routes - d.routes):
        actions.append((f"del route {' '.join(route_argv(route))}",
                        partial(iproute.del_route, route, proto, family.of(route.gateway))))
    for route in sorted(d.routes - live_routes):
        actions.append((f"add route {' '.join(route_argv(route))}",
                        partial(iproute.replace_route, route, proto,
                                family.of(route.gateway))))
    for rule in sorted(d.rules - live_rules):
        actions.append((f"add rule {' '.join(rule_argv(rule))}",
                        partial(iproute.add_rule, rule, proto)))
    if not dry_run:
        for _, change in actions:
            change()
    return [f"routes: {what}" for what, _ in actions]
