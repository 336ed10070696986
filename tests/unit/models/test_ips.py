"""ip_associations.json (type ips)."""

from __future__ import annotations

from typing import Any

import pytest
from vragent.bags import parse_bag
from vragent.models import IpAddress, Ips

from tests.unit.builders import DELETE, mutated, sample_bag

from .checks import assert_rejected

BAG = sample_bag("ip_associations.json")
A0 = ("ip_address", 0)


@pytest.mark.parametrize(
    ("field", "value", "path", "fragment"),
    [
        ("public_ip", "100.64.10.256", "ip_address.0.public_ip", "'100.64.10.256'"),
        ("public_ip", "fe80::1", "ip_address.0.public_ip", "'fe80::1'"),
        ("public_ip", 5, "ip_address.0.public_ip", "must be a string (got 5)"),
        ("public_ip", DELETE, "ip_address.0.public_ip", "required field is missing"),
        ("netmask", DELETE, "ip_address.0.netmask", "required field is missing"),
        ("netmask", "255.0.255.0", "ip_address.0.netmask", "'255.0.255.0'"),
        ("netmask", "33", "ip_address.0.netmask", "'33'"),
        ("gateway", "100.64.10", "ip_address.0.gateway", "'100.64.10'"),
        ("vif_mac_address", "02:00:0a:00:01", "ip_address.0.vif_mac_address",
         "'02:00:0a:00:01'"),
        ("vif_mac_address", "02:00:0a:00:00:0g", "ip_address.0.vif_mac_address",
         "not a MAC address"),
        ("add", "yes", "ip_address.0.add", "'yes'"),
        ("add", 1, "ip_address.0.add", "(got 1)"),
        ("source_nat", "true", "ip_address.0.source_nat", "'true'"),
        ("is_private_gateway", "false", "ip_address.0.is_private_gateway", "'false'"),
        ("nic_dev_id", 64, "ip_address.0.nic_dev_id", "(got 64)"),
        ("nic_dev_id", -1, "ip_address.0.nic_dev_id", "(got -1)"),
        ("nic_dev_id", "one", "ip_address.0.nic_dev_id", "'one'"),
        ("nw_type", "Storage", "ip_address.0.nw_type", "'Storage'"),
    ],
)
def test_rejected(field: str, value: Any, path: str, fragment: str) -> None:
    assert_rejected(mutated(BAG, (*A0, field), value), path, fragment)


def test_list_required() -> None:
    assert_rejected(mutated(BAG, ("ip_address",), DELETE), "ip_address", "required")
    assert_rejected(mutated(BAG, ("ip_address",), {"public_ip": "1.1.1.1"}), "ip_address",
                    "must be a list")


def test_needs_mac_or_device_number() -> None:
    raw = mutated(mutated(BAG, (*A0, "vif_mac_address"), DELETE), (*A0, "nic_dev_id"), DELETE)
    assert_rejected(raw, "ip_address.0", "needs vif_mac_address or nic_dev_id")
    only_mac = mutated(BAG, (*A0, "nic_dev_id"), DELETE)
    assert parse_bag(only_mac).ip_address[0].device_key == ""  # type: ignore[attr-defined]
    only_dev = mutated(BAG, (*A0, "vif_mac_address"), DELETE)
    assert parse_bag(only_dev).ip_address[0].device_key == "eth1"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("sent", "kind"), [("Public", "public"), ("GUEST", "guest"),
                                            ("control", "control")])
def test_nw_type_any_case(sent: str, kind: str) -> None:
    bag = parse_bag(mutated(BAG, (*A0, "nw_type"), sent))
    assert isinstance(bag, Ips)
    assert bag.ip_address[0].nw_type == sent  # kept as sent
    assert bag.ip_address[0].kind == kind


def test_defaults_and_properties() -> None:
    a = IpAddress.model_validate({"public_ip": "1.2.3.4", "netmask": 24, "nic_dev_id": 3})
    assert a.netmask == "24"
    assert (a.add, a.source_nat, a.one_to_one_nat, a.is_private_gateway) == (
        True, False, False, False)
    assert a.kind == "public"
    assert a.device_key == "eth3"
    assert a.model_dump(exclude_unset=True) == {
        "public_ip": "1.2.3.4", "netmask": "24", "nic_dev_id": 3}


def test_mac_lowercased() -> None:
    bag = parse_bag(mutated(BAG, (*A0, "vif_mac_address"), "02:00:0A:00:00:01"))
    assert bag.ip_address[0].vif_mac_address == "02:00:0a:00:00:01"  # type: ignore[attr-defined]


def test_nulls_are_allowed_for_optional_fields() -> None:
    # Gson omits nulls, but a hand-written bag may carry them.
    bag = parse_bag(mutated(BAG, (*A0, "gateway"), None))
    assert bag.ip_address[0].gateway is None  # type: ignore[attr-defined]


def test_public_mtu() -> None:
    bag = sample_bag("ip_associations.json")
    bag["ip_address"][0]["mtu"] = 1400
    assert parse_bag(bag).ip_address[0].mtu == 1400  # type: ignore[attr-defined]
    assert_rejected(mutated(bag, ("ip_address", 0, "mtu"), 20), "ip_address.0.mtu", "(got 20)")
