"""static_routes.json (type staticroutes): StaticRoute.java's fields; IPv6 as
the management server's model allows it (see features/routes/model.py)."""

from __future__ import annotations

from typing import Any

import pytest
from vragent.bags import parse_bag
from vragent.features.routes.model import StaticRoutes

from tests.unit.builders import DELETE, mutated, sample_bag

from .checks import assert_rejected

BAG = sample_bag("static_routes.json")
R0 = ("routes", 0)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("network", "10.99.0.0/33", "'10.99.0.0/33'"),
        ("network", "10.99.0.0", "missing /prefix"),
        ("network", "10.99.0.0", "'10.99.0.0'"),
        ("network", "fd99::/129", "'fd99::/129'"),
        ("network", DELETE, "required field is missing"),
        ("gateway", "gw", "not an IPv4 or IPv6 address (got 'gw')"),
        ("gateway", "fe80::1%eth2", "not an IPv4 or IPv6 address"),
        ("gateway", 172, "must be a string (got 172)"),
        ("gateway", DELETE, "required field is missing"),
        ("ip_address", "172.30.0", "'172.30.0'"),
        ("revoke", "true", "'true'"),
    ],
)
def test_rejected(field: str, value: Any, fragment: str) -> None:
    assert_rejected(mutated(BAG, (*R0, field), value), f"routes.0.{field}", fragment)


def test_routes_list_required() -> None:
    assert_rejected(mutated(BAG, ("routes",), DELETE), "routes", "required field is missing")


def test_accepted() -> None:
    bag = parse_bag(BAG)
    assert isinstance(bag, StaticRoutes)
    (route,) = bag.routes
    assert (route.network, route.gateway, route.revoke, route.ip_address) == (
        "10.99.0.0/24", "172.30.0.254", False, "172.30.0.1")
    minimal = StaticRoutes.model_validate({"type": "staticroutes", "routes": [
        {"network": "0.0.0.0/0", "gateway": "10.0.0.1"}]})
    assert minimal.routes[0].revoke is False


@pytest.mark.parametrize(("network", "gateway", "fragment"), [
    ("fd99:1::/64", "172.30.0.254", "an IPv4 gateway for the IPv6 network 'fd99:1::/64'"),
    ("10.99.0.0/24", "fd10:10:2::20", "an IPv6 gateway for the IPv4 network '10.99.0.0/24'"),
])
def test_family_mismatch_refused_on_the_gateway(network: str, gateway: str,
                                                fragment: str) -> None:
    raw = mutated(mutated(BAG, (*R0, "network"), network), (*R0, "gateway"), gateway)
    assert_rejected(raw, "routes.0.gateway", fragment)


def test_ipv6_route_accepted() -> None:
    raw = mutated(mutated(BAG, (*R0, "network"), "fd99:1::/64"), (*R0, "gateway"),
                  "fd10:10:2::20")
    bag = parse_bag(raw)
    assert isinstance(bag, StaticRoutes)
    assert (bag.routes[0].network, bag.routes[0].gateway) == ("fd99:1::/64", "fd10:10:2::20")
