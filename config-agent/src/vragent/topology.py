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
from dataclasses import dataclass, field

from .config import RouterConfig
from .models import GuestNetwork, IpAddress
from .models.common import prefixlen
from .system.iproute import Link

_ETH = re.compile(r"^eth(\d+)$")


@dataclass(frozen=True)
class PublicIf:
    ifname: str
    key: str
    table: int
    addresses: tuple[IpAddress, ...]
    gateway: str | None

    @property
    def snat_ip(self) -> str:
        # merge keeps the source-NAT address first on its device.
        return self.addresses[0].public_ip

    @property
    def source_nat(self) -> bool:
        return any(a.source_nat for a in self.addresses)


@dataclass(frozen=True)
class GuestIf:
    ifname: str
    key: str
    gateway_ip: str
    network: ipaddress.IPv4Network
    mtu: int | None
    private_gateway: bool = False


@dataclass(frozen=True)
class Topology:
    router_type: str
    control: dict[str, str] = field(default_factory=dict)  # ifname -> "ip/prefix"
    public: tuple[PublicIf, ...] = ()
    guests: tuple[GuestIf, ...] = ()
    missing: tuple[str, ...] = ()  # problems: configured devices not present

    @property
    def guest_names(self) -> list[str]:
        return [g.ifname for g in self.guests]

    @property
    def public_names(self) -> list[str]:
        return [p.ifname for p in self.public]

    def guest_by_key(self, key: str) -> GuestIf | None:
        return next((g for g in self.guests if g.key == key or g.ifname == key), None)

    def snat_interface(self) -> PublicIf | None:
        fallback = self.public[0] if self.public else None
        return next((p for p in self.public if p.source_nat), fallback)

    def connected(self) -> list[tuple[ipaddress.IPv4Network, str]]:
        """(network, interface) of every directly attached network."""
        nets = [(g.network, g.ifname) for g in self.guests]
        for p in self.public:
            nets += [(_network(a.public_ip, a.netmask), p.ifname) for a in p.addresses]
        nets += [(ipaddress.IPv4Network(c, strict=False), dev) for dev, c in self.control.items()]
        return nets


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


def resolve(cfg: RouterConfig, links: dict[str, Link]) -> Topology:
    by_mac = {link.mac: name for name, link in links.items() if link.mac}
    missing: list[str] = []
    control = {
        dev: f"{ip}/{prefixlen(mask)}"
        for dev, (ip, mask) in cfg.cmdline.interfaces().items()
        if dev in links
    }

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
                guests.append(_guest(ifname, key, guest))
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
            public.append(PublicIf(ifname, key, table_for(ifname), tuple(addrs), gateway))
    for key, guest in cfg.guests.items():
        if key not in cfg.ips and _find(key, guest.mac_address, by_mac, links) is None:
            missing.append(f"guestnetwork.{key}: no interface with MAC {guest.mac_address}")
    return Topology(
        router_type=cfg.cmdline.router_type,
        control=control,
        public=tuple(sorted(public, key=lambda p: p.ifname)),
        guests=tuple(sorted(guests, key=lambda g: g.ifname)),
        missing=tuple(missing),
    )


def _guest(ifname: str, key: str, guest: GuestNetwork) -> GuestIf:
    return GuestIf(ifname, key, guest.router_guest_ip, guest.network, guest.mtu)
