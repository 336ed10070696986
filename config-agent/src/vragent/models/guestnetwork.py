"""guest_network.json (``type: guestnetwork``): one guest tier NIC."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator

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
    # A dual-stack tier (CloudStack 4.17+; cs/CsVpcGuestNetwork.py, CsAddress.py
    # add_address_route): the router's IPv6 address there, the gateway VMs
    # route through and the tier's prefix. Carried, not yet realised.
    router_guest_ip6: OptionalIPv6 = None
    router_guest_ip6_gateway: OptionalIPv6 = None
    router_guest_ip6_cidr: OptionalCidr6 = None

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
