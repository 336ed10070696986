"""ipv6_firewall_rules.json (type ipv6firewallrules), as
core/.../facade/SetIpv6FirewallRulesConfigItem.java writes it (model/FirewallRule.java
through Gson, LOWER_CASE_WITH_UNDERSCORES, guest_ip6_cidr set on every rule)."""

from __future__ import annotations

from typing import Any

import pytest
from vragent.bags import merge, parse_bag

from tests.conftest import REFERENCE
from tests.unit.builders import DELETE, load, mutated

from .checks import assert_rejected

BAG = load(REFERENCE / "ipv6firewallrules-1.json")
R0 = ("rules", 0)

# Every string field of a rule, with a well-formed value to poison.
STRING_FIELDS = {
    ("protocol",): "tcp",
    ("traffic_type",): "Ingress",
    ("guest_ip6_cidr",): "fd00:10:1::/64",
    ("source_cidr_list", 0): "fd00:64::/64",
    ("dest_cidr_list", 0): "fd00:10:1::/64",
    ("purpose",): "Ipv6Firewall",
    ("src_ip",): "fd00:10:1::5",
    ("src_vlan_tag",): "vlan://100",
    ("guest_cidr",): "10.20.1.0/24",
}
# What would end an nft statement, open a set or a block, negate, quote or cut.
POISON = ["\n", "\r\n", " }", "{ ", " !", "!= ", '"', "'", "\x00", "; flush ruleset", " accept"]


def _with(field: tuple[Any, ...], value: Any) -> dict[str, Any]:
    raw = mutated(BAG, (*R0, "dest_cidr_list"), ["fd00:10:1::/64"])
    return mutated(raw, (*R0, *field), value)


@pytest.mark.parametrize("poison", POISON, ids=repr)
@pytest.mark.parametrize("field", sorted(STRING_FIELDS), ids=lambda f: ".".join(map(str, f)))
def test_injection_refused_naming_the_field(field: tuple[Any, ...], poison: str) -> None:
    good = STRING_FIELDS[field]
    path = ".".join(map(str, (*R0, *field)))
    for value in (good + poison, poison + good):
        err = assert_rejected(_with(field, value), path)
        assert not any("\x00" in p or "\n" in p for p in err.problems)


@pytest.mark.parametrize("field", sorted(STRING_FIELDS), ids=lambda f: ".".join(map(str, f)))
def test_well_formed_values_accepted(field: tuple[Any, ...]) -> None:
    parse_bag(_with(field, STRING_FIELDS[field]))


@pytest.mark.parametrize(
    ("field", "value", "path", "fragment"),
    [
        ("id", -1, "rules.0.id", "(got -1)"),
        ("protocol", "gre", "rules.0.protocol", "unknown protocol"),
        ("traffic_type", "Sideways", "rules.0.traffic_type", "expected Ingress or Egress"),
        ("guest_ip6_cidr", DELETE, "rules.0.guest_ip6_cidr", "required field is missing"),
        ("guest_ip6_cidr", "10.20.1.0/24", "rules.0.guest_ip6_cidr", "not an IPv6 CIDR"),
        ("source_cidr_list", ["10.0.0.0/8"], "rules.0.source_cidr_list.0", "not an IPv6 CIDR"),
        ("source_cidr_list", ["fd00::1"], "rules.0.source_cidr_list.0", "missing /prefix"),
        ("src_port_range", [80, 22], "rules.0", "port range is reversed"),
        ("src_port_range", [0, 70000], "rules.0", "port outside 1-65535"),
        ("icmp_type", 300, "rules.0.icmp_type", "(got 300)"),
        ("purpose", "Firewalls", "rules.0.purpose", "expected one of"),
        ("default_egress_policy", "true", "rules.0.default_egress_policy", "'true'"),
    ],
)
def test_rejected(field: str, value: Any, path: str, fragment: str) -> None:
    assert_rejected(mutated(BAG, (*R0, field), value), path, fragment)


def test_merge_by_id_and_prefixes_remembered() -> None:
    docs = merge({}, "ipv6firewallrules", parse_bag(BAG))
    assert sorted(docs["ipv6firewallrules"]["rules"]) == ["41", "42", "43"]
    revoke = mutated(BAG, (*R0, "revoked"), True)
    revoke["rules"] = revoke["rules"][:1]
    docs = merge(docs, "ipv6firewallrules", parse_bag(revoke))
    assert sorted(docs["ipv6firewallrules"]["rules"]) == ["42", "43"]
    assert docs["ipv6firewallrules"]["networks"] == {"fd00:10:1::/64": False}
