"""Links, addresses, routes and rules: read through ``ip -json``, changed through ``ip``.

Callers pass data (a ``Route``, a ``Rule``, an address); the ``ip`` argument
lists are built here. Routes and rules take the address family
(``vragent.family``, IPv4 unless told) as a parameter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..family import V4, Family
from .cmd import run, run_json, run_json_batch

# The kernel's main routing table.
MAIN = 254


@dataclass(frozen=True)
class Link:
    name: str
    mac: str
    up: bool
    mtu: int
    ipv4: tuple[str, ...] = field(default=())  # "a.b.c.d/nn", global and link scope
    # Global IPv6 addresses, "fd00::1/64" (the kernel's own link-local ones are
    # never configuration).
    ipv6: tuple[str, ...] = field(default=())


def links() -> dict[str, Link]:
    found: dict[str, Link] = {}
    for item in run_json(["ip", "-json", "address", "show"]):
        name = item["ifname"]
        addrs = tuple(
            f"{a['local']}/{a['prefixlen']}"
            for a in item.get("addr_info", [])
            if a.get("family") == "inet" and a.get("scope") in ("global", "link")
        )
        addrs6 = tuple(
            f"{a['local']}/{a['prefixlen']}"
            for a in item.get("addr_info", [])
            if a.get("family") == "inet6" and a.get("scope") == "global"
        )
        found[name] = Link(
            name=name,
            mac=item.get("address", "").lower(),
            up="UP" in item.get("flags", []),
            mtu=int(item.get("mtu", 0)),
            ipv4=addrs,
            ipv6=addrs6,
        )
    return found


def rename(old: str, new: str) -> None:
    """Give link ``old`` the name ``new`` (a link is renamed only while down)."""
    run(["ip", "link", "set", "dev", old, "down"])
    run(["ip", "link", "set", "dev", old, "name", new])
    run(["ip", "link", "set", "dev", new, "up"])


def mac_of(name: str) -> str | None:
    """The MAC of link ``name``, or None when no such link exists (read from
    sysfs: cheap enough for every tick of the resident agent)."""
    try:
        return (Path("/sys/class/net") / name / "address").read_text().strip().lower()
    except OSError:
        return None


def names() -> list[str]:
    """Every link by name and MAC, "eth0=02:..", from sysfs (no command):
    what tells the resident agent that a NIC came or went."""
    base = Path("/sys/class/net")
    try:
        return sorted(f"{n}={mac_of(n) or ''}" for n in os.listdir(base))
    except OSError:
        return []


# -- addresses and links ---------------------------------------------------------


def flush_unresolved_neighbours(ifname: str) -> list[str]:
    """Forget the neighbour entries of both families on ``ifname`` still being
    resolved or given up on: the next packet to each solicits it afresh
    (ha/transitions.py). Returns the entries forgotten, "address dev name"."""
    # Twice -s: ip lists each entry it deletes.
    out = run(["ip", "-s", "-s", "neigh", "flush", "dev", ifname, "nud", "incomplete",
               "nud", "failed"])
    return [" ".join(line.split()[:3]) for line in out.splitlines()
            if " dev " in line and not line.startswith("***")]


def set_mtu(ifname: str, mtu: int) -> None:
    run(["ip", "link", "set", "dev", ifname, "mtu", str(mtu)])


def set_up(ifname: str) -> None:
    run(["ip", "link", "set", "dev", ifname, "up"])


def add_address(ifname: str, address: str, link_scope: bool = False) -> None:
    """Add ``address`` ("ip/prefix"); with ``link_scope`` the kernel never picks
    it as a source."""
    scope = ["scope", "link"] if link_scope else []
    # An IPv6 address is usable at once: no duplicate detection, as upstream
    # turns it off on the router's links (cs/CsVpcGuestNetwork.py __disable_dad),
    # so radvd and dnsmasq never meet a tentative address.
    nodad = ["nodad"] if ":" in address else []
    run(["ip", "address", "add", address, "dev", ifname, *scope, *nodad])


def del_address(ifname: str, address: str) -> None:
    run(["ip", "address", "del", address, "dev", ifname])


# -- routes and rules ------------------------------------------------------------


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


def _table(t: int) -> str:
    return "main" if t == MAIN else str(t)


def route_argv(r: Route) -> list[str]:
    """The route as ``ip route`` names it (after the verb)."""
    argv = ["to", r.dst, "via", r.gateway, "dev", r.dev, "table", _table(r.table)]
    return [*argv, "onlink"] if r.onlink else argv


def rule_argv(r: Rule) -> list[str]:
    """The rule as ``ip rule`` names it (after the verb)."""
    argv = ["priority", str(r.priority)]
    if r.src:
        argv += ["from", r.src]
    if r.fwmark:
        argv += ["fwmark", str(r.fwmark)]
    argv += ["lookup", _table(r.table)]
    if r.suppress_prefixlength >= 0:
        argv += ["suppress_prefixlength", str(r.suppress_prefixlength)]
    return argv


def routing(proto: int, family: Family = V4) -> tuple[set[Route], set[Rule]]:
    """The routes (every table) and rules of protocol ``proto`` the kernel
    holds, read in one ``ip`` process."""
    # -N: protocols (and tables) as numbers. Names come from the host's
    # rt_protos.d, which other packages extend: frr's names 196 "static", so a
    # name-based match would miss the agent's own routes on a router with frr.
    routes, rules = run_json_batch(["ip", "-N", "-json", family.ip_flag],
                                   [f"route show table all proto {proto}", "rule show"])
    return _routes_of(routes, family), _rules_of(rules, proto)


def _routes_of(items: list[dict[str, Any]], family: Family = V4) -> set[Route]:
    host = "/32" if family.version == 4 else "/128"
    found = set()
    for item in items:
        table = item.get("table", "main")
        dst = item["dst"]
        if dst != "default" and "/" not in dst:
            dst += host
        found.add(Route(MAIN if table in ("main", str(MAIN)) else int(table), dst,
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
            table=MAIN if table in ("main", str(MAIN)) else int(table),
            src="" if src in ("", "all") else src,
            fwmark=int(item["fwmark"], 0) if "fwmark" in item else 0,
            suppress_prefixlength=int(item.get("suppress_prefixlen", -1)),
        ))
    return found


def replace_route(r: Route, proto: int, family: Family = V4) -> None:
    run(["ip", family.ip_flag, "route", "replace", *route_argv(r), "proto", str(proto)])


def del_route(r: Route, proto: int, family: Family = V4) -> None:
    run(["ip", family.ip_flag, "route", "del", *route_argv(r), "proto", str(proto)])


def add_rule(r: Rule, proto: int, family: Family = V4) -> None:
    run(["ip", family.ip_flag, "rule", "add", *rule_argv(r), "protocol", str(proto)])


def del_rule(r: Rule, proto: int, family: Family = V4) -> None:
    run(["ip", family.ip_flag, "rule", "del", *rule_argv(r), "protocol", str(proto)])
