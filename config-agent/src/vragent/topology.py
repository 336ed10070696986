"""Where the configuration lands: stored device keys resolved to real interfaces.

CloudStack files addresses under ``eth<N>`` but the NIC is identified by its
MAC; the kernel name may differ (hot-plug order, containers). This module maps
one to the other and classifies each interface, once, for every reconciler.
It is pure: the observed links are passed in.
"""

from __future__ import annotations

import ipaddress
import re
import zlib
from dataclasses import dataclass, field, replace
from typing import overload

from .config import CLOUDSTACK, RouterConfig
from .family import V4, V6, Family
from .models import CmdLine, GuestNetwork, IpAddress
from .models.common import prefixlen
from .system.iproute import Link

_ETH = re.compile(r"^eth(\d+)$", re.ASCII)


def _nic_order(g: GuestIf) -> tuple[int, str]:
    m = _ETH.match(g.key) or _ETH.match(g.ifname)
    return (int(m.group(1)) if m else 1 << 30, g.ifname)


# Boot-parameter NICs that are not control links (cs/CsDatabag.py CsCmdLine and
# merge.py processCL): an isolated router's guest NIC is eth0 and its public
# NIC eth2; a DHCP-only router's guest NIC is eth0.
_BOOT_GUEST = {"router": "eth0", "dhcpsrvr": "eth0"}
_BOOT_PUBLIC = {"router": "eth2"}


@dataclass(frozen=True)
class PublicIf:
    ifname: str
    key: str
    table: int
    addresses: tuple[IpAddress, ...]
    gateway: str | None
    mtu: int | None = None

    @property
    def snat_ip(self) -> str:
        # merge keeps the source-NAT address first on its device.
        return self.addresses[0].public_ip

    @property
    def source_nat(self) -> bool:
        return any(a.source_nat for a in self.addresses)


# On a pair, each dual-stack tier's default router as its hosts learn it from
# router advertisements: one link-local address for both routers, held by the
# master (keepalived moves it, features/vrrp) and the source of its radvd's
# advertisements (features/ra), so a failover changes no host's route.
LINK_LOCAL_GATEWAY = "fe80::1"


@dataclass(frozen=True)
class GuestIf:
    ifname: str
    key: str
    ip: str  # the router's own address on the tier (router_guest_ip)
    network: ipaddress.IPv4Network
    mtu: int | None
    private_gateway: bool = False
    # The VMs' gateway when it is not the router's own address: in a pair,
    # router_guest_gateway, held by the master only (CsRedundant._collect_ips).
    vip: str | None = None
    # A dual-stack tier's IPv6 prefix and the router's address in it.
    network6: ipaddress.IPv6Network | None = None
    ip6: str | None = None
    gateway6: str | None = None
    # The tier's IPv6 DNS servers as sent (guestnetwork dns6).
    dns6: tuple[str, ...] = ()
    # A pair's dual-stack tier: the link-local address its hosts' default
    # route goes through, shared by the pair (LINK_LOCAL_GATEWAY).
    router6: str | None = None

    @property
    def families(self) -> tuple[Family, ...]:
        return (V4, V6) if self.network6 is not None else (V4,)

    @property
    def gateway(self) -> str:
        """The address VMs route through."""
        return self.vip or self.ip


@dataclass(frozen=True)
class Public6:
    """The VPC's public IPv6 (guestnetwork router_ip6*): the router's address
    on its public NIC and the default route (cs/CsVpcGuestNetwork.py
    add_address_route, which puts it on eth1, the VPC's public interface)."""

    ifname: str
    address: str  # "addr/prefix"
    gateway: str
    # CloudStack mode on a pair: the link-local address of the public MAC both
    # routers share ("addr/64"), keepalived's like router_ip6 (features/vrrp).
    # The kernel solicits a neighbour for forwarded traffic from a link-local
    # address only, and one of its own per router would be the same address.
    link_local: str | None = None


@dataclass(frozen=True)
class VrrpLink:
    """Where the pair's VRRP runs, and what its adverts carry."""

    ifname: str
    src_ip: str  # this router's own address there: the adverts' source
    src_prefix: int
    vip: str  # the one address in every advert
    vip_prefix: int
    peer: str | None  # unicast peer; None means multicast
    # The source address is this router's control address, added to the link
    # (scope link) by the agent: the public NIC has no address of its own.
    borrowed_src: bool = False


