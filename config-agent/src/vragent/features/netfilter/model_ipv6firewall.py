"""ipv6_firewall_rules.json (``type: ipv6firewallrules``): a dual-stack
network's IPv6 firewall (CloudStack 4.17+).

What the management server sends (core/.../facade/SetIpv6FirewallRulesConfigItem.java):
every FirewallRuleTO of the command as a model/FirewallRule.java, with the
network's IPv6 prefix set on each (``setGuestIp6Cidr``), written by Gson with
LOWER_CASE_WITH_UNDERSCORES and nulls left out: ``id``, ``src_vlan_tag``,
``src_ip``, ``protocol``, ``src_port_range``, ``revoked``, ``already_added``,
``source_cidr_list``, ``dest_cidr_list``, ``purpose`` (FirewallRule.Purpose,
"Ipv6Firewall"), ``icmp_type``, ``icmp_code``, ``traffic_type``,
``guest_cidr``, ``default_egress_policy``, ``guest_ip6_cidr``. Upstream's
configure.py CsIpv6Firewall reads them into the ``ip6 ip6_firewall`` table
(fw_chain_ingress / fw_chain_egress, jumped to by the guest prefix).

Every string field is checked against what it can be, so nothing else
reaches the ruleset (a newline, a brace or a quote is refused, naming the
field).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, StrictStr, field_validator

from ...models.common import AnyCidr, Bag, Bool, Cidr6, Str
from .model_firewall import FirewallRuleBase

# com.cloud.network.rules.FirewallRule.Purpose, as Gson writes the enum.
PURPOSES = ("Firewall", "PortForwarding", "LoadBalancing", "Vpn", "StaticNat", "NetworkACL",
            "Ipv6Firewall")
# FirewallRuleTO's source VLAN tag: a broadcast URI ("vlan://100") or "untagged".
_VLAN_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9:/._-]{0,63}", re.ASCII)


def _ip(value: str) -> str:
    if "%" in value or not value.isascii():
        raise ValueError("not an IP address")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("not an IP address") from None
    return value


def _vlan_tag(value: str) -> str:
    if not _VLAN_TAG.fullmatch(value):
        raise ValueError("not a VLAN tag (vlan://<id> or untagged)")
    return value


def _empty_is_none(value: object) -> object:
    return None if value == "" else value


OptionalIP = Annotated[Annotated[StrictStr, AfterValidator(_ip)] | None,
                       BeforeValidator(_empty_is_none)]
OptionalVlanTag = Annotated[Annotated[StrictStr, AfterValidator(_vlan_tag)] | None,
                            BeforeValidator(_empty_is_none)]
OptionalAnyCidr = Annotated[AnyCidr | None, BeforeValidator(_empty_is_none)]


class Ipv6FirewallRule(FirewallRuleBase):
    # What firewallrules' rules have, the fields and their checks, is
    # model_firewall.FirewallRuleBase's; this bag's own fields follow.
    already_added: Bool = False
    # The network's IPv6 prefix: the rule guards traffic to (ingress) or from
    # (egress) it.
    guest_ip6_cidr: Cidr6
    source_cidr_list: list[Cidr6] | None = None
    dest_cidr_list: list[Cidr6] | None = None
    purpose: Str | None = None
    src_ip: OptionalIP = None
    src_vlan_tag: OptionalVlanTag = None
    guest_cidr: OptionalAnyCidr = None

    @field_validator("purpose")
    @classmethod
    def _purpose(cls, value: str | None) -> str | None:
        if value is not None and value not in PURPOSES:
            raise ValueError(f"expected one of {', '.join(PURPOSES)}")
        return value

    @property
    def is_default_egress(self) -> bool:
        """The rule that carries the default egress policy: protocol "all"
        without sources (configure.py CsIpv6Firewall: its action is the policy
        itself, every other egress rule's is the policy's opposite)."""
        return not self.is_ingress and self.protocol == "all" and not self.source_cidr_list


class Ipv6FirewallRules(Bag):
    type: Literal["ipv6firewallrules"]
    rules: list[Ipv6FirewallRule]
