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
from dataclasses import dataclass
from typing import Any

from ...config import RouterConfig
from ...feature import Text
from ...settings import Settings
from ...topology import Topology

NAME = "routes"

MAIN = 254
PRIO_MAIN_SPECIFIC = 90
PRIO_FROM = 100
PRIO_FWMARK = 110


@dataclass(frozen=True, order=True)
class Route:
    table: int
    dst: str  # "default" or a network
    gateway: str
    dev: str
    # In a pair the public address comes and goes with mastership; an on-link
    # route stays valid on the backup, so a takeover needs no route changes.
    onlink: bool = False


@dataclass(frozen=True, order=True)
class Rule:
    priority: int
    table: int
    src: str = ""
    fwmark: int = 0
    suppress_prefixlength: int = -1


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

    connected = topo.connected()
    # Links whose addresses keepalived moves: the backup has none there.
    vrrp_devs = topo.vrrp_devs
    for r in cfg.part(NAME, ()):
        gw_addr = ipaddress.IPv4Address(r.gateway)
        via_dev = next((d for net, d in connected if gw_addr in net), None)
        if via_dev is None:
            # Upstream queues these too: the private gateway may arrive later.
            warnings.append(f"staticroutes.{r.network}: gateway {r.gateway} is not on a "
                            "connected network yet; route not installed")
            continue
        net = ipaddress.IPv4Network(r.network, strict=False)
        routes.add(Route(MAIN, str(net), r.gateway, via_dev, onlink and via_dev in vrrp_devs))
    return Desired(frozenset(routes), frozenset(rules), (), tuple(warnings))


def verify(d: Desired) -> list[str]:
    return list(d.problems)


def _table(t: int) -> str:
    return "main" if t == MAIN else str(t)


def route_argv(r: Route) -> list[str]:
    argv = ["to", r.dst, "via", r.gateway, "dev", r.dev, "table", _table(r.table)]
    return [*argv, "onlink"] if r.onlink else argv


def rule_argv(r: Rule) -> list[str]:
    argv = ["priority", str(r.priority)]
    if r.src:
        argv += ["from", r.src]
    if r.fwmark:
        argv += ["fwmark", str(r.fwmark)]
    argv += ["lookup", _table(r.table)]
    if r.suppress_prefixlength >= 0:
        argv += ["suppress_prefixlength", str(r.suppress_prefixlength)]
    return argv


def render(d: Desired) -> Text:
    lines = ["route " + " ".join(route_argv(r)) for r in sorted(d.routes)]
    lines += ["rule " + " ".join(rule_argv(r)) for r in sorted(d.rules)]
    return Text("\n".join(lines) + ("\n" if lines else ""))


def _live(proto: int) -> tuple[set[Route], set[Rule]]:
    """What the kernel holds, routes and rules in one ``ip`` process."""
    from ...system.cmd import run_json_batch

    routes, rules = run_json_batch(["ip", "-json", "-4"],
                                   [f"route show table all proto {proto}", "rule show"])
    return _routes_of(routes), _rules_of(rules, proto)


def _routes_of(items: list[dict[str, Any]]) -> set[Route]:
    found = set()
    for item in items:
        table = item.get("table", "main")
        dst = item["dst"]
        if dst != "default" and "/" not in dst:
            dst += "/32"
        found.add(Route(MAIN if table == "main" else int(table), dst,
                        item.get("gateway", ""), item.get("dev", ""),
                        "onlink" in item.get("flags", [])))
    return found


def _rules_of(items: list[dict[str, Any]], proto: int) -> set[Rule]:
    found = set()
    for item in items:
        if str(item.get("protocol")) != str(proto):
            continue
        table = item.get("table", "main")
        src = item.get("src", "")
        found.add(Rule(
            priority=int(item["priority"]),
            table=MAIN if table == "main" else int(table),
            src="" if src in ("", "all") else src,
            fwmark=int(item["fwmark"], 0) if "fwmark" in item else 0,
            suppress_prefixlength=int(item.get("suppress_prefixlen", -1)),
        ))
    return found


def apply(d: Desired, rendered: Text, settings: Settings, dry_run: bool = False) -> list[str]:
    from ...system.cmd import run

    proto = str(settings.route_protocol)
    live_routes, live_rules = _live(settings.route_protocol)
    actions: list[tuple[str, list[str]]] = []
    # Remove stale rules first and add routes before rules, so no rule ever
    # points at a table that has lost its default route.
    for rule in sorted(live_rules - d.rules):
        actions.append((f"del rule {' '.join(rule_argv(rule))}",
                        ["ip", "-4", "rule", "del", *rule_argv(rule), "protocol", proto]))
    for route in sorted(live_routes - d.routes):
        actions.append((f"del route {' '.join(route_argv(route))}",
                        ["ip", "-4", "route", "del", *route_argv(route), "proto", proto]))
    for route in sorted(d.routes - live_routes):
        actions.append((f"add route {' '.join(route_argv(route))}",
                        ["ip", "-4", "route", "replace", *route_argv(route), "proto", proto]))
    for rule in sorted(d.rules - live_rules):
        actions.append((f"add rule {' '.join(rule_argv(rule))}",
                        ["ip", "-4", "rule", "add", *rule_argv(rule), "protocol", proto]))
    if not dry_run:
        for _, argv in actions:
            run(argv)
    return [f"routes: {what}" for what, _ in actions]