@dataclass(frozen=True)
class SyncLink:
    """Where conntrackd replicates connection state."""

    ifname: str
    ip: str
    peer: str | None  # None means multicast


@dataclass(frozen=True)
class Topology:
    router_type: str
    control: dict[str, str] = field(default_factory=dict)  # ifname -> "ip/prefix"
    public: tuple[PublicIf, ...] = ()
    guests: tuple[GuestIf, ...] = ()
    missing: tuple[str, ...] = ()  # problems: configured devices not present
    redundant: bool = False  # one of a pair: keepalived owns the shared addresses
    vrrp: VrrpLink | None = None  # None: not redundant (yet)
    sync: SyncLink | None = None  # None: no connection state to replicate (yet)
    public6: Public6 | None = None  # None: no public IPv6 sent
    # The links this was resolved from, as observed at the start of the command.
    observed: dict[str, Link] = field(default_factory=dict, compare=False, repr=False)

    @property
    def guest_names(self) -> list[str]:
        return [g.ifname for g in self.guests]

    @property
    def public_names(self) -> list[str]:
        return [p.ifname for p in self.public]

    @property
    def families(self) -> tuple[Family, ...]:
        """The address families the router speaks: IPv4, and IPv6 once a tier
        or the public side has it."""
        v6 = self.public6 is not None or any(V6 in g.families for g in self.guests)
        return (V4, V6) if v6 else (V4,)

    def guest_by_key(self, key: str) -> GuestIf | None:
        return next((g for g in self.guests if g.key == key or g.ifname == key), None)

    @property
    def alias_guest(self) -> GuestIf | None:
        """Where IP aliases go: the first guest NIC (merge.py process_ipaliases)."""
        tiers = [g for g in self.guests if not g.private_gateway]
        return min(tiers, key=_nic_order) if tiers else None

    def snat_interface(self) -> PublicIf | None:
        fallback = self.public[0] if self.public else None
        return next((p for p in self.public if p.source_nat), fallback)

    def connected(self) -> list[tuple[ipaddress.IPv4Network, str]]:
        """(network, interface) of every directly attached IPv4 network."""
        nets = [(g.network, g.ifname) for g in self.guests]
        for p in self.public:
            nets += [(_network(a.public_ip, a.netmask), p.ifname) for a in p.addresses]
        nets += [(ipaddress.IPv4Network(c, strict=False), dev) for dev, c in self.control.items()]
        return nets

    def connected6(self) -> list[tuple[ipaddress.IPv6Network, str]]:
        """(network, interface) of every directly attached IPv6 network: the
        dual-stack tiers' prefixes and the public IPv6 network."""
        nets = [(g.network6, g.ifname) for g in self.guests if g.network6 is not None]
        if self.public6 is not None:
            nets.append((ipaddress.IPv6Network(self.public6.address, strict=False),
                         self.public6.ifname))
        return nets

    @property
    def control_ip(self) -> str:
        """This router's control address ("" without one): unique per router,
        so it also serves where a router needs an address of its own on a
        link whose other addresses are shared (see interfaces, VrrpLink)."""
        return next(iter(self.control.values()), "").split("/")[0]

    @property
    def vrrp_devs(self) -> set[str]:
        """Links whose shared addresses keepalived moves: the backup has none there."""
        if not self.redundant:
            return set()
        devs = set(self.public_names) | {g.ifname for g in self.guests if not g.private_gateway}
        if self.vrrp is not None:
            devs.add(self.vrrp.ifname)
        return devs


def table_for(ifname: str) -> int:
    """Routing table (and connection mark) of a public interface: stable per name."""
    match = _ETH.match(ifname)
    if match:
        return 100 + int(match.group(1))
    return 1000 + zlib.crc32(ifname.encode()) % 30000


def _network(ip: str, netmask: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"{ip}/{prefixlen(netmask)}", strict=False)


def _find(key: str, mac: str | None, by_mac: dict[str, str], links: dict[str, Link]) -> str | None:
    if mac:
        return by_mac.get(mac.lower())
    return key if key in links else None


