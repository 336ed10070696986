"""Interfaces and addresses: links up, MTUs, and exactly the configured addresses.

IPv4 as the ips and guestnetwork bags give it; IPv6 as cs/CsVpcGuestNetwork.py
add_address_route puts it: the router's address on a dual-stack tier
(router_guest_ip6 with the tier's prefix length) and the VPC's public IPv6
(router_ip6) on the public NIC. Only IPv6 addresses the agent put there are
ever removed: a link's other IPv6 addresses are not the configuration's.

Only interfaces the configuration names are managed; the control address from
the boot parameters is never removed, and in a redundant pair the addresses
keepalived owns (tier gateways, public IPs of both families) are left to
keepalived: on a pair router_ip6 is never added here (see vrrp).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

from ...config import RouterConfig
from ...feature import Text
from ...models.common import prefixlen
from ...settings import Settings
from ...system import iproute
from ...system.iproute import Link
from ...topology import Topology

NAME = "interfaces"


@dataclass(frozen=True)
class LinkSpec:
    ifname: str
    addresses: frozenset[str]  # "ip/prefix"
    mtu: int | None = None
    # Present but not ours to add or remove (control link, VRRP-owned VIPs).
    protected: frozenset[str] = field(default=frozenset())
    # Every address on it but ours is keepalived's: it adds and removes them
    # on reload, and an address pulled from under it makes it give up mastership.
    vrrp_owned: bool = False
    # Added with link scope, so the kernel never picks them as a source.
    link_scope: frozenset[str] = field(default=frozenset())


@dataclass(frozen=True)
class Desired:
    links: tuple[LinkSpec, ...]
    problems: tuple[str, ...] = ()
    # The links as the command observed them when it planned (None: read them
    # again). Taken under the store lock moments before; keepalived's own
    # addresses, which may change meanwhile, are never the agent's to touch.
    observed: dict[str, Link] | None = field(default=None, compare=False, repr=False)


def desired(cfg: RouterConfig, topo: Topology, settings: Settings) -> Desired:
    links: dict[str, LinkSpec] = {}
    vrrp = topo.vrrp
    for ifname, control in topo.control.items():
        protected = {control}
        if vrrp is not None and ifname == vrrp.ifname:
            # The address the pair's adverts carry: keepalived's, on the master.
            protected.add(f"{vrrp.vip}/{vrrp.vip_prefix}")
        links[ifname] = LinkSpec(ifname, frozenset([control]), protected=frozenset(protected))
    redundant = topo.redundant
    # A link whose every address is keepalived's keeps one of ours: the
    # control address as a link-scope /32. When a master steps down and the
    # last shared address goes, the kernel would otherwise drop every route
    # through that link (the default route on the public one), and nothing
    # would put them back when it is master again. In CloudStack mode it is
    # also the adverts' source on the public NIC.
    anchor = frozenset([f"{topo.control_ip}/32"]) if redundant and topo.control_ip else frozenset()
    pub6 = topo.public6
    for p in topo.public:
        addrs = frozenset(f"{a.public_ip}/{prefixlen(a.netmask)}" for a in p.addresses)
        if pub6 is not None and pub6.ifname == p.ifname:
            addrs |= {pub6.address}
        links[p.ifname] = LinkSpec(p.ifname, anchor if redundant else addrs, p.mtu,
                                   protected=addrs if redundant else frozenset(),
                                   vrrp_owned=redundant, link_scope=anchor)
    for g in topo.guests:
        own = frozenset([f"{g.ip}/{g.network.prefixlen}"])
        own6: frozenset[str] = frozenset()
        gw6: frozenset[str] = frozenset()
        if g.ip6 and g.network6 is not None:
            own6 = frozenset([f"{g.ip6}/{g.network6.prefixlen}"])
            if g.gateway6 and g.gateway6 != g.ip6:
                gw6 = frozenset([f"{g.gateway6}/{g.network6.prefixlen}"])
        if g.private_gateway or not redundant:
            links[g.ifname] = LinkSpec(g.ifname, own | own6, g.mtu)
        elif g.vip:
            if own6 and (g.gateway6 or g.ip6) == g.ip6:
                # The bag gave the router's own IPv6 address as the gateway (or
                # no gateway: vrrp takes router_guest_ip6 for it): keepalived's,
                # like the gateway, or both routers would hold it.
                gw6, own6 = own6, frozenset()
            # A pair's tier: the router's own address is ours, the gateway keepalived's.
            links[g.ifname] = LinkSpec(g.ifname, own | own6, g.mtu,
                                       protected=frozenset([f"{g.vip}/{g.network.prefixlen}"])
                                       | gw6)
        else:
            # The own address is the gateway (the pair's bags did not tell them apart).
            links[g.ifname] = LinkSpec(g.ifname, anchor, g.mtu, protected=own | own6 | gw6,
                                       vrrp_owned=True, link_scope=anchor)
    target = topo.alias_guest
    if target is not None and cfg.aliases and target.ifname in links:
        # IP aliases: more of the router's own addresses on the first guest
        # NIC (merge.py process_ipaliases files them as guest addresses).
        spec = links[target.ifname]
        extra = frozenset(f"{a.ip_address}/{prefixlen(a.netmask)}" for a in cfg.aliases)
        links[target.ifname] = replace(spec, addresses=spec.addresses | extra)
    return Desired(tuple(sorted(links.values(), key=lambda s: s.ifname)), topo.missing,
                   topo.observed or None)


def verify(d: Desired) -> list[str]:
    return list(d.problems)


def render(d: Desired) -> Text:
    lines = []
    for s in d.links:
        mtu = f" mtu {s.mtu}" if s.mtu else ""
        addrs = " ".join(sorted(s.addresses)) or "-"
        keep = f" keep {' '.join(sorted(s.protected))}" if s.protected else ""
        if s.vrrp_owned:
            keep += " (addresses owned by VRRP)"
        if s.link_scope:
            keep += f" link-scope {' '.join(sorted(s.link_scope))}"
        lines.append(f"link {s.ifname} up{mtu} addresses {addrs}{keep}")
    return Text("\n".join(lines) + ("\n" if lines else ""))


def apply(d: Desired, rendered: Text, settings: Settings, dry_run: bool = False) -> list[str]:
    live = d.observed if d.observed is not None else iproute.links()
    actions: list[tuple[str, Callable[[], None]]] = []
    wanted = {s.ifname for s in d.links}
    applied = _last_applied(settings)
    for ifname, addrs in sorted(applied.items()):
        # A link the configuration no longer names (its last public IP or its
        # tier removed with add: false; CsIP.compare deletes what the bag no
        # longer holds): take back what we put there, nothing else.
        link = live.get(ifname)
        if ifname in wanted or link is None:
            continue
        for addr in sorted(set(addrs) & (set(link.ipv4) | set(link.ipv6))):
            actions.append((f"{ifname}: remove {addr} (no longer configured)",
                            partial(iproute.del_address, ifname, addr)))
    for s in d.links:
        link = live.get(s.ifname)
        if link is None:
            continue
        if s.mtu and link.mtu != s.mtu:
            actions.append((f"{s.ifname}: mtu {link.mtu} -> {s.mtu}",
                            partial(iproute.set_mtu, s.ifname, s.mtu)))
        if not link.up:
            actions.append((f"{s.ifname}: up", partial(iproute.set_up, s.ifname)))
        # IPv6: only what this agent manages (desired now, or added before).
        ours6 = {a for a in (*s.addresses, *applied.get(s.ifname, ())) if ":" in a}
        current = set(link.ipv4) | (set(link.ipv6) & ours6)
        for addr in sorted(s.addresses - current):
            actions.append((f"{s.ifname}: add {addr}",
                            partial(iproute.add_address, s.ifname, addr,
                                    link_scope=addr in s.link_scope)))
        for addr in sorted(current - s.addresses - s.protected if not s.vrrp_owned else ()):
            actions.append((f"{s.ifname}: remove {addr}",
                            partial(iproute.del_address, s.ifname, addr)))
    if not dry_run:
        for _, change in actions:
            change()
        _record(settings, d)
    return [f"interfaces: {what}" for what, _ in actions]


def _last_applied(settings: Settings) -> dict[str, list[str]]:
    try:
        data = json.loads(settings.applied_interfaces.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): [str(a) for a in v] for k, v in data.items() if isinstance(v, list)}


def _record(settings: Settings, d: Desired) -> None:
    from ...store import atomic_write

    record = {s.ifname: sorted(s.addresses) for s in d.links}
    if record != _last_applied(settings):
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(settings.applied_interfaces, json.dumps(record).encode())
