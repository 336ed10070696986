"""ip_aliases.json (type ipaliases)."""

from __future__ import annotations

from vragent.bags import parse_bag
from vragent.models import IpAliases

from tests.conftest import REFERENCE
from tests.unit.builders import load

from .checks import assert_rejected

REF = load(REFERENCE / "ipaliases-1.json")


def test_reference_accepted() -> None:
    bag = parse_bag(REF)
    assert isinstance(bag, IpAliases) and len(bag.aliases) == 6


def test_bad_alias_rejected() -> None:
    bad = {"type": "ipaliases", "aliases": [{"ip_address": "169.254.3.300",
                                             "netmask": "255.255.255.0", "revoke": False}]}
    assert_rejected(bad, "aliases.0.ip_address", "not an IPv4")
    bad["aliases"][0] = {"ip_address": "10.1.1.1", "netmask": "255.0.255.0"}
    assert_rejected(bad, "aliases.0.netmask", "netmask")