def boot_control(cmdline: CmdLine) -> dict[str, tuple[str, str]]:
    """The control NICs among the boot parameters' addresses: {"eth0": (ip, mask)}.

    The management server's way in (ssh on port 3922): a VPC router's eth0,
    an isolated or DHCP-only router's eth1 (their eth0 is the guest network).
    """
    rtype = cmdline.router_type
    not_control = {_BOOT_GUEST.get(rtype), _BOOT_PUBLIC.get(rtype)}
    return {dev: a for dev, a in cmdline.interfaces().items() if dev not in not_control}


def resolve(cfg: RouterConfig, links: dict[str, Link]) -> Topology:
    by_mac = {link.mac: name for name, link in links.items() if link.mac}
    missing: list[str] = []
    control = {
        dev: f"{ip}/{prefixlen(mask)}"
        for dev, (ip, mask) in boot_control(cfg.cmdline).items()
        if dev in links
    }
    redundant = cfg.redundant

    public: list[PublicIf] = []
    guests: list[GuestIf] = []
    for key, addrs in cfg.ips.items():
        kinds = {a.kind for a in addrs}
        mac = next((a.vif_mac_address for a in addrs if a.vif_mac_address), None)
        ifname = _find(key, mac, by_mac, links)
        if ifname is None:
            missing.append(f"ips.{key}: no interface with MAC {mac or '(none)'} is present")
            continue
        if "guest" in kinds:
            guest = cfg.guests.get(key)
            if guest is not None:
                guests.append(_guest(ifname, key, guest, redundant))
            continue
        private = [a for a in addrs if a.is_private_gateway]
        if private:
            a = private[0]
            guests.append(
                GuestIf(ifname, key, a.public_ip, _network(a.public_ip, a.netmask), None, True)
            )
            continue
        if "public" in kinds:
            gateway = next((a.gateway for a in addrs if a.gateway), None)
            mtu = next((a.mtu for a in addrs if a.mtu), None) or _boot_mtu(cfg, "publicMtu")
            public.append(PublicIf(ifname, key, table_for(ifname), tuple(addrs), gateway, mtu))
    for key, guest in cfg.guests.items():
        if key not in cfg.ips and _find(key, guest.mac_address, by_mac, links) is None:
            missing.append(f"guestnetwork.{key}: no interface with MAC {guest.mac_address}")
    boot_guest = _boot_guest(cfg, links, {g.ifname for g in guests})
    if boot_guest is not None:
        guests.append(boot_guest)
    public = sorted(public, key=lambda p: p.ifname)
    topo = Topology(
        router_type=cfg.cmdline.router_type,
        control=control,
        public=tuple(public),
        guests=tuple(sorted(guests, key=lambda g: g.ifname)),
        missing=tuple(missing),
        redundant=redundant,
        observed=links,
        public6=_public6(cfg, public),
    )
    return _with_pair_links(cfg, topo)


def _boot_mtu(cfg: RouterConfig, key: str) -> int | None:
    text = cfg.cmdline.get(key)
    return int(text) if text.isdigit() and 68 <= int(text) <= 65535 else None


def _boot_guest(cfg: RouterConfig, links: dict[str, Link], taken: set[str]) -> GuestIf | None:
    """An isolated router's guest NIC, described by the boot parameters.

    CloudStack gives an isolated (``type=router``) or DHCP-only router its
    guest network on the command line, not in a guestnetwork bag: eth0ip is the
    router's address there, and in a pair ``guestgw`` the gateway only the
    master holds (createGuestBootLoadArgs; merge.py processCL).
    """
    dev = _BOOT_GUEST.get(cfg.cmdline.router_type)
    addr = cfg.cmdline.interfaces().get(dev) if dev else None
    if dev is None or addr is None or dev not in links or dev in taken or dev in cfg.guests:
        return None
    ip, mask = addr
    gw = cfg.cmdline.get("guestgw")
    vip = gw if cfg.redundant and gw and gw != ip else None
    return GuestIf(dev, dev, ip, _network(ip, mask), _boot_mtu(cfg, "privateMtu"), vip=vip)


@overload
def _v6(addr: str) -> str: ...
@overload
def _v6(addr: None) -> None: ...
def _v6(addr: str | None) -> str | None:
    """An IPv6 address as the kernel writes it back ("fd10:1:0::1" is
    "fd10:1::1"), so what is configured compares with what is observed."""
    return None if addr is None else str(ipaddress.IPv6Address(addr))


