"""IPv6 static routes (staticroutes bag): a next hop on a dual-stack tier or
the public IPv6 network, installed as cs/CsStaticRoutes.py's
``ip route add <network> via <gateway>`` would (see features/routes/model.py
for why upstream's Java cannot send one yet)."""

from __future__ import annotations

import copy
from typing import Any

from vragent.config import RouterConfig
from vragent.features.routes import subsystem as routes
from vragent.features.routes.subsystem import MAIN, Route, render
from vragent.topology import resolve

from tests.unit.builders import (
    apply_bags,
    pair_docs,
    pair_links,
    sample_docs,
    sample_links,
    settings,
)

from .test_ipv6 import TIER1_V6, TIER2_V6, dual_stack_bags


def _desired(extra: list[dict[str, Any]], docs: Any = None,
             links: Any = None) -> routes.Desired:
    base = dual_stack_bags() if docs is None else []
    cfg = RouterConfig.from_docs(apply_bags([*base, *extra],
                                            copy.deepcopy(docs or sample_docs())))
    return routes.desired(cfg, resolve(cfg, links or sample_links()), settings())


def _routes(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"type": "staticroutes", "routes": [
        {"network": n, "gateway": g, "revoke": False} for n, g in pairs]}


def test_ipv6_route_via_a_dual_stack_tier_and_the_public_network() -> None:
    d = _desired([_routes(("fd99:1:0::5/64", "fd10:10:2:0::20"),
                          ("fd98::/48", "fd64:10::fe"))])
    # Normalised as the kernel shows them, so apply finds them installed.
    assert Route(MAIN, "fd99:1::/64", "fd10:10:2::20", "eth3") in d.routes
    assert Route(MAIN, "fd98::/48", "fd64:10::fe", "eth1") in d.routes
    # IPv4 static routes are untouched by the IPv6 ones.
    assert Route(MAIN, "10.99.0.0/24", "172.30.0.254", "eth4") in d.routes
    assert d.warnings == ()
    assert "route to fd99:1::/64 via fd10:10:2::20 dev eth3 table main\n" in render(d).text()


def test_ipv6_gateway_off_every_ipv6_link_waits_with_a_warning() -> None:
    # On a tier's IPv4 side only (no IPv6 there), or a link-local next hop:
    # no IPv6 network of the router holds it.
    d = _desired([_routes(("fd99:1::/64", "fd10:10:3::20"), ("fd99:2::/64", "fe80::5"))])
    assert not any(r.dst.startswith("fd99:") for r in d.routes)
    assert d.warnings == (
        "staticroutes.fd99:1::/64: gateway fd10:10:3::20 is not on a connected IPv6 "
        "network yet; route not installed",
        "staticroutes.fd99:2::/64: gateway fe80::5 is not on a connected IPv6 "
        "network yet; route not installed",
    )
    assert routes.verify(d) == []


def test_ipv6_gateway_needs_the_tier_to_have_ipv6() -> None:
    # The sample VPC without IPv6: its tiers' IPv4 networks do not hold an IPv6 next hop.
    d = _desired([_routes(("fd99:1::/64", "fd10:10:2::20"))], docs=sample_docs())
    assert not any(r.dst == "fd99:1::/64" for r in d.routes)
    assert "not on a connected IPv6 network" in d.warnings[0]


def test_pair_ipv6_route_via_a_tier_is_onlink() -> None:
    # keepalived moves the tier's IPv6 gateway: on the backup only an on-link route is valid.
    from tests.unit.builders import sample_bag

    tier2 = {**sample_bag("guest_network_tier2.json"), **TIER2_V6}
    tier1 = {**sample_bag("guest_network_tier1.json"), **TIER1_V6}
    d = _desired([tier1, tier2, _routes(("fd99:1::/64", "fd10:10:2::20"))],
                 docs=pair_docs(), links=pair_links())
    assert Route(MAIN, "fd99:1::/64", "fd10:10:2::20", "eth3", onlink=True) in d.routes
