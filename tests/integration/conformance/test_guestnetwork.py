"""guestnetwork bags on the VPC router: tier NICs and their gateway addresses.

upstream: systemvm/debian/opt/cloud/bin/cs_guestnetwork.py merge (keyed by device;
add false removes) and merge.py updateDataBag.process_guestnetwork (adds an ips entry
nw_type guest with router_guest_ip, removed again with add false).
"""

from __future__ import annotations

from ..harness import Router
from .conftest import (
    GW1,
    GW2,
    addrs,
    apply_bags,
    eventually_pings,
    mtu,
    pings,
    tier1,
    tier2,
    vpc_ips,
)


def test_tier_gateway_answers_ping(vpc: Router) -> None:
    """upstream: merge.py process_guestnetwork (router_guest_ip on the NIC; in a
    non-redundant router it equals router_guest_gateway) and cs/CsAddress.py
    CsIP.fw_vpcrouter (-A INPUT -p icmp -j ACCEPT)."""
    apply_bags(vpc, vpc_ips(), tier1(), tier2())
    assert f"{GW1}/24" in addrs(vpc, "eth2")
    assert eventually_pings(vpc, "vm1", GW1)
    assert eventually_pings(vpc, "vm2", GW2)


def test_removing_tier_removes_gateway_address(vpc: Router) -> None:
    """upstream: cs_guestnetwork.py merge / merge.py process_guestnetwork (add false
    deletes the device's ips entry) and cs/CsAddress.py CsAddress.compare."""
    apply_bags(vpc, vpc_ips(), tier1(), tier2())
    assert eventually_pings(vpc, "vm2", GW2)
    apply_bags(vpc, tier2(add=False))
    assert f"{GW2}/24" not in addrs(vpc, "eth3")
    assert not pings(vpc, "vm2", GW2, timeout=0.5)
    assert eventually_pings(vpc, "vm1", GW1)  # the other tier is untouched


def test_guest_mtu_sets_nic_mtu(vpc: Router) -> None:
    """upstream: Java GuestNetwork.setMtu(nic.getMtu()) (SetupGuestNetworkCommand),
    applied like update_interface_config.sh (ifconfig <if> mtu <mtu>)."""
    apply_bags(vpc, vpc_ips(), tier1(mtu=1450), tier2())
    assert mtu(vpc, "eth2") == 1450
