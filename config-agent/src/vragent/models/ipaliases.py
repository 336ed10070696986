"""ip_aliases.json (``type: ipaliases``): extra addresses on the guest NIC.

Each alias is keyed by its address; ``revoke`` removes it (IpAliasTO,
merge.py processIPAliases).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Bag, Bool, IPv4, Netmask


class IpAlias(Bag):
    ip_address: IPv4
    netmask: Netmask
    count: int | None = Field(default=None, ge=0)
    revoke: Bool = False


class IpAliases(Bag):
    type: Literal["ipaliases"]
    aliases: list[IpAlias]
