"""VRRP: keepalived's configuration for the redundant pair.

keepalived decides who is master, never the agent. This module only writes
its configuration: both routers start BACKUP with ``nopreempt``; the adverts
carry one fixed address on the sync link, while tier gateways and public IPs
are ``virtual_ipaddress_excluded`` so adding or removing them never changes
what the pair elects on. A dual-stack tier's IPv6 gateway and its shared
link-local default router (topology.GuestIf.router6), and the VPC's public
IPv6 (router_ip6, topology.Public6), are excluded addresses too:
an instance's adverts carry one family, the excluded list may mix them. A
changed file is checked with ``keepalived -t`` before it replaces the old
one, and the resident agent reloads keepalived (SIGHUP, coalesced); it is
never restarted for a configuration change.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ... import templates
from ...config import SYNC_LINK, RouterConfig
from ...feature import Text
from ...models.common import prefixlen
from ...settings import Settings
from ...topology import Topology
from . import daemon

NAME = "vrrp"

INSTANCE = "vpc"
# A dual-stack tier's default router as its hosts see it (topology.GuestIf.router6).
# Router advertisements name their source address as the default router, and
# each router's own link-local address differs: advertised from it, a failover
# would leave hosts on a dead router until neighbour unreachability detection
# gave it up (seconds) and the new master's next advertisement arrived. So the
# pair shares one link-local address per tier, held by the master alone and
# moved by keepalived with the tier's gateway (as Neutron's ha_router.py
# _disable_ipv6_addressing_on_interface does with the port's address); the
# master's radvd advertises from it (AdvRASrcAddress), and a host's route
# "default via fe80::1" stays right across a failover: keepalived's
# unsolicited neighbour advertisement (router flag set, as forwarding is on)
# repoints it to the new master's MAC. Upstream (cs/CsRedundant.py,
# keepalived.conf.templ) shares IPv4 gateways only, and its radvd.conf
# (cs/CsVpcGuestNetwork.py add_radvd_conf) carries no prefix on a pair
# (apache/cloudstack#13121).
LINK_LOCAL_PREFIX = 64
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+-]+$", re.ASCII)
_AUTH = re.compile(r"^[A-Za-z0-9]+$", re.ASCII)


@dataclass(frozen=True)
class Bfd:
    """A BFD session to the peer on the sync link (boot key sync_bfd)."""

    name: str
    peer: str
    src_ip: str
    interval_ms: int
    multiplier: int


@dataclass(frozen=True)
class Desired:
    enabled: bool
    router_id: str = ""
    instance: str = INSTANCE
    interface: str = ""
    src_ip: str = ""
    mcast_src_ip: str = ""  # set when the source is not the link's own address
    peer: str | None = None
    vrid: int = 0
    priority: int = 0
    advert_int: str = ""
    version: int = 3
    auth_pass: str = ""
    vip: str = ""  # "ip/prefix"
    excluded: tuple[tuple[str, str], ...] = ()  # ("ip/prefix", ifname), sorted
    # The shared IPv6 link-local routers (GuestIf.router6), sorted like ``excluded``.
    link_local: tuple[tuple[str, str], ...] = ()
    fifo: str = ""
    health_file: str = ""
    yield_file: str = ""
    boost_file: str = ""
    bfd: Bfd | None = None
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def desired(cfg: RouterConfig, topo: Topology, settings: Settings) -> Desired:
    ha = cfg.ha
    if ha is None:
        return Desired(enabled=False)
    warnings = (cfg.ha_problem,) if cfg.ha_problem else ()
    link = topo.vrrp
    if link is None:
        # CloudStack mode before the source-NAT IP: nothing is shared yet, and
        # nothing is held either (see interfaces: the pair's addresses are keepalived's).
        why = ("a control address on the boot parameters" if not topo.control
               else "the source-NAT public IP (an ips bag)")
        return Desired(enabled=False, warnings=(
            *warnings, f"redundant_router=1: VRRP starts with {why}"))
    problems: list[str] = []
    if ha.mode == SYNC_LINK:
        if ha.sync_dev not in topo.control:
            problems.append(f"sync_dev={ha.sync_dev}: no such interface on this router")
        sync_net = ipaddress.IPv4Network(f"{ha.sync_ip}/{ha.sync_prefix}", strict=False)
        if ipaddress.IPv4Address(ha.vip) not in sync_net or ha.vip in (ha.sync_ip, ha.peer):
            problems.append(f"sync_vip={ha.vip}: must be a free address on the sync network "
                            f"{sync_net}")
        if ha.peer is not None and (ipaddress.IPv4Address(ha.peer) not in sync_net
                                    or ha.peer == ha.sync_ip):
            problems.append(f"sync_peer={ha.peer}: must be the peer's address on the sync "
                            f"network {sync_net}")
    bfd = None
    if ha.bfd_interval is not None:
        if ha.mode != SYNC_LINK or ha.peer is None:
            problems.append("sync_bfd=1: fast detection needs a sync link with the peer's "
                            "address (sync_dev, its ethNip/ethNmask and sync_peer)")
        elif ha.version != 3 or ha.priority < 2:
            problems.append("sync_bfd=1: fast detection needs vrrp_version=3 and router_pr "
                            "of at least 2")
        else:
            bfd = Bfd(name="peer", peer=ha.peer, src_ip=ha.sync_ip,
                      interval_ms=ha.bfd_interval, multiplier=ha.bfd_multiplier)
    advert = _advert_text(ha.advert_int)
    if ha.version == 2 and not ha.advert_int.is_integer():
        problems.append(f"advert_int={advert}: sub-second adverts need vrrp_version=3")
    auth = ""
    if ha.version == 2 and ha.password:
        # VRRPv2 simple auth carries at most 8 characters; v3 has no auth at all.
        auth = ha.password[:8]
        if not _AUTH.fullmatch(auth):
            problems.append("router_password: only letters and digits can be carried in "
                            "VRRP authentication")
    root = str(settings.root)
    if not _SAFE_PATH.fullmatch(root):
        problems.append(f"state root {root!r}: keepalived's configuration cannot take this path")

    advert_vip = f"{link.vip}/{link.vip_prefix}"
    excluded: set[tuple[str, str]] = set()
    link_local: set[tuple[str, str]] = set()
    for g in topo.guests:
        if not g.private_gateway:
            excluded.add((f"{g.gateway}/{g.network.prefixlen}", g.ifname))
            gateway6 = g.gateway6 or g.ip6
            if g.network6 is not None and gateway6:
                if ipaddress.IPv6Address(gateway6) not in g.network6:
                    problems.append(f"router_guest_ip6_gateway={gateway6}: not in the "
                                    f"tier's prefix {g.network6} ({g.ifname})")
                    continue
                # One family per instance, except here: virtual_ipaddress_excluded
                # may mix them, and the adverts stay IPv4 on the fixed address.
                excluded.add((f"{gateway6}/{g.network6.prefixlen}", g.ifname))
                if g.router6:
                    link_local.add((f"{g.router6}/{LINK_LOCAL_PREFIX}", g.ifname))
    for p in topo.public:
        for a in p.addresses:
            excluded.add((f"{a.public_ip}/{prefixlen(a.netmask)}", p.ifname))
    if topo.public6 is not None:
        # The VPC's public IPv6 (router_ip6) is shared like its public IPv4
        # addresses: the master alone holds it, and keepalived's unsolicited
        # neighbour advertisements point the upstream router at the new master.
        # The default route via router_ip6_gateway is the routes feature's, on
        # both routers as the IPv4 one is (onlink: the backup has no address there).
        excluded.add((topo.public6.address, topo.public6.ifname))
        if topo.public6.link_local:
            # CloudStack mode: the shared public MAC's link-local address, the
            # master's only, or it could not resolve router_ip6_gateway for the
            # tiers' traffic (see topology.Public6).
            excluded.add((topo.public6.link_local, topo.public6.ifname))
    excluded.discard((advert_vip, link.ifname))
    return Desired(
        enabled=True,
        router_id=_router_id(ha.name),
        interface=link.ifname,
        src_ip=link.src_ip,
        mcast_src_ip=link.src_ip if link.borrowed_src and link.peer is None else "",
        peer=link.peer,
        vrid=ha.vrid,
        priority=ha.priority,
        advert_int=advert,
        version=ha.version,
        auth_pass=auth,
        vip=advert_vip,
        excluded=tuple(sorted(excluded)),
        link_local=tuple(sorted(link_local, key=lambda a: a[1])),
        fifo=str(settings.notify_fifo),
        health_file=str(settings.vrrp_health_file),
        yield_file=str(settings.vrrp_yield_file),
        boost_file=str(settings.vrrp_boost_file),
        bfd=bfd,
        problems=tuple(problems),
        warnings=warnings,
    )


def _advert_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _router_id(name: str) -> str:
    # keepalived takes one word; CloudStack names are already like "r-4-VM".
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64] or "router"


def verify(d: Desired) -> list[str]:
    return list(d.problems)


def render(d: Desired) -> Text:
    if not d.enabled:
        return Text("")
    return Text(templates.render("vrrp/keepalived.conf.j2", d=d))


def apply(d: Desired, rendered: Text, settings: Settings, dry_run: bool = False) -> list[str]:
    from ...system import daemons

    return daemons.sync_rendered(daemon.daemons(settings)[0], rendered, settings, dry_run)