def _public6(cfg: RouterConfig, public: list[PublicIf]) -> Public6 | None:
    """The public IPv6 every tier's bag repeats: on the source-NAT IP's NIC
    (upstream's VPC_PUBLIC_INTERFACE, eth1: the NIC the VPC's first public IP
    came on), from the first tier (by device) that carries it."""
    uplink = next((p for p in public if p.source_nat), public[0] if public else None)
    if uplink is None:
        return None
    for _, g in sorted(cfg.guests.items()):
        found = g.public6
        if found is not None:
            addr, size, gateway = found
            return Public6(uplink.ifname, f"{_v6(addr)}/{size}", _v6(gateway))
    return None


def _guest(ifname: str, key: str, guest: GuestNetwork, redundant: bool) -> GuestIf:
    gw = guest.router_guest_gateway
    # A standalone router's own address is the gateway (upstream configures
    # router_guest_ip only); in a pair the gateway is the shared VIP.
    vip = gw if redundant and gw and gw != guest.router_guest_ip else None
    return GuestIf(ifname, key, guest.router_guest_ip, guest.network, guest.mtu, vip=vip,
                   network6=guest.network6, ip6=_v6(guest.router_guest_ip6),
                   gateway6=_v6(guest.router_guest_ip6_gateway),
                   dns6=tuple(_v6(d) for d in guest.dns6_list),
                   router6=LINK_LOCAL_GATEWAY if redundant and guest.network6 else None)


def _with_pair_links(cfg: RouterConfig, topo: Topology) -> Topology:
    """Where VRRP and conntrackd run, decided from the configuration alone.

    Sync-link mode: both on the sync link, from the first boot.

    CloudStack mode: a management server names no such link, and a VPC router
    boots with only its control NIC. VRRP then runs on the public NIC of the
    source-NAT address, from the ``ips`` bag that brings it (a VPC gets it
    before any tier), with that address in every advert: it is fixed for the
    VPC's life, so tiers coming and going never change what the pair elects
    on. Both routers' public NICs carry the same MAC (NetworkHelperImpl.
    configurePublicNic takes the source-NAT IP's MAC), so the backup must stay
    silent there (see netfilter's public guard); its adverts' source is its
    control address, borrowed onto the NIC with link scope. conntrackd needs
    two-way traffic, so it runs where upstream runs it: multicast on the first
    guest tier, from the router's own address there (CsRedundant._redundant_on).
    Before the first tier there are no VM connections to replicate.
    """
    ha = cfg.ha
    if ha is None:
        return topo
    if ha.mode != CLOUDSTACK:
        link = VrrpLink(ha.sync_dev, ha.sync_ip, ha.sync_prefix, ha.vip, ha.sync_prefix, ha.peer)
        return replace(topo, vrrp=link, sync=SyncLink(ha.sync_dev, ha.sync_ip, ha.peer))
    tiers = [g for g in topo.guests if not g.private_gateway]
    sync = SyncLink(tiers[0].ifname, tiers[0].ip, None) if tiers else None
    pub = next((p for p in topo.public if p.source_nat), None)
    control_ip = topo.control_ip
    vrrp: VrrpLink | None = None
    if pub is not None and control_ip:
        snat = next(a for a in pub.addresses if a.source_nat)
        vrrp = VrrpLink(pub.ifname, control_ip, 32, snat.public_ip, prefixlen(snat.netmask),
                        None, borrowed_src=True)
        pub6 = topo.public6
        if pub6 is not None and pub6.ifname == pub.ifname and snat.vif_mac_address:
            topo = replace(topo, public6=replace(
                pub6, link_local=f"{eui64_link_local(snat.vif_mac_address)}/64"))
    return replace(topo, vrrp=vrrp, sync=sync)


def eui64_link_local(mac: str) -> str:
    """The link-local address the kernel would give a NIC with ``mac``
    (RFC 4291 appendix A: EUI-64, universal/local bit flipped)."""
    b = [int(x, 16) for x in mac.split(":")]
    eui = [b[0] ^ 0x02, b[1], b[2], 0xFF, 0xFE, b[3], b[4], b[5]]
    return str(ipaddress.IPv6Address(bytes([0xFE, 0x80] + [0] * 6 + eui)))
