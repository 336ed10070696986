"""The netfilter feature: the filtering bags and the one nft table.

Its bags: ``networkacl`` (a tier's ACL, stored whole, per tier),
``firewallrules`` (public IPs' ingress and egress firewall), ``forwardrules``
and ``staticnatrules`` (port forwarding, static NAT), with CloudStack's merge
rules (systemvm/debian/opt/cloud/bin/cs_*.py, merge.py). Its subsystem also
renders every other feature's declared traffic (``Traffic``): it names none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ...feature import BagType, Doc, Docs, Feature, raw
from . import subsystem
from .model_acl import NetworkAcl
from .model_firewall import FirewallRule, FirewallRules
from .model_forward import ForwardRule, ForwardRules, StaticNatRule, StaticNatRules, forward_key
from .model_ipv6firewall import Ipv6FirewallRule, Ipv6FirewallRules


@dataclass(frozen=True)
class Rules:
    """The feature's part of the configuration (``RouterConfig.part``)."""

    acls: dict[str, NetworkAcl] = field(default_factory=dict)  # by tier key
    firewall: list[FirewallRule] = field(default_factory=list)
    forwards: list[ForwardRule] = field(default_factory=list)
    staticnat: list[StaticNatRule] = field(default_factory=list)
    ipv6_firewall: list[Ipv6FirewallRule] = field(default_factory=list)
    # Every IPv6 prefix the ipv6firewallrules bag has named, with its default
    # egress policy: its firewall stays (ingress closed) once its last rule
    # is revoked, where upstream's table would vanish and let everything in.
    ipv6_networks: dict[str, bool] = field(default_factory=dict)


def view(docs: Docs, v: Any) -> Rules:
    return Rules(
        acls={dev: v(NetworkAcl, a) for dev, a in sorted(docs.get("networkacl", {}).items())},
        firewall=[v(FirewallRule, r) for _, r in sorted(
            docs.get("firewallrules", {}).get("rules", {}).items(), key=lambda kv: int(kv[0]))],
        forwards=[v(ForwardRule, r) for _, rules in sorted(docs.get("forwardrules", {}).items())
                  for r in rules],
        staticnat=[v(StaticNatRule, r)
                   for _, r in sorted(docs.get("staticnatrules", {}).items())],
        ipv6_firewall=[v(Ipv6FirewallRule, r) for _, r in sorted(
            docs.get("ipv6firewallrules", {}).get("rules", {}).items(),
            key=lambda kv: int(kv[0]))],
        ipv6_networks=dict(sorted(docs.get("ipv6firewallrules", {}).get("networks", {}).items())),
    )


def merge_networkacl(docs: Docs, bag: BaseModel, sent: Doc | None = None) -> Docs:
    """The tier's whole ACL, replaced. ``sent``: the bag as it was sent (and
    validated into ``bag``), stored as it is; an ACL of 10,000 rules is not
    dumped back from the model for every change."""
    assert isinstance(bag, NetworkAcl)
    acls = dict(docs.get("networkacl", {}))
    acls[bag.device] = sent if sent is not None else raw(bag)
    return {**docs, "networkacl": acls}


def merge_firewallrules(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    assert isinstance(bag, FirewallRules)
    rules = dict(docs.get("firewallrules", {}).get("rules", {}))
    for rule in bag.rules:
        if rule.revoked:
            rules.pop(str(rule.id), None)
        else:
            rules[str(rule.id)] = raw(rule)
    return {**docs, "firewallrules": {"rules": rules}}


def merge_ipv6firewallrules(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    """By rule id, revoked ones removed (cs_firewallrules.merge, which merge.py
    uses for this type too); each prefix named is remembered with the
    policy its latest rule carried."""
    assert isinstance(bag, Ipv6FirewallRules)
    old = docs.get("ipv6firewallrules", {})
    rules = dict(old.get("rules", {}))
    networks = dict(old.get("networks", {}))
    for rule in bag.rules:
        networks[rule.guest_ip6_cidr] = rule.default_egress_policy
        if rule.revoked:
            rules.pop(str(rule.id), None)
        else:
            rules[str(rule.id)] = raw(rule)
    return {**docs, "ipv6firewallrules": {"rules": rules, "networks": networks}}


def merge_forwardrules(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    assert isinstance(bag, ForwardRules)
    # A re-sent rule goes to the end, as the newest; others keep their order.
    keyed = {
        ip: {_forward_key(r): r for r in rules}
        for ip, rules in docs.get("forwardrules", {}).items()
    }
    for rule in bag.rules:
        rules = keyed.setdefault(rule.source_ip_address, {})
        rules.pop(rule.key, None)
        if not rule.revoke:
            rules[rule.key] = raw(rule)
    by_ip = {ip: list(rules.values()) for ip, rules in keyed.items() if rules}
    return {**docs, "forwardrules": by_ip}


def _forward_key(raw: dict[str, Any]) -> str:
    return forward_key(raw["source_ip_address"], raw["source_port_range"], raw["protocol"],
                       raw.get("source_cidr_list"))


def merge_staticnatrules(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    assert isinstance(bag, StaticNatRules)
    by_ip = dict(docs.get("staticnatrules", {}))
    for rule in bag.rules:
        if rule.revoke:
            by_ip.pop(rule.source_ip_address, None)
        else:
            by_ip[rule.source_ip_address] = raw(rule)
    return {**docs, "staticnatrules": by_ip}


def _stored_acl(docs: Docs, bag: BaseModel) -> Any:
    assert isinstance(bag, NetworkAcl)
    return docs.get("networkacl", {}).get(bag.device)


FEATURE = Feature(
    name=subsystem.NAME,
    bags=(
        BagType("networkacl", NetworkAcl, merge_networkacl, per_tier=True,
                stored_part=_stored_acl),
        BagType("firewallrules", FirewallRules, merge_firewallrules),
        BagType("forwardrules", ForwardRules, merge_forwardrules),
        BagType("staticnatrules", StaticNatRules, merge_staticnatrules),
        BagType("ipv6firewallrules", Ipv6FirewallRules, merge_ipv6firewallrules),
    ),
    view=view,
    subsystem=subsystem,
)
