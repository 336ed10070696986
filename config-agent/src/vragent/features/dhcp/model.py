"""vm_dhcp_entry.json (``type: dhcpentry``): one VM NIC's static lease and name.

Fields as SetDhcpEntryConfigItem / VmDhcpConfig (apache/cloudstack core/.../
virtualnetwork/model/VmDhcpConfig.java) write them; stored by IPv4 address
(cs_dhcp.py merge), a re-sent MAC replacing its old address.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator

from ...models.common import Bag, Bool, Hostname, Mac, OptionalIPv4, OptionalIPv6, Str

_DUID = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){1,127}$", re.ASCII)
# dnsmasq's lease times: seconds, or with a unit, or "infinite".
_LEASE = re.compile(r"^(infinite|[0-9]{1,9}[smhdw]?)$", re.ASCII)


class DhcpEntry(Bag):
    type: Literal["dhcpentry"]
    host_name: Hostname
    mac_address: Mac
    ipv4_address: OptionalIPv4 = None
    # The VM's address on a dual-stack tier and the DUID it is served by over
    # DHCPv6 (CloudStack sends DUID-LL, "00:03:00:01:" + MAC). The common
    # IPv6 type: ipaddress alone takes a scope ("fd00::5%x\n…"), which would
    # reach dnsmasq's hosts file.
    ipv6_address: OptionalIPv6 = None
    ipv6_duid: Str | None = None
    dns_addresses: Str | None = None
    default_gateway: OptionalIPv4 = None
    static_routes: Str | None = None
    default_entry: Bool = True
    remove: Bool = False
    lease_time: Str | int | None = Field(default=None)

    @field_validator("ipv6_duid")
    @classmethod
    def _duid(cls, value: str | None) -> str | None:
        if value and not _DUID.fullmatch(value):
            raise ValueError("not a DUID (hex bytes separated by ':')")
        return value

    @field_validator("dns_addresses")
    @classmethod
    def _dns(cls, value: str | None) -> str | None:
        for part in dns_list(value):
            try:
                ipaddress.IPv4Address(part)
            except ValueError:
                raise ValueError(f"{part!r} is not an IPv4 address") from None
        return value

    @field_validator("static_routes")
    @classmethod
    def _routes(cls, value: str | None) -> str | None:
        route_pairs(value)
        return value

    @field_validator("lease_time")
    @classmethod
    def _lease(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, bool) or (value is not None and not _LEASE.fullmatch(str(value))):
            raise ValueError("not a lease time (seconds, or 'infinite')")
        if value is not None and str(value).isdigit() and int(value) < 120:
            raise ValueError("lease time below dnsmasq's minimum of 120 seconds")
        return value

    @property
    def dns(self) -> list[str]:
        return dns_list(self.dns_addresses)

    @property
    def routes(self) -> list[tuple[str, str]]:
        return route_pairs(self.static_routes)


def dns_list(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


def route_pairs(value: str | None) -> list[tuple[str, str]]:
    """Classless static routes: "cidr,gateway" pairs, separated by ';' or ','."""
    if not value:
        return []
    parts = [p.strip() for p in re.split(r"[;,]", value) if p.strip()]
    if len(parts) % 2:
        raise ValueError("static routes must be 'cidr,gateway' pairs")
    pairs = []
    for cidr, gw in zip(parts[::2], parts[1::2], strict=True):
        try:
            net = ipaddress.IPv4Network(cidr, strict=True)
            ipaddress.IPv4Address(gw)
        except ValueError:
            raise ValueError(f"{cidr},{gw}: not an IPv4 network and gateway") from None
        if "/" not in cidr:
            raise ValueError(f"{cidr}: a route needs a /prefix")
        pairs.append((str(net), gw))
    return pairs
