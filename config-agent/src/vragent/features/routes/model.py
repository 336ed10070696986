"""static_routes.json (``type: staticroutes``)."""

from __future__ import annotations

from typing import Literal

from ...models.common import Bag, Bool, Cidr, IPv4


class StaticRoute(Bag):
    network: Cidr
    gateway: IPv4
    revoke: Bool = False
    ip_address: IPv4 | None = None


class StaticRoutes(Bag):
    type: Literal["staticroutes"]
    routes: list[StaticRoute]
