"""firewall_rules.json (``type: firewallrules``): rules on public IPs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .common import Bag, Bool, Cidr, IPv4, Str, check_protocol

TRAFFIC_TYPES = ("ingress", "egress")


class FirewallRule(Bag):
    id: int = Field(ge=0)
    protocol: Str
    traffic_type: Str = "Ingress"
    revoked: Bool = False
    src_ip: IPv4 | None = None
    src_port_range: list[int] | None = None
    source_cidr_list: list[Cidr] = []
    dest_cidr_list: list[Cidr] = []
    icmp_type: int | None = Field(default=None, ge=-1, le=255)
    icmp_code: int | None = Field(default=None, ge=-1, le=255)
    default_egress_policy: Bool = False

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, value: str) -> str:
        return check_protocol(value)

    @field_validator("traffic_type")
    @classmethod
    def _traffic(cls, value: str) -> str:
        if value.lower() not in TRAFFIC_TYPES:
            raise ValueError("expected Ingress or Egress")
        return value

    @model_validator(mode="after")
    def _ports(self) -> FirewallRule:
        rng = self.src_port_range
        if rng is not None:
            if len(rng) != 2:
                raise ValueError(f"src_port_range must be [first, last], got {rng}")
            first, last = rng
            if (first, last) != (0, 0):
                if not (1 <= first <= 65535 and 1 <= last <= 65535):
                    raise ValueError(f"src_port_range {rng}: port outside 1-65535")
                if first > last:
                    raise ValueError(f"src_port_range {rng}: port range is reversed")
        if self.is_ingress and self.src_ip is None and not self.revoked:
            raise ValueError("an Ingress rule needs src_ip (the public IP it guards)")
        return self

    @property
    def is_ingress(self) -> bool:
        return self.traffic_type.lower() == "ingress"

    @property
    def ports(self) -> tuple[int, int] | None:
        rng = self.src_port_range
        if not rng or tuple(rng) == (0, 0) or self.protocol not in ("tcp", "udp"):
            return None
        return rng[0], rng[1]


class FirewallRules(Bag):
    type: Literal["firewallrules"]
    rules: list[FirewallRule]
