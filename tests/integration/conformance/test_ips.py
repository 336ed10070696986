"""ips bags on the VPC router: public addresses, source NAT, MTU.

upstream: systemvm/debian/opt/cloud/bin/cs_ip.py merge (add false removes the entry),
cs/CsAddress.py CsAddress.compare (addresses no longer in the bag leave the NIC),
Java CommandSetupHelper.createVpcAssociatePublicIPCommands (source NAT IP sent first,
IpAddressTO.mtu from the VPC's public MTU).
"""

from __future__ import annotations

from ..harness import Router
from .conftest import (
    FAR,
    PUB2,
    PUB3,
    SNAT_IP,
    addrs,
    apply_bags,
    ips_bag,
    mtu,
    seen_as,
    serve,
    tier1,
    tier2,
    vpc_ips,
    vpc_public,
)

NEW_SNAT = "100.64.10.15"


def test_base_public_ips_on_public_nic(vpc: Router) -> None:
    """upstream: cs/CsAddress.py CsAddress.process (each public_ip/netmask on the NIC with
    vif_mac_address; nw_type "Public" compared without case)."""
    apply_bags(vpc, vpc_ips(), tier1(), tier2())
    assert {f"{ip}/24" for ip in (SNAT_IP, PUB2, PUB3)} <= set(addrs(vpc, "eth1"))


def test_removing_every_public_ip_leaves_nic_without_ipv4(vpc: Router) -> None:
    """upstream: cs_ip.py merge (add false) and cs/CsAddress.py CsAddress.compare:
    removing the last public IP of a NIC removes its address too."""
    apply_bags(vpc, vpc_ips(), tier1(), tier2())
    apply_bags(vpc, vpc_ips(add=False))
    assert addrs(vpc, "eth1") == []


def test_source_nat_moves_to_new_address_in_one_bag(vpc: Router) -> None:
    """upstream: cs_ip.py merge (old source NAT add false, new one add true in one
    IpAssocCommand) and cs/CsAddress.py CsIP.post_config_change (SNAT --to-source the
    source NAT IP)."""
    apply_bags(vpc, vpc_ips(), tier1(), tier2())
    apply_bags(vpc, ips_bag(
        vpc_public(SNAT_IP, source_nat=True, add=False),
        vpc_public(NEW_SNAT, source_nat=True, add=True),
    ))
    have = set(addrs(vpc, "eth1"))
    assert f"{SNAT_IP}/24" not in have
    assert {f"{NEW_SNAT}/24", f"{PUB2}/24", f"{PUB3}/24"} <= have
    with serve(vpc, "out", 7400):
        assert seen_as(vpc, "vm1", FAR, 7400) == NEW_SNAT


def test_public_mtu_sets_nic_mtu(vpc: Router) -> None:
    """upstream: Java IpAddressTO.setMtu(vpc.getPublicMtu()) in
    CommandSetupHelper.createVpcAssociatePublicIPCommands; applied on the router as in
    update_interface_config.sh (ifconfig <if> mtu <mtu>)."""
    apply_bags(vpc, vpc_ips(mtu=1400), tier1(), tier2())
    assert mtu(vpc, "eth1") == 1400
