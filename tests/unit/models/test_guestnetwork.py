"""guest_network.json (type guestnetwork)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from vragent.bags import parse_bag
from vragent.models import GuestNetwork

from tests.conftest import REFERENCE
from tests.unit.builders import DELETE, load, mutated, sample_bag

from .checks import assert_rejected

BAG = sample_bag("guest_network_tier1.json")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("mac_address", "zz:00:0a:00:00:02", "'zz:00:0a:00:00:02'"),
        ("mac_address", DELETE, "required field is missing"),
        ("device", "eth 2", "'eth 2'"),
        ("device", "", "not an interface name"),
        ("device", DELETE, "required field is missing"),
        ("router_guest_ip", "10.10.1", "'10.10.1'"),
        ("router_guest_ip", 167837953, "must be a string (got 167837953)"),
        ("router_guest_ip", DELETE, "required field is missing"),
        ("router_guest_netmask", "255.255.0.255", "'255.255.0.255'"),
        ("router_guest_netmask", DELETE, "required field is missing"),
        ("router_guest_gateway", "10.10.1.300", "'10.10.1.300'"),
        ("cidr", "33", "'33'"),
        ("cidr", "10.10.1.0/40", "'10.10.1.0/40'"),
        ("dns", "10.10.1.1,nope", "'nope' is not an IP address"),
        ("domain_name", "-bad-.lab", "'-bad-.lab'"),
        ("mtu", 67, "(got 67)"),
        ("mtu", 65536, "(got 65536)"),
        ("add", "true", "'true'"),
        ("type", "guest", "'guest'"),
    ],
)
def test_rejected(field: str, value: Any, fragment: str) -> None:
    assert_rejected(mutated(BAG, (field,), value), field, fragment)


@pytest.mark.parametrize("cidr", ["24", "10.10.1.0/24", "0"])
def test_cidr_forms(cidr: str) -> None:
    assert parse_bag(mutated(BAG, ("cidr",), cidr)).cidr == cidr  # type: ignore[attr-defined]


def test_dns_may_list_several_and_ipv6() -> None:
    bag = parse_bag(mutated(BAG, ("dns",), "8.8.8.8, 2001:db8::53"))
    assert bag.dns == "8.8.8.8, 2001:db8::53"  # type: ignore[attr-defined]


def test_network_property() -> None:
    g = parse_bag(load(REFERENCE / "guestnetwork-1.json"))
    assert isinstance(g, GuestNetwork)
    assert g.network == ipaddress.IPv4Network("172.16.1.0/24")
    prefix_form = GuestNetwork.model_validate(mutated(BAG, ("router_guest_netmask",), "22"))
    assert prefix_form.network == ipaddress.IPv4Network("10.10.0.0/22")


def test_defaults() -> None:
    g = GuestNetwork.model_validate({
        "type": "guestnetwork", "mac_address": "02:00:00:00:00:01", "device": "eth5",
        "router_guest_ip": "10.1.1.1", "router_guest_netmask": "255.255.255.0"})
    assert g.add is True
    assert (g.mtu, g.dns, g.domain_name, g.cidr, g.router_guest_gateway) == (
        None, None, None, None, None)
