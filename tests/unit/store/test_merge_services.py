"""Merging the services' bags: dhcpentry, vmdata, vmpassword, ipaliases."""

from __future__ import annotations

from typing import Any

from tests.unit.builders import apply_bags, sample_bag

E1 = sample_bag("vm_dhcp_entry_vm1.json")


def entry(**fields: Any) -> dict[str, Any]:
    return {**E1, **fields}


def test_entries_are_filed_by_address() -> None:
    docs = apply_bags([E1, sample_bag("vm_dhcp_entry_vm2.json")])
    assert sorted(docs["dhcpentry"]) == ["10.10.1.10", "10.10.2.10"]
    assert docs["dhcpentry"]["10.10.1.10"] == E1  # stored as sent


def test_a_mac_resent_with_a_new_address_loses_the_old_one() -> None:
    docs = apply_bags([E1, entry(ipv4_address="10.10.1.77")])
    assert list(docs["dhcpentry"]) == ["10.10.1.77"]


def test_remove_deletes_by_address_and_mac() -> None:
    docs = apply_bags([E1, sample_bag("vm_dhcp_entry_vm2.json"), entry(remove=True)])
    assert list(docs["dhcpentry"]) == ["10.10.2.10"]
    # Removing what is not there changes nothing.
    assert apply_bags([entry(remove=True)], docs) == docs


def test_entry_without_ipv4_is_filed_by_mac() -> None:
    docs = apply_bags([entry(ipv4_address="", ipv6_address="fd00::10")])
    assert list(docs["dhcpentry"]) == ["mac-02:00:0a:01:00:0a"]


def test_vmdata_bag_is_the_vms_whole_data() -> None:
    first = sample_bag("vm_metadata_vm1.json")
    docs = apply_bags([first])
    vm = docs["vmdata"]["10.10.1.10"]
    assert list(vm["metadata"]) == [n for f, n, _ in first["vm_metadata"] if f == "metadata"]
    # A later bag replaces it: files it lists empty, or not at all, are gone.
    second = {**first, "vm_metadata": [["metadata", "instance-id", "i-2"],
                                       ["userdata", "user-data", ""]]}
    docs = apply_bags([second], docs)
    assert docs["vmdata"]["10.10.1.10"] == {"metadata": {"instance-id": "i-2"}}
    # Nothing left: the VM goes.
    docs = apply_bags([{**first, "vm_metadata": [["metadata", "instance-id", ""]]}], docs)
    assert "10.10.1.10" not in docs["vmdata"]


def test_passwords_accumulate_per_vm() -> None:
    docs = apply_bags([
        {"type": "vmpassword", "ip_address": "10.10.1.10", "password": "a"},
        {"type": "vmpassword", "ip_address": "10.10.2.10", "password": "b"},
        {"type": "vmpassword", "ip_address": "10.10.1.10", "password": "c"}])
    assert docs["vmpassword"] == {"10.10.1.10": "c", "10.10.2.10": "b"}


def test_aliases_revoked_and_added_in_order() -> None:
    from tests.conftest import REFERENCE
    from tests.unit.builders import load

    docs = apply_bags([load(REFERENCE / "ipaliases-1.json")])
    # The reference bag revokes three addresses, then adds them back.
    assert sorted(docs["ipaliases"]) == ["169.254.3.10", "169.254.3.11", "169.254.3.12"]
    revoke = {"type": "ipaliases", "aliases": [
        {"ip_address": "169.254.3.11", "netmask": "255.255.255.0", "revoke": True}]}
    docs = apply_bags([revoke], docs)
    assert sorted(docs["ipaliases"]) == ["169.254.3.10", "169.254.3.12"]
