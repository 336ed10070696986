"""CloudStack merge semantics, one bag type at a time."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from vragent.bags import merge, parse_bag, types
from vragent.bags import models as _bag_models

from tests.conftest import REFERENCE, SAMPLE
from tests.unit.builders import SAMPLE_ORDER, apply_bags, load, sample_bag, sample_docs

BAG_MODELS = _bag_models()

Raw = dict[str, Any]


def _ip(ip: str, dev: int, **extra: Any) -> Raw:
    entry = {"public_ip": ip, "netmask": "255.255.255.0", "gateway": "100.64.10.1",
             "vif_mac_address": f"02:00:0a:00:00:{dev:02x}", "nic_dev_id": dev,
             "nw_type": "Public", "add": True, "source_nat": False}
    entry.update(extra)
    return entry


def _ips(*entries: Raw) -> Raw:
    return {"type": "ips", "ip_address": list(entries)}


def _addresses(docs: dict[str, Any]) -> dict[str, list[str]]:
    return {dev: [a["public_ip"] for a in addrs] for dev, addrs in docs["ips"].items()}


def test_a_merger_for_every_model() -> None:
    assert set(types()) == set(BAG_MODELS)


# -- merge never mutates its input --------------------------------------------

_CASES: list[tuple[str, Raw]] = [(n, sample_bag(n)) for n in SAMPLE_ORDER]
_CASES += [(p.name, load(p)) for p in sorted(REFERENCE.glob("*.json"))
           if load(p)["type"] in BAG_MODELS]
_CASES += [
    ("ips-remove", _ips(_ip("100.64.10.11", 1, add=False))),
    ("ips-move", _ips(_ip("100.64.10.11", 2))),
    ("guest-remove", {**sample_bag("guest_network_tier1.json"), "add": False}),
    ("fwd-revoke", {"type": "forwardrules", "rules": [
        {**sample_bag("forwarding_rules.json")["rules"][0], "revoke": True}]}),
    ("snat-revoke", {"type": "staticnatrules", "rules": [
        {**sample_bag("staticnat_rules.json")["rules"][0], "revoke": True}]}),
    ("route-revoke", {"type": "staticroutes", "routes": [
        {**sample_bag("static_routes.json")["routes"][0], "revoke": True}]}),
    ("fw-revoke", {"type": "firewallrules", "rules": [
        {"id": 1, "protocol": "tcp", "revoked": True}]}),
]


@pytest.mark.parametrize(("name", "raw"), _CASES, ids=[c[0] for c in _CASES])
def test_merge_does_not_mutate_inputs(name: str, raw: Raw) -> None:
    docs = sample_docs()
    docs = apply_bags([load(REFERENCE / "firewallrules-1.json")], docs)
    before = copy.deepcopy(docs)
    bag = parse_bag(copy.deepcopy(raw))
    bag_before = bag.model_dump()
    out = merge(docs, bag.type, bag)  # type: ignore[attr-defined]
    assert docs == before
    assert bag.model_dump() == bag_before
    assert out is not docs
    assert out[bag.type] is not docs.get(bag.type)  # type: ignore[attr-defined]


def test_merge_leaves_other_types_alone() -> None:
    docs = sample_docs()
    out = apply_bags([{"type": "staticroutes", "routes": [
        {"network": "10.50.0.0/16", "gateway": "172.30.0.254"}]}], docs)
    assert {k: v for k, v in out.items() if k != "staticroutes"} == {
        k: v for k, v in docs.items() if k != "staticroutes"}


def test_sample_merges_to_expected_keys() -> None:
    docs = sample_docs()
    assert sorted(docs) == sorted(["cmdline", "ips", "guestnetwork", "networkacl",
                                   "forwardrules", "staticnatrules", "staticroutes",
                                   "dhcpentry", "vmdata", "vmpassword", "loadbalancer",
                                   "site2sitevpn", "remoteaccessvpn", "vpnuserlist"])
    assert _addresses(docs) == {
        "eth1": ["100.64.10.10", "100.64.10.11", "100.64.10.12"],
        "eth2": ["10.10.1.1"],
        "eth3": ["10.10.2.1"],
        "eth4": ["172.30.0.1"],
    }
    assert sorted(docs["guestnetwork"]) == ["eth2", "eth3"]
    assert sorted(docs["networkacl"]) == ["eth2", "eth3"]
    assert list(docs["forwardrules"]) == ["100.64.10.11"]
    assert list(docs["staticnatrules"]) == ["100.64.10.12"]
    assert list(docs["staticroutes"]) == ["10.99.0.0/24"]
    assert all(json.loads(json.dumps(d)) == d for d in docs.values())  # plain JSON


# -- ips ------------------------------------------------------------------------


def test_ips_keyed_by_device_and_stored_as_sent() -> None:
    raw = sample_bag("ip_associations.json")
    docs = apply_bags([raw])
    assert list(docs["ips"]) == ["eth1"]
    stored = docs["ips"]["eth1"]
    for sent, kept in zip(raw["ip_address"], stored, strict=True):
        # Every field as sent, only nw_type normalised to lower case.
        assert kept == {**sent, "nw_type": "public"}


def test_ips_source_nat_first() -> None:
    docs = apply_bags([_ips(_ip("100.64.10.11", 1), _ip("100.64.10.12", 1),
                            _ip("100.64.10.10", 1, source_nat=True))])
    assert _addresses(docs) == {"eth1": ["100.64.10.10", "100.64.10.11", "100.64.10.12"]}
    # A source-NAT address arriving later still goes first; the rest keep their order.
    docs = apply_bags([_ips(_ip("100.64.10.20", 1))], docs)
    docs = apply_bags([_ips(_ip("100.64.10.10", 1, add=False))], docs)
    docs = apply_bags([_ips(_ip("100.64.10.30", 1, source_nat=True))], docs)
    assert _addresses(docs) == {"eth1": ["100.64.10.30", "100.64.10.11", "100.64.10.12",
                                         "100.64.10.20"]}


def test_ips_add_false_removes_and_drops_empty_device() -> None:
    docs = sample_docs()
    docs = apply_bags([_ips(_ip("100.64.10.11", 1, add=False))], docs)
    assert _addresses(docs)["eth1"] == ["100.64.10.10", "100.64.10.12"]
    docs = apply_bags([_ips(_ip("172.30.0.1", 4, add=False))], docs)
    assert "eth4" not in docs["ips"]
    # Removing an address that is not there changes nothing.
    again = apply_bags([_ips(_ip("172.30.0.1", 4, add=False))], docs)
    assert again == docs


def test_ips_address_moving_device() -> None:
    docs = apply_bags([_ips(_ip("100.64.10.10", 1, source_nat=True), _ip("100.64.10.11", 1))])
    docs = apply_bags([_ips(_ip("100.64.10.11", 5))], docs)
    assert _addresses(docs) == {"eth1": ["100.64.10.10"], "eth5": ["100.64.10.11"]}
    assert docs["ips"]["eth5"][0]["nic_dev_id"] == 5
    # Moving the last address of a device drops the device.
    docs = apply_bags([_ips(_ip("100.64.10.10", 5, source_nat=True))], docs)
    assert _addresses(docs) == {"eth5": ["100.64.10.10", "100.64.10.11"]}


def test_ips_resent_address_replaced_not_duplicated() -> None:
    docs = apply_bags([_ips(_ip("100.64.10.10", 1, source_nat=True))])
    docs = apply_bags([_ips(_ip("100.64.10.10", 1, source_nat=True, gateway="100.64.10.254",
                                vlan="vlan://7"))], docs)
    (entry,) = docs["ips"]["eth1"]
    assert entry["gateway"] == "100.64.10.254"
    assert entry["vlan"] == "vlan://7"  # unknown fields survive the merge


def test_ips_control_address_replaces_device() -> None:
    docs = apply_bags([_ips(_ip("169.254.0.5", 0, nw_type="Control"))])
    docs = apply_bags([_ips(_ip("169.254.0.6", 0, nw_type="Control"))], docs)
    assert _addresses(docs) == {"eth0": ["169.254.0.6"]}
    assert docs["ips"]["eth0"][0]["nw_type"] == "control"


def test_ips_without_device_number_keyed_by_mac() -> None:
    entry = _ip("100.64.10.10", 1)
    del entry["nic_dev_id"]
    docs = apply_bags([_ips(entry)])
    assert list(docs["ips"]) == ["mac-02:00:0a:00:00:01"]


def test_ips_nw_type_defaults_to_public() -> None:
    entry = _ip("100.64.10.10", 1)
    del entry["nw_type"]
    docs = apply_bags([_ips(entry)])
    assert docs["ips"]["eth1"][0]["nw_type"] == "public"


# -- guestnetwork ----------------------------------------------------------------


def test_guestnetwork_files_an_ips_entry() -> None:
    raw = sample_bag("guest_network_tier1.json")
    docs = apply_bags([raw])
    assert docs["guestnetwork"] == {"eth2": raw}
    assert docs["ips"] == {"eth2": [{
        "public_ip": "10.10.1.1", "netmask": "255.255.255.0", "add": True,
        "source_nat": False, "one_to_one_nat": False, "nw_type": "guest",
        "vif_mac_address": "02:00:0a:00:00:02", "nic_dev_id": 2,
    }]}


def test_guestnetwork_add_false_removes_both() -> None:
    docs = sample_docs()
    gone = apply_bags([{**sample_bag("guest_network_tier1.json"), "add": False}], docs)
    assert sorted(gone["guestnetwork"]) == ["eth3"]
    assert "eth2" not in gone["ips"]
    assert sorted(gone["ips"]) == ["eth1", "eth3", "eth4"]
    # The tier's ACL goes with it (a stale ACL would block every later command).
    assert sorted(gone["networkacl"]) == ["eth3"]


def test_guestnetwork_resent_is_idempotent() -> None:
    docs = sample_docs()
    again = apply_bags([sample_bag("guest_network_tier1.json")], docs)
    assert again == docs


def test_guestnetwork_device_without_number() -> None:
    raw = {**sample_bag("guest_network_tier1.json"), "device": "tier1"}
    docs = apply_bags([raw])
    assert docs["ips"]["tier1"][0]["nic_dev_id"] is None
    assert list(docs["guestnetwork"]) == ["tier1"]


# -- networkacl ------------------------------------------------------------------


def test_networkacl_replaces_the_device_entry() -> None:
    docs = sample_docs()
    new = {"type": "networkacl", "device": "eth3", "ingress_rules": [
        {"type": "udp", "cidr": "10.10.1.0/24", "first_port": 53, "allowed": True}]}
    out = apply_bags([new], docs)
    assert out["networkacl"]["eth3"] == new  # no egress_rules left over from before
    assert out["networkacl"]["eth2"] == docs["networkacl"]["eth2"]


# -- firewallrules ---------------------------------------------------------------


def _fw(rule_id: int, **extra: Any) -> Raw:
    return {"id": rule_id, "protocol": "tcp", "src_ip": "64.10.10.10",
            "src_port_range": [rule_id, rule_id], "source_cidr_list": ["0.0.0.0/0"], **extra}


def test_firewallrules_keyed_by_id_revoked_deletes() -> None:
    docs = apply_bags([load(REFERENCE / "firewallrules-1.json")])
    rules = docs["firewallrules"]["rules"]
    assert sorted(rules) == ["1", "2"]  # id 3 arrived revoked
    assert rules["1"]["purpose"] == "Firewall"
    docs = apply_bags([{"type": "firewallrules", "rules": [_fw(10), _fw(2)]}], docs)
    assert sorted(docs["firewallrules"]["rules"]) == ["1", "10", "2"]
    assert docs["firewallrules"]["rules"]["2"]["protocol"] == "tcp"  # replaced (was icmp)
    docs = apply_bags([{"type": "firewallrules", "rules": [
        {"id": 1, "protocol": "tcp", "revoked": True}, {"id": 99, "protocol": "tcp",
                                                        "revoked": True}]}], docs)
    assert sorted(docs["firewallrules"]["rules"]) == ["10", "2"]


def test_firewallrules_same_id_twice_in_one_bag_last_wins() -> None:
    docs = apply_bags([{"type": "firewallrules", "rules": [_fw(5), _fw(5, protocol="udp")]}])
    assert docs["firewallrules"]["rules"]["5"]["protocol"] == "udp"


# -- forwardrules ----------------------------------------------------------------


def _fwd(ip: str, ports: str, proto: str = "tcp", dst: str = "10.10.1.10",
         dports: str | None = None, revoke: bool = False) -> Raw:
    return {"source_ip_address": ip, "source_port_range": ports, "protocol": proto,
            "destination_ip_address": dst, "destination_port_range": dports or ports,
            "revoke": revoke}


def _fwds(*rules: Raw) -> Raw:
    return {"type": "forwardrules", "rules": list(rules)}


def _fwd_view(docs: dict[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
    return {ip: [(r["source_port_range"], r["protocol"], r["destination_ip_address"])
                 for r in rules] for ip, rules in docs["forwardrules"].items()}


def test_forwardrules_keyed_by_ip_then_ports_and_protocol() -> None:
    docs = apply_bags([_fwds(_fwd("100.64.10.11", "22:22"), _fwd("100.64.10.11", "80:80"),
                             _fwd("100.64.10.11", "80:80", "udp"),
                             _fwd("100.64.10.12", "80:80"))])
    assert _fwd_view(docs) == {
        "100.64.10.11": [("22:22", "tcp", "10.10.1.10"), ("80:80", "tcp", "10.10.1.10"),
                         ("80:80", "udp", "10.10.1.10")],
        "100.64.10.12": [("80:80", "tcp", "10.10.1.10")],
    }
    # Same ip+ports+protocol: the new rule replaces the old one (now to another VM).
    docs = apply_bags([_fwds(_fwd("100.64.10.11", "80:80", "TCP", dst="10.10.1.20"))], docs)
    assert _fwd_view(docs)["100.64.10.11"] == [
        ("22:22", "tcp", "10.10.1.10"), ("80:80", "udp", "10.10.1.10"),
        ("80:80", "tcp", "10.10.1.20")]


def test_forwardrules_revoke_and_last_rule_drops_ip() -> None:
    docs = apply_bags([_fwds(_fwd("100.64.10.11", "22:22"), _fwd("100.64.10.11", "80:80"))])
    docs = apply_bags([_fwds(_fwd("100.64.10.11", "80:80", dst="10.9.9.9", revoke=True))], docs)
    assert _fwd_view(docs) == {"100.64.10.11": [("22:22", "tcp", "10.10.1.10")]}
    # A revoke for another protocol or range does not match.
    docs = apply_bags([_fwds(_fwd("100.64.10.11", "22:22", "udp", revoke=True),
                             _fwd("100.64.10.11", "22:23", dports="22:23", revoke=True))],
                      docs)
    assert _fwd_view(docs) == {"100.64.10.11": [("22:22", "tcp", "10.10.1.10")]}
    docs = apply_bags([_fwds(_fwd("100.64.10.11", "22:22", revoke=True))], docs)
    assert docs["forwardrules"] == {}


def test_forwardrules_reference_example() -> None:
    docs = apply_bags([load(REFERENCE / "forwardrules-1.json")])
    assert list(docs["forwardrules"]) == ["64.1.1.10"]  # the revoked one never lands


def test_forwardrules_sample_stored_as_sent() -> None:
    raw = sample_bag("forwarding_rules.json")
    docs = apply_bags([raw])
    assert docs["forwardrules"] == {"100.64.10.11": raw["rules"]}


# -- staticnatrules --------------------------------------------------------------


def _snat(ip: str, dst: str, revoke: bool = False) -> Raw:
    return {"type": "staticnatrules", "rules": [
        {"source_ip_address": ip, "destination_ip_address": dst, "revoke": revoke}]}


def test_staticnatrules_keyed_by_public_ip() -> None:
    docs = apply_bags([sample_bag("staticnat_rules.json")])
    assert docs["staticnatrules"] == {
        "100.64.10.12": sample_bag("staticnat_rules.json")["rules"][0]}
    docs = apply_bags([_snat("100.64.10.12", "10.10.2.20"), _snat("100.64.10.13", "10.10.1.5")],
                      docs)
    assert {ip: r["destination_ip_address"] for ip, r in docs["staticnatrules"].items()} == {
        "100.64.10.12": "10.10.2.20", "100.64.10.13": "10.10.1.5"}
    docs = apply_bags([_snat("100.64.10.12", "10.10.2.20", revoke=True)], docs)
    assert list(docs["staticnatrules"]) == ["100.64.10.13"]
    docs = apply_bags([_snat("100.64.10.99", "10.10.2.20", revoke=True)], docs)
    assert list(docs["staticnatrules"]) == ["100.64.10.13"]


# -- staticroutes ----------------------------------------------------------------


def _routes(*routes: tuple[str, str, bool]) -> Raw:
    return {"type": "staticroutes", "routes": [
        {"network": n, "gateway": g, "revoke": r} for n, g, r in routes]}


def test_staticroutes_keyed_by_network() -> None:
    docs = apply_bags([load(REFERENCE / "staticroutes-1.json")])
    assert sorted(docs["staticroutes"]) == ["10.0.0.0/24", "192.168.100.0/24"]
    docs = apply_bags([_routes(("10.0.0.0/24", "172.16.10.9", False))], docs)
    assert docs["staticroutes"]["10.0.0.0/24"] == {
        "network": "10.0.0.0/24", "gateway": "172.16.10.9", "revoke": False}
    docs = apply_bags([_routes(("192.168.100.0/24", "172.16.10.1", True),
                               ("10.1.0.0/16", "172.16.10.1", True))], docs)
    assert sorted(docs["staticroutes"]) == ["10.0.0.0/24"]


# -- cmdline ---------------------------------------------------------------------


def test_cmdline_replaces_config() -> None:
    docs = apply_bags([sample_bag("cmd_line.json")])
    assert docs["cmdline"] == {"config": sample_bag("cmd_line.json")["cmd_line"]}
    docs = apply_bags([{"type": "cmdline", "cmd_line": {"type": "router", "name": "r-9"}}],
                      docs)
    assert docs["cmdline"] == {"config": {"type": "router", "name": "r-9"}}


def test_merge_dispatches_on_type() -> None:
    bag = parse_bag(json.loads((SAMPLE / "static_routes.json").read_text()))
    assert merge({}, "staticroutes", bag) == {"staticroutes": {
        "10.99.0.0/24": bag.routes[0].model_dump(exclude_unset=True)}}  # type: ignore[attr-defined]
    with pytest.raises(KeyError):
        merge({}, "nosuchbag", bag)


def test_guestnetwork_resent_with_a_new_address_replaces_the_old_one() -> None:
    from tests.unit.builders import apply_bags, sample_bag

    first = sample_bag("guest_network_tier1.json")
    moved = dict(first, router_guest_ip="10.10.1.254")
    docs = apply_bags([first, moved])
    assert [a["public_ip"] for a in docs["ips"]["eth2"]] == ["10.10.1.254"]
    assert docs["guestnetwork"]["eth2"]["router_guest_ip"] == "10.10.1.254"


def test_forwardrules_same_port_for_different_sources_are_different_rules() -> None:
    """cs_forwardingrules.py: the source list is part of what identifies a forward."""
    a = {**_fwd("100.64.10.11", "22:22"), "source_cidr_list": "100.64.10.0/24"}
    b = {**_fwd("100.64.10.11", "22:22", dst="10.10.2.10"),
         "source_cidr_list": "100.64.99.0/24,100.64.98.0/24"}
    docs = apply_bags([_fwds(a, b)])
    assert [r["destination_ip_address"] for r in docs["forwardrules"]["100.64.10.11"]] == [
        "10.10.1.10", "10.10.2.10"]
    # The same sources in another order name the same forward: revoking it leaves a.
    revoke = {**b, "source_cidr_list": "100.64.98.0/24, 100.64.99.0/24", "revoke": True}
    docs = apply_bags([_fwds(revoke)], docs)
    assert [r["destination_ip_address"] for r in docs["forwardrules"]["100.64.10.11"]] == [
        "10.10.1.10"]


def test_ips_source_nat_moved_within_one_bag() -> None:
    """The old source-NAT IP removed and a new one added in the same bag: the new one
    leads its device (cs_ip.py merge puts a source-NAT IP first)."""
    docs = sample_docs()
    moved = sample_bag("ip_associations.json")
    old, *_ = moved["ip_address"]
    moved["ip_address"] = [{**old, "add": False},
                           {**old, "public_ip": "100.64.10.15", "source_nat": True}]
    docs = apply_bags([moved], docs)
    assert [a["public_ip"] for a in docs["ips"]["eth1"]] == [
        "100.64.10.15", "100.64.10.11", "100.64.10.12"]
