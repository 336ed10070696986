"""Dynamic routing with FRR's bgpd (CloudStack 4.20 routed VPCs).

Follows systemvm/debian/opt/cloud/bin/cs/CsBgpPeers.py, which writes
/etc/frr/frr.conf from the ``bgppeers`` bag:

* ``frr defaults traditional``, the hostname, ``ip``/``ipv6 nht
  resolve-via-default`` (a multihop peer is reached through the default route);
* prefix lists ``all-v4``/``default-v4``/``local-v4`` (and v6): ``local-*``
  are the guest CIDRs the bag's items carry (``guest_ip4_cidr``,
  ``guest_ip6_cidr``), in order;
* one ``router bgp <network_as_number>`` with ``bgp router-id`` the
  source-NAT address; per peer ``remote-as``, ``password`` and each detail
  (BgpPeer.Detail ``EBGP_MultiHop`` -> ``ebgp-multihop <n>``);
* ``address-family ipv4 unicast`` for the IPv4 peers and ``ipv6 unicast``
  for the IPv6 ones: the networks, and per peer the route maps
  ``upstream-v4-in`` (only a default route is taken from the peer),
  ``upstream-v4-out`` (only the local prefixes go out) and soft
  reconfiguration inbound.

Where this differs, and why:

* a CIDR is announced only while the router has the tier it belongs to
  (topology), so a removed tier's route is withdrawn even before the
  management server sends the bag again; bgpd's import check (FRR's
  default) also keeps a prefix out while its tier's address is not up;
* an IPv4 peer carries IPv4 and an IPv6 peer IPv6 (``no bgp default
  ipv4-unicast`` and ``activate`` per family); upstream's ``bgp default
  ipv6-unicast`` also activates its IPv4 peers for IPv6;
* one BGP instance: FRR runs one per VRF, so items with different
  ``network_as_number`` are refused (upstream writes a second ``router bgp``
  that bgpd rejects);
* ``timers bgp 3 9`` and ``timers connect 2``: a pair's failover is seen by
  the peer within the hold time (FRR's traditional 60/180 would keep the dead
  master's routes for up to three minutes);
* changes reach bgpd by frr-reload.py, never by restarting it (daemon.py);
* the route maps come before ``router bgp``: bgpd resolves a neighbour's
  route map when it reads the neighbour line, or else only when its
  route-map delay timer (5 s) runs, and announces nothing through it until
  then (a pair's new master starts bgpd on the takeover).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ...config import RouterConfig
from ...feature import Daemon, Files
from ...settings import Settings
from ...topology import Topology
from .daemon import BGPD_CONF, FRR_CONF, RUN_DIR, VTYSH_CONF, ZEBRA_CONF
from .model import BgpPeer

NAME = "bgp"
KEEPALIVE, HOLD, CONNECT = 3, 9, 2
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", re.ASCII)


@dataclass(frozen=True)
class Neighbor:
    address: str
    family: str  # "ipv4" | "ipv6"
    remote_as: int
    password: str | None = field(default=None, repr=False)
    multihop: int | None = None
    # The bag's keys ("<peer_id>-<network_id>") it came from.
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Desired:
    enabled: bool
    hostname: str = "router"
    router_id: str = ""
    local_as: int = 0
    neighbors: tuple[Neighbor, ...] = ()
    networks4: tuple[str, ...] = ()
    networks6: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    # CIDRs of the bag not announced (no such tier on this router).
    held: tuple[str, ...] = ()


def _hostname(cfg: RouterConfig) -> str:
    name = str(cfg.cmdline.get("name", "") or "")
    return name if _HOSTNAME.fullmatch(name) else "router"


def desired(cfg: RouterConfig, topo: Topology, settings: Settings) -> Desired:
    peers: dict[str, BgpPeer] = cfg.part(NAME, {}) or {}
    items = [p for _, p in sorted(peers.items()) if p.peer_id is not None]
    if not items:
        return Desired(False)
    problems: list[str] = []
    ases = sorted({p.network_as_number for p in items if p.network_as_number is not None})
    if len(ases) > 1:
        problems.append(f"bgppeers: network_as_number differs between peers ({ases}): "
                        "the router runs one BGP instance")
    snat = topo.snat_interface()
    router_id = snat.snat_ip if snat is not None and snat.addresses else ""
    if not router_id:
        problems.append("bgppeers: no source-NAT address for the router id yet")
    tiers4 = {g.network for g in topo.guests}
    tiers6 = {g.network6 for g in topo.guests if g.network6 is not None}
    neighbors: dict[str, Neighbor] = {}
    nets4: list[str] = []
    nets6: list[str] = []
    held: list[str] = []
    for p in items:
        assert p.peer_as_number is not None
        for family, address, cidr in (("ipv4", p.ip4_address, p.guest_ip4_cidr),
                                      ("ipv6", p.ip6_address, p.guest_ip6_cidr)):
            if address is None or cidr is None:
                continue
            n = Neighbor(str(ipaddress.ip_address(address)), family, p.peer_as_number,
                         p.peer_password, p.multihop, (p.key,))
            seen = neighbors.get(n.address)
            if seen is not None and (seen.remote_as, seen.password, seen.multihop) != (
                    n.remote_as, n.password, n.multihop):
                problems.append(f"bgppeers: peer {n.address} ({p.key}) differs from "
                                f"{', '.join(seen.keys)} in its AS, password or details")
                continue
            neighbors[n.address] = n if seen is None else \
                Neighbor(**{**seen.__dict__, "keys": (*seen.keys, p.key)})
            net = ipaddress.ip_network(cidr, strict=False)
            nets, tiers = (nets4, tiers4) if family == "ipv4" else (nets6, tiers6)
            if net not in tiers:
                if str(net) not in held:
                    held.append(str(net))
            elif str(net) not in nets:
                nets.append(str(net))
    return Desired(True, _hostname(cfg), router_id, ases[0] if ases else 0,
                   tuple(neighbors.values()), tuple(sorted(nets4, key=_order)),
                   tuple(sorted(nets6, key=_order)), tuple(problems), tuple(held))


def _order(cidr: str) -> tuple[int, int]:
    net = ipaddress.ip_network(cidr)
    return int(net.network_address), net.prefixlen


def verify(d: Desired) -> list[str]:
    return list(d.problems)


def _zebra(d: Desired) -> list[str]:
    return ["frr defaults traditional", f"hostname {d.hostname}", "!",
            "ip nht resolve-via-default", "ipv6 nht resolve-via-default", "!"]


def _prefix_lists(d: Desired) -> list[str]:
    out = ["ip prefix-list all-v4 seq 1 permit any",
           "ip prefix-list default-v4 seq 1 permit 0.0.0.0/0",
           "ipv6 prefix-list all-v6 seq 1 permit any",
           "ipv6 prefix-list default-v6 seq 1 permit ::/0"]
    out += [f"ip prefix-list local-v4 seq {i} permit {c}" for i, c in enumerate(d.networks4, 1)]
    out += [f"ipv6 prefix-list local-v6 seq {i} permit {c}"
            for i, c in enumerate(d.networks6, 1)]
    return out + ["!"]


def _router(d: Desired) -> list[str]:
    out = [f"router bgp {d.local_as}", f" bgp router-id {d.router_id}",
           " no bgp default ipv4-unicast", f" timers bgp {KEEPALIVE} {HOLD}"]
    for n in d.neighbors:
        out.append(f" neighbor {n.address} remote-as {n.remote_as}")
        if n.password:
            out.append(f" neighbor {n.address} password {n.password}")
        if n.multihop is not None:
            out.append(f" neighbor {n.address} ebgp-multihop {n.multihop}")
        out.append(f" neighbor {n.address} timers connect {CONNECT}")
    for family, v, nets in (("ipv4", "v4", d.networks4), ("ipv6", "v6", d.networks6)):
        peers = [n for n in d.neighbors if n.family == family]
        if not peers:
            continue
        out += [" !", f" address-family {family} unicast"]
        out += [f"  network {c}" for c in nets]
        for n in peers:
            out += [f"  neighbor {n.address} activate",
                    f"  neighbor {n.address} route-map upstream-{v}-in in",
                    f"  neighbor {n.address} route-map upstream-{v}-out out",
                    f"  neighbor {n.address} soft-reconfiguration inbound"]
        out.append(" exit-address-family")
    return out + ["exit", "!"]


def _route_maps() -> list[str]:
    out = []
    for v, match in (("v4", "ip"), ("v6", "ipv6")):
        out += [f"route-map upstream-{v}-in permit 10",
                f" match {match} address prefix-list default-{v}", "exit",
                f"route-map upstream-{v}-in deny 1000",
                f" match {match} address prefix-list all-{v}", "exit",
                f"route-map upstream-{v}-out permit 10",
                f" match {match} address prefix-list local-{v}", "exit",
                f"route-map upstream-{v}-out deny 1000",
                f" match {match} address prefix-list all-{v}", "exit"]
    return out + ["!"]


def _text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def render(d: Desired) -> Files:
    if not d.enabled or d.problems:
        return Files((("frr.conf", ""), ("bgpd.conf", ""), ("zebra.conf", ""),
                      ("vtysh.conf", "")))
    # The route maps before the neighbours that name them (upstream writes
    # them after): a neighbour's route map that bgpd has not read yet stays
    # unresolved, and so denies, until bgpd's route-map delay timer (5 s)
    # resolves it, so a freshly started bgpd (a pair's new master) announced
    # nothing for its first 5 s (tests/integration/ha/test_pair_bgp.py).
    bgp = _prefix_lists(d) + _route_maps() + _router(d)
    head = _zebra(d)
    return Files((
        ("frr.conf", _text([*head[:2], "service integrated-vtysh-config", *head[2:], *bgp,
                            "line vty", "!"])),
        ("bgpd.conf", _text(["frr defaults traditional", f"hostname {d.hostname}", "!",
                             *bgp])),
        ("zebra.conf", _text(head)),
        ("vtysh.conf", _text(["service integrated-vtysh-config"])),
    ))


def apply(d: Desired, rendered: Files, settings: Settings, dry_run: bool = False) -> list[str]:
    from ...supervised import registry
    from ...system import daemons, frr

    if not dry_run and d.enabled:
        frr.prepare(RUN_DIR.of(settings))
    places = {"frr.conf": FRR_CONF, "bgpd.conf": BGPD_CONF, "zebra.conf": ZEBRA_CONF,
              "vtysh.conf": VTYSH_CONF}
    texts = {places[name].of(settings): body for name, body in rendered.files}
    changes: list[str] = []
    reg = registry(settings)
    # bgpd's files first: its checker runs before anything is written.
    for name in ("bgpd", "zebra"):
        daemon: Daemon = reg.get(name)
        mine = {f.path: texts.get(f.path, "") for f in daemon.files}
        changes += daemons.sync(daemon, mine, settings, dry_run)
    return changes
