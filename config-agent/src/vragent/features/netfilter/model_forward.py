"""forwarding_rules.json and staticnat_rules.json: DNAT port forwards and 1:1 NAT."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator, model_validator

from ...models.common import (
    Bag,
    Bool,
    CidrList,
    IPv4,
    Str,
    check_protocol,
    parse_port_range,
    split_cidrs,
)

# A forward whose public and private ranges differ is expanded one rule per
# port; past this size that stops being a port forward and becomes a mistake.
MAX_SHIFTED_RANGE = 256


class ForwardRule(Bag):
    source_ip_address: IPv4
    destination_ip_address: IPv4
    source_port_range: Str
    destination_port_range: Str
    protocol: Str
    revoke: Bool = False
    # Who may use the forward (ForwardingRule.sourceCidrList, comma-separated).
    # The same public port may go to different VMs for different sources.
    source_cidr_list: CidrList | None = None

    @field_validator("source_cidr_list", mode="before")
    @classmethod
    def _no_sources(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("source_port_range", "destination_port_range")
    @classmethod
    def _range(cls, value: str) -> str:
        first, last = parse_port_range(value)
        if (first, last) == (0, 0):
            raise ValueError("a port forward needs ports (got '0:0')")
        return value

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, value: str) -> str:
        low = check_protocol(value, ("tcp", "udp"))
        if low not in ("tcp", "udp"):
            # check_protocol also passes numbers; a port forward needs tcp or udp.
            raise ValueError("unknown protocol (expected tcp or udp)")
        return low

    @model_validator(mode="after")
    def _sizes(self) -> ForwardRule:
        pub, priv = self.public_ports, self.private_ports
        size, psize = pub[1] - pub[0], priv[1] - priv[0]
        if size != psize:
            raise ValueError(
                f"source_port_range {self.source_port_range!r} and destination_port_range "
                f"{self.destination_port_range!r} differ in size"
            )
        if pub != priv and size >= MAX_SHIFTED_RANGE:
            raise ValueError(
                f"a shifted port range may span at most {MAX_SHIFTED_RANGE} ports"
            )
        return self

    @property
    def public_ports(self) -> tuple[int, int]:
        return parse_port_range(self.source_port_range)

    @property
    def private_ports(self) -> tuple[int, int]:
        return parse_port_range(self.destination_port_range)

    @property
    def sources(self) -> list[str]:
        """IPv4 sources allowed; [] means any (0.0.0.0/0 included)."""
        v4, _ = split_cidrs(self.source_cidr_list)
        return [] if "0.0.0.0/0" in v4 else v4

    @property
    def key(self) -> str:
        return forward_key(self.source_ip_address, self.source_port_range, self.protocol,
                           self.source_cidr_list)


def forward_key(ip: str, ports: str, protocol: str, sources: str | None) -> str:
    """What identifies a forward (cs_forwardingrules.py merge): the public
    address, port range and protocol, and the sources it is for."""
    cidrs = ",".join(sorted(c.strip() for c in (sources or "").split(",") if c.strip()))
    return f"{ip}:{ports}:{protocol.lower()}" + (f":{cidrs}" if cidrs else "")


class ForwardRules(Bag):
    type: Literal["forwardrules"]
    rules: list[ForwardRule]


class StaticNatRule(Bag):
    source_ip_address: IPv4
    destination_ip_address: IPv4
    source_port_range: Str = "0:0"
    revoke: Bool = False

    @field_validator("source_port_range")
    @classmethod
    def _range(cls, value: str) -> str:
        parse_port_range(value)
        return value


class StaticNatRules(Bag):
    type: Literal["staticnatrules"]
    rules: list[StaticNatRule]
