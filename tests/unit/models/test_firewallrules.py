"""firewall_rules.json (type firewallrules)."""

from __future__ import annotations

from typing import Any

import pytest
from vragent.bags import parse_bag
from vragent.features.netfilter.model_firewall import FirewallRule, FirewallRules

from tests.conftest import REFERENCE
from tests.unit.builders import DELETE, load, mutated

from .checks import assert_rejected

BAG = load(REFERENCE / "firewallrules-1.json")
R0 = ("rules", 0)


@pytest.mark.parametrize(
    ("field", "value", "path", "fragment"),
    [
        ("id", -1, "rules.0.id", "(got -1)"),
        ("id", "one", "rules.0.id", "'one'"),
        ("id", DELETE, "rules.0.id", "required field is missing"),
        ("protocol", "gre", "rules.0.protocol", "unknown protocol"),
        ("protocol", "gre", "rules.0.protocol", "'gre'"),
        ("protocol", 6, "rules.0.protocol", "must be a string (got 6)"),
        ("protocol", DELETE, "rules.0.protocol", "required field is missing"),
        ("traffic_type", "Sideways", "rules.0.traffic_type", "'Sideways'"),
        ("src_ip", "64.10.10", "rules.0.src_ip", "'64.10.10'"),
        ("src_port_range", [80, 22], "rules.0", "src_port_range [80, 22]: port range is reversed"),
        ("src_port_range", [0, 70000], "rules.0", "[0, 70000]: port outside 1-65535"),
        ("src_port_range", [22, 23, 24], "rules.0",
         "src_port_range must be [first, last], got [22, 23, 24]"),
        ("src_port_range", "22:80", "rules.0.src_port_range", "'22:80'"),
        ("source_cidr_list", ["10.0.0.0/8", "x"], "rules.0.source_cidr_list.1", "(got 'x')"),
        ("source_cidr_list", "10.0.0.0/8", "rules.0.source_cidr_list", "'10.0.0.0/8'"),
        ("dest_cidr_list", ["10.0.0.0"], "rules.0.dest_cidr_list.0", "missing /prefix"),
        ("revoked", "false", "rules.0.revoked", "'false'"),
        ("default_egress_policy", "true", "rules.0.default_egress_policy", "'true'"),
        ("icmp_type", 300, "rules.0.icmp_type", "(got 300)"),
    ],
)
def test_rejected(field: str, value: Any, path: str, fragment: str) -> None:
    assert_rejected(mutated(BAG, (*R0, field), value), path, fragment)


def test_revoked_ingress_needs_no_src_ip() -> None:
    raw = mutated(mutated(BAG, (*R0, "src_ip"), DELETE), (*R0, "revoked"), True)
    assert parse_bag(raw).rules[0].src_ip is None  # type: ignore[attr-defined]


def test_egress_rule_needs_no_src_ip() -> None:
    r = FirewallRule.model_validate({"id": 7, "protocol": "all", "traffic_type": "Egress",
                                     "default_egress_policy": True})
    assert not r.is_ingress
    assert r.default_egress_policy is True


@pytest.mark.parametrize(
    ("protocol", "rng", "ports"),
    [
        ("tcp", [22, 80], (22, 80)),
        ("UDP", [53, 53], (53, 53)),
        ("tcp", [0, 0], None),
        ("tcp", None, None),
        ("icmp", [22, 80], None),
        ("all", [1, 2], None),
    ],
)
def test_ports_property(protocol: str, rng: Any, ports: Any) -> None:
    r = FirewallRule.model_validate({"id": 1, "protocol": protocol, "src_ip": "1.2.3.4",
                                     "src_port_range": rng})
    assert r.ports == ports


@pytest.mark.parametrize("traffic", ["Ingress", "INGRESS", "ingress"])
def test_traffic_type_any_case(traffic: str) -> None:
    r = FirewallRule.model_validate({"id": 1, "protocol": "tcp", "src_ip": "1.2.3.4",
                                     "traffic_type": traffic})
    assert r.is_ingress
    assert r.traffic_type == traffic


def test_reference_example() -> None:
    bag = parse_bag(BAG)
    assert isinstance(bag, FirewallRules)
    assert [(r.id, r.protocol, r.revoked, r.ports) for r in bag.rules] == [
        (1, "tcp", False, (22, 80)), (2, "icmp", False, None), (3, "icmp", True, None)]
    assert bag.rules[1].icmp_type == -1


def test_egress_rules_as_the_management_server_sends_them() -> None:
    """CommandSetupHelper.createFirewallRulesCommands: src_ip "", the system rule
    (protocol all, no source CIDRs) carrying the default, a 1-element port range."""
    bag = parse_bag({"type": "firewallrules", "rules": [
        {"id": 0, "src_ip": "", "protocol": "all", "revoked": False, "source_cidr_list": [],
         "dest_cidr_list": [], "purpose": "Firewall", "traffic_type": "Egress",
         "default_egress_policy": True},
        {"id": 7, "src_ip": "", "protocol": "tcp", "src_port_range": [80],
         "source_cidr_list": ["10.1.1.0/24"], "dest_cidr_list": None,
         "traffic_type": "Egress", "default_egress_policy": True},
        {"id": 8, "src_ip": "100.64.20.10", "protocol": "icmp", "icmp_type": -1,
         "icmp_code": -1, "source_cidr_list": ["0.0.0.0/0", "::/0"],
         "traffic_type": "Ingress"},
    ]})
    system, user, ingress = bag.rules  # type: ignore[attr-defined]
    assert (system.src_ip, system.is_default_egress) == (None, True)
    assert (user.is_default_egress, user.ports, user.destinations) == (False, (80, 80), [])
    assert ingress.sources == ["0.0.0.0/0", "::/0"] and not ingress.is_default_egress
