"""forwarding_rules.json (type forwardrules) and staticnat_rules.json (type staticnatrules)."""

from __future__ import annotations

from typing import Any

import pytest
from vragent.bags import parse_bag
from vragent.features.netfilter.model_forward import (
    MAX_SHIFTED_RANGE,
    ForwardRule,
    ForwardRules,
    StaticNatRule,
)

from tests.conftest import REFERENCE
from tests.unit.builders import DELETE, load, mutated, sample_bag

from .checks import assert_rejected

FWD = sample_bag("forwarding_rules.json")
SNAT = sample_bag("staticnat_rules.json")
R0 = ("rules", 0)


@pytest.mark.parametrize(
    ("field", "value", "path", "fragment"),
    [
        ("source_ip_address", "100.64.10", "rules.0.source_ip_address", "'100.64.10'"),
        ("source_ip_address", 5, "rules.0.source_ip_address", "must be a string (got 5)"),
        ("source_ip_address", DELETE, "rules.0.source_ip_address", "required field is missing"),
        ("destination_ip_address", "10.10.1.x", "rules.0.destination_ip_address",
         "'10.10.1.x'"),
        ("source_port_range", "80:22", "rules.0.source_port_range", "reversed (got '80:22')"),
        ("destination_port_range", "80:22", "rules.0.destination_port_range", "'80:22'"),
        ("source_port_range", "0:70000", "rules.0.source_port_range", "port outside 1-65535"),
        ("source_port_range", "70000:70000", "rules.0.source_port_range", "'70000:70000'"),
        ("source_port_range", "0:0", "rules.0.source_port_range", "needs ports"),
        ("source_port_range", "2222", "rules.0.source_port_range", "'first:last'"),
        ("source_port_range", [2222, 2222], "rules.0.source_port_range", "must be a string"),
        ("protocol", "icmp", "rules.0.protocol", "'icmp'"),
        ("protocol", "gre", "rules.0.protocol", "unknown protocol"),
        # A number passes check_protocol but cannot be a port forward (nft needs tcp/udp).
        ("protocol", "6", "rules.0.protocol", "unknown protocol (expected tcp or udp)"),
        ("protocol", "17", "rules.0.protocol", "'17'"),
        ("revoke", "no", "rules.0.revoke", "'no'"),
        ("destination_port_range", "22:23", "rules.0", "differ in size"),
    ],
)
def test_forward_rejected(field: str, value: Any, path: str, fragment: str) -> None:
    assert_rejected(mutated(FWD, (*R0, field), value), path, fragment)


def test_reversed_ranges_are_named_with_their_value() -> None:
    err = assert_rejected(mutated(FWD, (*R0, "source_port_range"), "80:22"),
                          "rules.0.source_port_range", "'80:22'")
    assert err.bag_type == "forwardrules"


def _fwd(src: str, dst: str, proto: str = "tcp") -> ForwardRule:
    return ForwardRule.model_validate({
        "source_ip_address": "1.1.1.1", "destination_ip_address": "10.0.0.1",
        "source_port_range": src, "destination_port_range": dst, "protocol": proto})


def test_shifted_range_limit() -> None:
    last = 1000 + MAX_SHIFTED_RANGE - 1
    rule = _fwd(f"1000:{last}", f"2000:{2000 + MAX_SHIFTED_RANGE - 1}")
    assert rule.public_ports == (1000, last)
    with pytest.raises(ValueError, match="at most 256 ports"):
        _fwd(f"1000:{last + 1}", f"2000:{2000 + MAX_SHIFTED_RANGE}")
    # An unshifted range of any size is one rule.
    assert _fwd("1:65535", "1:65535").private_ports == (1, 65535)


def test_forward_properties() -> None:
    r = _fwd("2222:2222", "22:22", "TCP")
    assert r.protocol == "tcp"
    assert r.public_ports == (2222, 2222)
    assert r.private_ports == (22, 22)
    assert r.key == "1.1.1.1:2222:2222:tcp"
    assert _fwd("53:53", "53:53", "udp").key != _fwd("53:53", "53:53", "tcp").key


def test_reference_forward_bag() -> None:
    bag = parse_bag(load(REFERENCE / "forwardrules-1.json"))
    assert isinstance(bag, ForwardRules)
    assert [(r.source_ip_address, r.public_ports, r.revoke) for r in bag.rules] == [
        ("64.1.1.10", (22, 80), False), ("64.1.1.11", (8080, 8080), True)]


@pytest.mark.parametrize(
    ("field", "value", "path", "fragment"),
    [
        ("source_ip_address", "100.64.10.1200", "rules.0.source_ip_address",
         "'100.64.10.1200'"),
        ("destination_ip_address", DELETE, "rules.0.destination_ip_address",
         "required field is missing"),
        ("source_port_range", "80:22", "rules.0.source_port_range", "'80:22'"),
        ("revoke", "false", "rules.0.revoke", "'false'"),
    ],
)
def test_staticnat_rejected(field: str, value: Any, path: str, fragment: str) -> None:
    assert_rejected(mutated(SNAT, (*R0, field), value), path, fragment)


def test_staticnat_defaults() -> None:
    r = StaticNatRule.model_validate({"source_ip_address": "1.1.1.1",
                                      "destination_ip_address": "10.0.0.1"})
    assert (r.source_port_range, r.revoke) == ("0:0", False)


def test_source_cidr_list_as_forwarding_rule_sends_it() -> None:
    """ForwardingRule.sourceCidrList: one comma-separated string, possibly empty."""
    rule = ForwardRule.model_validate({**FWD["rules"][0],
                                       "source_cidr_list": "100.64.99.0/24, 10.0.0.0/8"})
    assert rule.sources == ["100.64.99.0/24", "10.0.0.0/8"]
    assert ForwardRule.model_validate({**FWD["rules"][0], "source_cidr_list": ""}).sources == []
    anyone = ForwardRule.model_validate({**FWD["rules"][0],
                                         "source_cidr_list": "0.0.0.0/0,::/0"})
    assert anyone.sources == []
    assert_rejected(mutated(FWD, (*R0, "source_cidr_list"), "100.64.99.0/24,nope"),
                    "rules.0.source_cidr_list", "'nope' is not an IPv4 or IPv6 CIDR")
