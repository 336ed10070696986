"""guest_network.json (``type: guestnetwork``): one guest tier NIC."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .common import (
    Bag,
    Bool,
    DomainName,
    IfName,
    IPv4,
    Mac,
    Netmask,
    OptionalCidr6,
    OptionalIPv6,
    Str,
    _ipv6,
)


class GuestNetwork(Bag):
    type: Literal["guestnetwork"]
    add: Bool = True
    mac_address: Mac
    device: IfName
    router_guest_ip: IPv4
    router_guest_netmask: Netmask
    router_guest_gateway: IPv4 | None = None
    cidr: Str | None = None
    dns: Str | None = None
    domain_name: DomainName | None = None
    mtu: int | None = Field(default=None, ge=68, le=65535)
    # A dual-stack tier (CloudStack 4.17+), as SetGuestNetworkConfigItem.java
    # fills it from the NIC (apache/cloudstack core/.../virtualnetwork/facade/,
    # model/GuestNetwork.java) and cs/CsVpcGuestNetwork.py reads it: the
    # router's IPv6 address there, the gateway VMs route through, the tier's
    # prefix and its length alone (cidr6), and the zone's IPv6 DNS servers
    # (dns6: ip6dns1[,ip6dns2]). Realised by the interfaces, ra and dhcp features.
    router_guest_ip6: OptionalIPv6 = None
    router_guest_ip6_gateway: OptionalIPv6 = None
    router_guest_ip6_cidr: OptionalCidr6 = None
    cidr6: Str | None = None
    dns6: Str | None = None
    # The VPC's public IPv6 (the command's routerIpv6*): every tier's bag
    # carries it, and CsVpcGuestNetwork.add_address_route puts it on the
    # public NIC with a default route through router_ip6_gateway.
    router_ip6: OptionalIPv6 = None
    router_ip6_gateway: OptionalIPv6 = None
    router_ip6_cidr: OptionalCidr6 = None

    @field_validator("dns")
    @classmethod
    def _dns(cls, value: str | None) -> str | None:
        for part in (value or "").split(","):
            if part.strip():
                try:
                    ipaddress.ip_address(part.strip())
                except ValueError:
                    raise ValueError(f"{part.strip()!r} is not an IP address") from None
        return value

    @field_validator("dns6")
    @classmethod
    def _dns6(cls, value: str | None) -> str | None:
        # Exactly "a[,b]": every byte reaches radvd's and dnsmasq's files.
        for part in (value or "").split(",") if value else ():
            try:
                _ipv6(part)
            except ValueError:
                raise ValueError(f"{part!r} is not an IPv6 address") from None
        return value or None

    @field_validator("cidr6")
    @classmethod
    def _cidr6(cls, value: str | None) -> str | None:
        if value and not (value.isascii() and value.isdigit() and int(value) <= 128):
            raise ValueError("not an IPv6 prefix length (0-128)")
        return value or None

    @model_validator(mode="after")
    def _ip6_whole(self) -> GuestNetwork:
        # CsVpcGuestNetwork reads the three together: an address without its
        # prefix (or the reverse) cannot be configured.
        tier = (self.router_guest_ip6, self.router_guest_ip6_cidr)
        if any(tier) and not all(tier):
            raise ValueError("router_guest_ip6 and router_guest_ip6_cidr go together")
        public = (self.router_ip6, self.router_ip6_gateway)
        if any(public) and not all(public):
            raise ValueError("router_ip6 and router_ip6_gateway go together")
        return self

    @property
    def dns6_list(self) -> tuple[str, ...]:
        return tuple(p for p in (self.dns6 or "").split(",") if p)

    @property
    def public6(self) -> tuple[str, int, str] | None:
        """(address, prefix length, gateway) of the VPC's public IPv6, if sent.

        Upstream puts router_ip6 on the public NIC with the tier's prefix
        length; the length of router_ip6_cidr (the public network's) is used
        when sent, which is what that prefix is.
        """
        if not self.router_ip6 or not self.router_ip6_gateway:
            return None
        if self.router_ip6_cidr:
            size = ipaddress.IPv6Network(self.router_ip6_cidr, strict=False).prefixlen
        elif self.router_guest_ip6_cidr:
            size = ipaddress.IPv6Network(self.router_guest_ip6_cidr, strict=False).prefixlen
        else:
            size = 64
        return self.router_ip6, size, self.router_ip6_gateway

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        # Real bags send a prefix length ("24") here; a full CIDR is accepted too.
        if value is not None:
            text = value if "/" in value else f"0.0.0.0/{value}"
            try:
                ipaddress.IPv4Network(text, strict=False)
            except ValueError:
                raise ValueError("not a prefix length or IPv4 CIDR") from None
        return value

    @property
    def network6(self) -> ipaddress.IPv6Network | None:
        """The tier's IPv6 prefix, when it has one."""
        if self.router_guest_ip6_cidr is None:
            return None
        return ipaddress.IPv6Network(self.router_guest_ip6_cidr, strict=False)

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(
            f"{self.router_guest_ip}/{self.router_guest_netmask}", strict=False
        )
