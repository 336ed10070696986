"""firewall_rules.json (``type: firewallrules``): rules on public IPs."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from ...models.common import AnyCidr, Bag, Bool, OptionalIPv4, Str, check_protocol

TRAFFIC_TYPES = ("ingress", "egress")


class FirewallRuleBase(Bag):
    """What a firewall rule of the firewallrules and ipv6firewallrules bags
    shares: both are core/.../virtualnetwork/model/FirewallRule.java written by
    Gson (SetFirewallRulesConfigItem.java, SetIpv6FirewallRulesConfigItem.java),
    read by configure.py CsAcl.AclIP / add_routing_rules and CsIpv6Firewall."""

    id: int = Field(ge=0)
    protocol: Str
    traffic_type: Str = "Ingress"
    revoked: Bool = False
    src_port_range: list[int] | None = None
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
    def _ports(self) -> Self:
        rng = self.src_port_range
        if rng is not None and len(rng) == 1:
            # FirewallRuleTO sends one element when the end port is null.
            rng = [rng[0], rng[0]]
        if rng is not None:
            if len(rng) != 2:
                raise ValueError(f"src_port_range must be [first, last], got {rng}")
            first, last = rng
            if (first, last) != (0, 0):
                if not (1 <= first <= 65535 and 1 <= last <= 65535):
                    raise ValueError(f"src_port_range {rng}: port outside 1-65535")
                if first > last:
                    raise ValueError(f"src_port_range {rng}: port range is reversed")
        return self

    @property
    def is_ingress(self) -> bool:
        return self.traffic_type.lower() == "ingress"

    @property
    def ports(self) -> tuple[int, int] | None:
        rng = self.src_port_range
        if not rng or self.protocol not in ("tcp", "udp"):
            return None
        first, last = rng[0], rng[-1]
        if (first, last) in ((0, 0), (0, 65535)):
            return None
        return first, last


class FirewallRule(FirewallRuleBase):
    # Egress rules carry src_ip "" (CommandSetupHelper.createFirewallRulesCommands).
    # An Ingress rule without src_ip is a routed network's routing firewall
    # rule (configure.py CsAcl.add_routing_rules reads no src_ip): the
    # subsystem refuses it unless the router is routed.
    src_ip: OptionalIPv4 = None
    source_cidr_list: list[AnyCidr] | None = None
    dest_cidr_list: list[AnyCidr] | None = None

    @property
    def sources(self) -> list[str]:
        return list(self.source_cidr_list or [])

    @property
    def destinations(self) -> list[str]:
        return list(self.dest_cidr_list or [])

    @property
    def is_default_egress(self) -> bool:
        """The rule that carries an isolated network's default egress policy.

        The management server sends it as protocol "all" with no source CIDRs
        (VirtualNetworkApplianceManagerImpl.createDefaultEgressFirewallRule;
        loadSourceCidrs empties the list); configure.py CsAcl.AclIP.add_rule
        appends it after every other egress rule.
        """
        return not self.is_ingress and self.protocol == "all" and not self.sources


class FirewallRules(Bag):
    type: Literal["firewallrules"]
    rules: list[FirewallRule]
