"""vm_dhcp_entry.json (type dhcpentry)."""

from __future__ import annotations

from typing import Any

import pytest
from vragent.bags import parse_bag
from vragent.features.dhcp.model import DhcpEntry

from tests.conftest import REFERENCE
from tests.unit.builders import DELETE, load, mutated, sample_bag

from .checks import assert_rejected

BAG = sample_bag("vm_dhcp_entry_vm1.json")


def test_reference_and_sample_accepted() -> None:
    ref = parse_bag(load(REFERENCE / "dhcpentry-1.json"))
    assert isinstance(ref, DhcpEntry) and ref.default_entry and not ref.remove
    bag = parse_bag(BAG)
    assert isinstance(bag, DhcpEntry) and bag.dns == ["10.10.1.1"] and bag.routes == []


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("host_name", "bad_name", "not a host name"),
        ("host_name", "a" * 64, "not a host name"),
        ("host_name", "vm1.", "not a host name"),
        ("host_name", "-vm", "not a host name"),
        ("host_name", "vm\n1", "not a host name"),
        ("host_name", "", "not a host name"),
        ("host_name", DELETE, "required field is missing"),
        ("mac_address", "02:00:0a:01:00", "not a MAC address"),
        ("ipv4_address", "10.10.1.256", "not an IPv4 address"),
        ("ipv4_address", "10.10.1.1\n", "not an IPv4 address"),
        ("ipv6_address", "10.1.1.1", "not an IPv6 address"),
        ("ipv6_duid", "00:03:zz", "not a DUID"),
        ("dns_addresses", "10.1.1.1,dns.example", "'dns.example' is not an IPv4 address"),
        ("static_routes", "10.99.0.0/16", "pairs"),
        ("static_routes", "10.99.0.1/16,10.10.1.254", "not an IPv4 network"),
        ("static_routes", "10.99.0.0,10.10.1.254", "needs a /prefix"),
        ("lease_time", "forever", "not a lease time"),
        ("lease_time", 60, "minimum of 120"),
        ("default_entry", "yes", "must be true or false"),
    ],
)
def test_rejected(field: str, value: Any, fragment: str) -> None:
    assert_rejected(mutated(BAG, (field,), value), field, fragment)


def test_routes_and_lease_times() -> None:
    bag = parse_bag({**BAG, "static_routes": "10.99.0.0/16,10.10.1.254;10.98.0.0/24,10.10.1.253",
                     "lease_time": "12h"})
    assert isinstance(bag, DhcpEntry)
    assert bag.routes == [("10.99.0.0/16", "10.10.1.254"), ("10.98.0.0/24", "10.10.1.253")]
    for ok in ("infinite", 3600, "3600", "1d"):
        parse_bag({**BAG, "lease_time": ok})


def test_ipv6_only_entry_has_no_ipv4() -> None:
    bag = parse_bag({**BAG, "ipv4_address": "", "ipv6_address": "fd00::10"})
    assert isinstance(bag, DhcpEntry) and bag.ipv4_address is None
