"""Interfaces and addresses: links up, MTUs, and exactly the configured IPv4 addresses.

Only interfaces the configuration names are managed; the control address from
the boot parameters is never removed, and in a redundant pair the addresses
keepalived owns (tier gateways, public IPs) are left to keepalived.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import RouterConfig
from ..models.common import prefixlen
from ..settings import Settings
from ..topology import Topology

NAME = "interfaces"


@dataclass(frozen=True)
class LinkSpec:
    ifname: str
    addresses: frozenset[str]  # "ip/prefix"
    mtu: int | None = None
    # Present but not ours to add or remove (control link, VRRP-owned VIPs).
    protected: frozenset[str] = field(default=frozenset())
    # Every address on it is keepalived's: it adds and removes them on reload,
    # and an address pulled from under it makes it give up mastership.
    vrrp_owned: bool = False


@dataclass(frozen=True)
class Desired:
    links: tuple[LinkSpec, ...]
    problems: tuple[str, ...] = ()


def desired(cfg: RouterConfig, topo: Topology, settings: Settings) -> Desired:
    links: dict[str, LinkSpec] = {}
    ha = cfg.ha
    for ifname, control in topo.control.items():
        protected = {control}
        if ha is not None and ifname == ha.sync_dev:
            # The address the pair's adverts carry: keepalived's, on the master.
            protected.add(f"{ha.vip}/{ha.sync_prefix}")
        links[ifname] = LinkSpec(ifname, frozenset([control]), protected=frozenset(protected))
    vrrp_owned = cfg.redundant
    for p in topo.public:
        addrs = frozenset(f"{a.public_ip}/{prefixlen(a.netmask)}" for a in p.addresses)
        links[p.ifname] = LinkSpec(p.ifname, frozenset() if vrrp_owned else addrs,
                                   protected=addrs if vrrp_owned else frozenset(),
                                   vrrp_owned=vrrp_owned)
    for g in topo.guests:
        gw = frozenset([f"{g.gateway_ip}/{g.network.prefixlen}"])
        owned = vrrp_owned and not g.private_gateway
        links[g.ifname] = LinkSpec(g.ifname, frozenset() if owned else gw, g.mtu,
                                   protected=gw if owned else frozenset(), vrrp_owned=owned)
    return Desired(tuple(sorted(links.values(), key=lambda s: s.ifname)), topo.missing)


def verify(d: Desired) -> list[str]:
    return list(d.problems)


def render(d: Desired) -> str:
    lines = []
    for s in d.links:
        mtu = f" mtu {s.mtu}" if s.mtu else ""
        addrs = " ".join(sorted(s.addresses)) or "-"
        keep = f" keep {' '.join(sorted(s.protected))}" if s.protected else ""
        if s.vrrp_owned:
            keep += " (addresses owned by keepalived)"
        lines.append(f"link {s.ifname} up{mtu} addresses {addrs}{keep}")
    return "\n".join(lines) + ("\n" if lines else "")


def apply(d: Desired, settings: Settings, dry_run: bool = False) -> list[str]:
    from ..system import iproute
    from ..system.cmd import run

    live = iproute.links()
    actions: list[tuple[str, list[str]]] = []
    for s in d.links:
        link = live.get(s.ifname)
        if link is None:
            continue
        if s.mtu and link.mtu != s.mtu:
            actions.append((f"{s.ifname}: mtu {link.mtu} -> {s.mtu}",
                            ["ip", "link", "set", "dev", s.ifname, "mtu", str(s.mtu)]))
        if not link.up:
            actions.append((f"{s.ifname}: up", ["ip", "link", "set", "dev", s.ifname, "up"]))
        current = set(link.ipv4)
        for addr in sorted(s.addresses - current):
            actions.append((f"{s.ifname}: add {addr}",
                            ["ip", "address", "add", addr, "dev", s.ifname]))
        for addr in sorted(current - s.addresses - s.protected if not s.vrrp_owned else ()):
            actions.append((f"{s.ifname}: remove {addr}",
                            ["ip", "address", "del", addr, "dev", s.ifname]))
    if not dry_run:
        for _, argv in actions:
            run(argv)
    return [f"interfaces: {what}" for what, _ in actions]
