"""network_acl.json (type networkacl)."""

from __future__ import annotations

from typing import Any

import pytest
from vragent.bags import parse_bag
from vragent.features.netfilter.model_acl import AclRule, NetworkAcl

from tests.conftest import REFERENCE
from tests.unit.builders import DELETE, load, mutated, sample_bag

from .checks import assert_rejected

BAG = sample_bag("network_acl_tier2.json")
R0 = ("ingress_rules", 0)


@pytest.mark.parametrize(
    ("field", "value", "path", "fragment"),
    [
        ("first_port", -1, "ingress_rules.0.first_port", "greater than or equal to 0 (got -1)"),
        ("first_port", 65536, "ingress_rules.0.first_port", "(got 65536)"),
        ("last_port", 70000, "ingress_rules.0.last_port", "or equal to 65535 (got 70000)"),
        ("first_port", "http", "ingress_rules.0.first_port", "'http'"),
        ("first_port", 9000, "ingress_rules.0", "first_port 9000 > last_port 8080"),
        ("type", "gre", "ingress_rules.0.type", "unknown protocol"),
        ("type", "gre", "ingress_rules.0.type", "'gre'"),
        ("type", "256", "ingress_rules.0.type", "'256'"),
        ("type", "protocol", "ingress_rules.0", "type 'protocol' needs a protocol number"),
        ("protocol", 256, "ingress_rules.0.protocol", "(got 256)"),
        ("cidr", "10.10.1.0/33", "ingress_rules.0.cidr", "'10.10.1.0/33'"),
        ("cidr", "10.10.1.0/24,bogus", "ingress_rules.0.cidr",
         "'bogus' is not an IPv4 or IPv6 CIDR"),
        ("cidr", ["10.10.1.0/24"], "ingress_rules.0.cidr", "must be a string"),
        ("cidr", DELETE, "ingress_rules.0.cidr", "required field is missing"),
        ("allowed", DELETE, "ingress_rules.0.allowed", "required field is missing"),
        ("allowed", "true", "ingress_rules.0.allowed", "'true'"),
        ("icmp_type", 256, "ingress_rules.0.icmp_type", "(got 256)"),
        ("icmp_code", -2, "ingress_rules.0.icmp_code", "(got -2)"),
    ],
)
def test_rule_rejected(field: str, value: Any, path: str, fragment: str) -> None:
    assert_rejected(mutated(BAG, (*R0, field), value), path, fragment)


def test_egress_rules_checked_too() -> None:
    raw = mutated(BAG, ("egress_rules", 0, "cidr"), "0.0.0.0/99")
    assert_rejected(raw, "egress_rules.0.cidr", "'0.0.0.0/99'")


def test_acl_cidr_may_be_a_bare_address() -> None:
    # CidrList is lenient: a bare address is a /32 (nft reads it the same way).
    acl = parse_bag(mutated(BAG, (*R0, "cidr"), "10.10.1.5"))
    assert acl.ingress_rules[0].cidr == "10.10.1.5"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("device", "eth3 ", "'eth3 '"),
        ("device", DELETE, "required field is missing"),
        ("mac_address", "02:00:0a:00:00", "'02:00:0a:00:00'"),
        ("nic_ip", "10.10.2", "'10.10.2'"),
        ("nic_netmask", "40", "'40'"),
        ("private_gateway_acl", "no", "'no'"),
        ("ingress_rules", "none", "'none'"),
    ],
)
def test_bag_rejected(field: str, value: Any, fragment: str) -> None:
    assert_rejected(mutated(BAG, (field,), value), field, fragment)


@pytest.mark.parametrize(
    ("rule", "proto", "ports"),
    [
        ({"type": "tcp", "first_port": 22, "last_port": 22}, "tcp", (22, 22)),
        ({"type": "UDP", "first_port": 53}, "udp", (53, 53)),  # no last_port: one port
        ({"type": "tcp", "first_port": 1000, "last_port": 2000}, "tcp", (1000, 2000)),
        ({"type": "all"}, "", None),
        ({"type": "icmp", "icmp_type": 8, "icmp_code": 0}, "icmp", None),
        ({"type": "protocol", "protocol": 47}, "47", None),
        ({"type": "41"}, "41", None),
    ],
)
def test_rule_protocol_and_ports(rule: dict[str, Any], proto: str, ports: Any) -> None:
    r = AclRule.model_validate({"cidr": "0.0.0.0/0", "allowed": True, **rule})
    assert r.proto == proto
    assert r.ports == ports


def test_equal_ports_and_last_port_only() -> None:
    AclRule.model_validate({"type": "tcp", "cidr": "0.0.0.0/0", "allowed": True,
                            "first_port": 80, "last_port": 80})
    r = AclRule.model_validate({"type": "tcp", "cidr": "0.0.0.0/0", "allowed": True,
                                "last_port": 80})
    assert r.ports is None  # without first_port the rule is about every port


def test_reference_acl_denies_everything() -> None:
    acl = parse_bag(load(REFERENCE / "networkacl-1.json"))
    assert isinstance(acl, NetworkAcl)
    assert [(r.proto, r.allowed) for r in acl.ingress_rules + acl.egress_rules] == [
        ("", False), ("", False)]


def test_empty_rule_lists_are_allowed() -> None:
    raw = {"type": "networkacl", "device": "eth2"}
    acl = parse_bag(raw)
    assert acl.ingress_rules == [] and acl.egress_rules == []  # type: ignore[attr-defined]
