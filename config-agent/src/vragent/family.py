"""Address families, as the rule builders and the system helpers spell them.

The configuration carries IPv4 and, for a tier that has one, an IPv6
network (``topology.GuestIf``); what builds a netfilter rule or an ``ip``
command takes the family from the address it is about, so IPv6 lands as
data, not as another rewrite.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    version: int
    nft: str  # nft's address expression: "ip saddr …", "snat ip to …"
    icmp: str  # the ICMP of the family, as "meta l4proto" names it
    ip_flag: str  # iproute2's family option

    def __str__(self) -> str:
        return f"IPv{self.version}"


V4 = Family(4, "ip", "icmp", "-4")
V6 = Family(6, "ip6", "ipv6-icmp", "-6")
FAMILIES = (V4, V6)


def of(address: str) -> Family:
    """The family of an address or network ("10.0.0.1", "fd00::/64"), already
    validated: only IPv6 has a colon. Called for every rule of a render, so
    nothing is parsed again."""
    return V6 if ":" in address else V4
