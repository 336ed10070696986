"""static_routes.json (``type: staticroutes``).

Fields as apache/cloudstack core/.../virtualnetwork/model/StaticRoute.java
carries them (SetStaticRouteConfigItem.java builds the bag). IPv6: the
stored upstream cannot send one yet (SetStaticRouteConfigItem rewrites the
network through NetUtils.getCidrSubNet, which is IPv4-only and yields
"null/<len>" for an IPv6 CIDR), but the management server's static route has
no family of its own (a CIDR and a next hop; 4.20's routes to a next hop on
a tier), and cs/CsStaticRoutes.py's ``ip route add <net> via <gw>`` would
install an IPv6 pair as well (iproute2 takes the family from the address).
So a route of either family is accepted; both ends must be of one family.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import ValidationInfo, field_validator

from ...models.common import AnyCidr, Bag, Bool, IPv4, Str


class StaticRoute(Bag):
    network: AnyCidr
    gateway: Str
    revoke: Bool = False
    # The private gateway's own address (StaticRouteProfile.getIp4Address).
    ip_address: IPv4 | None = None

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, value: str, info: ValidationInfo) -> str:
        # The address reaches `ip route` as it is: no scope ("fe80::1%eth2").
        if "%" in value or not value.isascii():
            raise ValueError("not an IPv4 or IPv6 address")
        try:
            gw = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("not an IPv4 or IPv6 address") from None
        network = info.data.get("network")  # absent when it was refused itself
        if network is not None:
            net = ipaddress.ip_network(network, strict=False)
            if net.version != gw.version:
                raise ValueError(f"an IPv{gw.version} gateway for the IPv{net.version} "
                                 f"network {network!r}: both must be of one family")
        return value


class StaticRoutes(Bag):
    type: Literal["staticroutes"]
    routes: list[StaticRoute]
