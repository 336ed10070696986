"""bgp_peers.json: the ``bgppeers`` bag (CloudStack 4.20 dynamic routing).

The Java: core/.../virtualnetwork/model/BgpPeers.java (``peers``, a list of
org.apache.cloudstack.network.BgpPeerTO), serialised by the facade
BgpPeersConfigItem with snake_case names: ``peer_id``, ``peer_as_number``,
``ip4_address``, ``ip6_address``, ``peer_password``, ``network_id``,
``network_as_number``, ``guest_ip4_cidr``, ``guest_ip6_cidr`` and
``details``, a map keyed by BgpPeer.Detail's names (BgpPeerTOTest:
``{"EBGP_MultiHop": "100"}``). A BgpPeerTO(networkId) alone (no peer) says
"this network has no peer any more" (cs_bgppeers.py merge skips it).

Every value reaches frr.conf, one line per command, so every string is
checked as the thing it is (an address, a CIDR, a number), and the password,
which FRR's CLI takes as one word, is printable ASCII with no blank, no
character FRR's parsers or frr-reload.py treat specially (``!``, ``#``,
quotes, braces, backslash), at most 80 bytes (the kernel's
TCP_MD5SIG_MAXKEYLEN). A refused password is never echoed.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from ...models.common import Bag, Cidr, OptionalCidr6, OptionalIPv4, OptionalIPv6

# BgpPeer.Detail (api/.../network/BgpPeer.java) -> what CsBgpPeers.py writes.
DETAILS = ("EBGP_MultiHop",)
MAX_PASSWORD = 80  # TCP_MD5SIG_MAXKEYLEN
# One word FRR's CLI, vtysh and frr-reload.py all read back verbatim.
_PASSWORD = re.compile(r"[A-Za-z0-9!#%&()*+,./:;<=>?@\[\]^_`|~$-]{1,80}", re.ASCII)
AS_MAX = 4294967295  # 4-byte AS numbers (RFC 6793)


def _password(value: str) -> str:
    # Never echoed: the message says what is wrong, not what was sent.
    if not _PASSWORD.fullmatch(value):
        raise ValueError(f"must be 1-{MAX_PASSWORD} printable ASCII characters without blanks, "
                         "control characters, quotes, braces or backslash "
                         "(value not shown)")
    return value


def _empty_is_none(value: Any) -> Any:
    return None if value == "" else value


def _hops(value: Any) -> str:
    text = value if isinstance(value, str) else None
    if text is None or not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 255:
        raise ValueError(f"{value!r} is not a hop count (1-255)")
    return text


AsNumber = Annotated[StrictInt, Field(ge=1, le=AS_MAX)]
Password = Annotated[StrictStr, AfterValidator(_password)]
OptionalPassword = Annotated[Password | None, BeforeValidator(_empty_is_none)]
OptionalCidr = Annotated[Cidr | None, BeforeValidator(_empty_is_none)]


class BgpPeer(Bag):
    """One peer of one network (BgpPeerTO)."""

    peer_id: StrictInt | None = None
    network_id: StrictInt
    peer_as_number: AsNumber | None = None
    network_as_number: AsNumber | None = None
    ip4_address: OptionalIPv4 = None
    ip6_address: OptionalIPv6 = None
    peer_password: OptionalPassword = Field(default=None, repr=False)
    guest_ip4_cidr: OptionalCidr = None
    guest_ip6_cidr: OptionalCidr6 = None
    details: dict[str, Any] | None = None

    @field_validator("details")
    @classmethod
    def _details(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for key, item in (value or {}).items():
            if key not in DETAILS:
                raise ValueError(f"{key!r} is not a detail this router knows "
                                 f"(known: {', '.join(DETAILS)})")
            try:
                _hops(item)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return value

    @property
    def key(self) -> str:
        """cs_bgppeers.merge's key: "<peer_id>-<network_id>"."""
        return f"{self.peer_id}-{self.network_id}"

    @property
    def multihop(self) -> int | None:
        hops = (self.details or {}).get("EBGP_MultiHop")
        return int(hops) if hops is not None else None

    @model_validator(mode="after")
    def _whole(self) -> BgpPeer:
        if self.peer_id is None:
            return self
        if self.peer_as_number is None or self.network_as_number is None:
            raise ValueError("a peer needs peer_as_number and network_as_number")
        if self.ip4_address is None and self.ip6_address is None:
            raise ValueError("a peer needs ip4_address or ip6_address")
        return self


class BgpPeers(Bag):
    type: Literal["bgppeers"]
    peers: list[BgpPeer] = Field(max_length=10000)
