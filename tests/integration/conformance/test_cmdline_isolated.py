"""Isolated router (cmd_line type=router): the upstream NIC layout and base rules.

eth0 guest (its address, the guest gateway, from eth0ip/eth0mask), eth1 control
(eth1ip/eth1mask), eth2 public from the ips bag.
"""

from __future__ import annotations

import re

from ..harness import Router
from .conftest import (
    FAR,
    ISO_GW,
    ISO_PUB,
    ISO_PUB_GW,
    ISO_VM,
    addrs,
    apply_bags,
    egress_system_rule,
    eventually_pings,
    firewall_rules,
    forward_rule,
    forward_rules,
    fw_rule,
    iso_ips,
    nft_table,
    seen_as,
    serve,
)


def test_boot_puts_guest_and_control_addresses_from_cmdline(iso: Router) -> None:
    """upstream: systemvm/debian/opt/cloud/bin/merge.py processCL (router: eth0 guest,
    eth1 control, eth2 public) and cs/CsAddress.py CsIP.configure."""
    assert f"{ISO_GW}/24" in addrs(iso, "eth0")
    assert "169.254.0.20/16" in addrs(iso, "eth1")


def test_public_ip_from_ips_bag_lands_on_eth2(iso: Router) -> None:
    """upstream: merge.py updateDataBag.process_ip / cs/CsAddress.py CsAddress.process."""
    apply_bags(iso, iso_ips())
    assert f"{ISO_PUB}/24" in addrs(iso, "eth2")


def test_vm_pings_its_guest_gateway(iso: Router) -> None:
    """upstream: cs/CsAddress.py CsIP.fw_router (-A INPUT -p icmp -j ACCEPT)."""
    apply_bags(iso, iso_ips())
    assert eventually_pings(iso, "vm", ISO_GW)


def test_vm_leaves_with_source_nat_ip_when_egress_allowed(iso: Router) -> None:
    """upstream: cs/CsAddress.py CsIP.fw_router (nat POSTROUTING -o <pubdev> -j SNAT
    --to-source <source nat ip>) and configure.py CsAcl.AclIP.add_rule (egress default)."""
    apply_bags(iso, iso_ips(), firewall_rules(egress_system_rule(True)))
    with serve(iso, "out", 7000):
        assert seen_as(iso, "vm", FAR, 7000) == ISO_PUB
        assert seen_as(iso, "vm", ISO_PUB_GW, 7000) == ISO_PUB


def _dns_accept_on(listing: str, ifname: str, proto: str) -> bool:
    for line in listing.splitlines():
        if (f'"{ifname}"' in line and f"{proto} dport" in line
                and re.search(r"\b53\b", line) and line.strip().endswith("accept")):
            return True
    return False


def test_input_accepts_dns_from_guest_nic(iso: Router) -> None:
    """upstream: cs/CsAddress.py CsIP.fw_router, guest: -A INPUT -i eth0 -p udp -m udp
    --dport 53 -s <guestNet> -j ACCEPT (and tcp). Checked in the table listing."""
    apply_bags(iso, iso_ips())
    listing = nft_table(iso)
    assert _dns_accept_on(listing, "eth0", "udp"), listing
    assert _dns_accept_on(listing, "eth0", "tcp"), listing


def test_dns_query_from_guest_reaches_router(iso: Router) -> None:
    """upstream: cs/CsAddress.py CsIP.fw_router (udp 53 from the guest network).
    A stand-in UDP service on port 53 in the router namespace answers the VM."""
    apply_bags(iso, iso_ips())
    with serve(iso, "r", 53, proto="udp"):
        assert seen_as(iso, "vm", ISO_GW, 53, proto="udp") == ISO_VM


def test_port_forward_with_ingress_rule_reaches_vm(iso: Router) -> None:
    """upstream: configure.py CsForwardingRules.forward_vr + CsAcl.AclIP (FIREWALL_<ip>)."""
    apply_bags(
        iso, iso_ips(),
        forward_rules(forward_rule(ISO_PUB, "2222:2222", ISO_VM, "22:22")),
        firewall_rules(fw_rule(20, "tcp", "Ingress", src_ip=ISO_PUB, ports=(2222, 2222),
                               source_cidr_list=["0.0.0.0/0"])),
    )
    with serve(iso, "vm", 22):
        assert seen_as(iso, "out", ISO_PUB, 2222) == ISO_PUB_GW
