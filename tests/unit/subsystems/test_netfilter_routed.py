"""Routed mode (CloudStack 4.20) as upstream marks and builds it: one boot
parameter for the whole router, never a tier's.

Upstream followed: VpcVirtualNetworkApplianceManagerImpl.finalizeVirtualMachineProfile
("if (routedIpv4Manager.isRoutedVpc(vpc)) buf.append(" is_routed=true")") and
VirtualNetworkApplianceManagerImpl.createGuestBootLoadArgs (an isolated
network whose offering's network mode is ROUTED); on the router
cs/CsAddress.py (fw_router_routing, fw_vpcrouter_routing, the VPC source NAT
"and not self.config.is_routed()") and configure.py CsAcl
(AclDevice.__process_routing_ip4: a routed tier's ACL chains, both directions
ending in drop). The guestnetwork and ips bags carry no routed field
(core/.../virtualnetwork/model/GuestNetwork.java, IpAddress.java).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from vragent.bags import BagError, parse_bag
from vragent.config import RouterConfig
from vragent.features.netfilter.subsystem import Ruleset
from vragent.topology import resolve

from tests.conftest import REFERENCE
from tests.unit.builders import apply_bags, load, sample_bag, sample_docs, sample_links

from .golden_files import check_golden
from .test_netfilter import _chains, _render

SNAT_IP = "100.64.10.10"


def _vpc(*bags: dict[str, Any], routed: bool = True) -> tuple[RouterConfig, Any]:
    cmdline = sample_bag("cmd_line.json")
    if routed:
        cmdline["cmd_line"]["is_routed"] = "true"
    docs = apply_bags([cmdline, *bags], copy.deepcopy(sample_docs()))
    cfg = RouterConfig.from_docs(docs)
    return cfg, resolve(cfg, sample_links())


def _source_nat(rs: Ruleset) -> list[str]:
    return [r for r in _chains(rs)["nat_postrouting"] if f"snat ip to {SNAT_IP}" in r]


def _ingress_only_acl() -> dict[str, Any]:
    acl = sample_bag("network_acl_tier2.json")
    acl["egress_rules"] = []
    return acl


def test_the_reference_boot_parameters_of_a_routed_vpc() -> None:
    # tests/fixtures/cloudstack/cmdline-routed-1.json: the boot parameters as
    # VpcVirtualNetworkApplianceManagerImpl appends them for a routed VPC.
    cfg = RouterConfig.from_docs(apply_bags([load(REFERENCE / "cmdline-routed-1.json")]))
    assert cfg.cmdline.flag("is_routed")
    plain = RouterConfig.from_docs(apply_bags([load(REFERENCE / "cmdline-1.json")]))
    assert not plain.cmdline.flag("is_routed")


@pytest.mark.parametrize("value", ["yes", "", "TRUE!"])
def test_is_routed_other_than_a_boolean_is_refused_naming_it(value: str) -> None:
    raw = load(REFERENCE / "cmdline-routed-1.json")
    raw["cmd_line"]["is_routed"] = value
    with pytest.raises(BagError) as exc:
        parse_bag(raw)
    assert f"is_routed={value!r}" in str(exc.value)
    assert "expected 0, 1, true or false" in str(exc.value)


def test_routed_is_the_whole_routers_no_tier_is_source_natted() -> None:
    assert _source_nat(_render(*_vpc(routed=False)))
    assert _source_nat(_render(*_vpc())) == []


def test_a_routed_field_in_a_tier_bag_is_kept_and_ignored() -> None:
    # CloudStack sends none (GuestNetwork.java, IpAddress.java have no such
    # field); an unknown field changes nothing, the boot parameter decides.
    tier = sample_bag("guest_network_tier1.json")
    tier["is_routed"] = True
    cfg, topo = _vpc(tier, routed=False)
    assert "eth2" in cfg.guests  # the bag was taken
    assert _source_nat(_render(cfg, topo))
    assert _chains(_render(cfg, topo)) == _chains(_render(*_vpc(routed=False)))


def test_routed_tier_acl_judges_egress_even_without_egress_rules() -> None:
    # __process_routing_ip4: "<dev>_egress_policy", its rules, then drop.
    c = _chains(_render(*_vpc(_ingress_only_acl())))
    assert c["acl_out_eth3"] == ("counter drop",)
    egress = c["forward_egress"]
    assert egress[0] == "ct state established,related accept"
    assert 'iifname "eth3" jump acl_out_eth3' in egress
    # The same ACL on a NATed VPC leaves egress open (4.x CsAcl.AclDevice).
    natted = _chains(_render(*_vpc(_ingress_only_acl(), routed=False)))
    assert "acl_out_eth3" not in natted
    assert not any("acl_out_eth3" in r for r in natted["forward_egress"])


def test_golden_routed_vpc() -> None:
    rs = _render(*_vpc(_ingress_only_acl()))
    check_golden("netfilter/routed_vpc.txt", "".join(
        f"chain {c.name} ({c.hook or 'regular'})\n" + "".join(f"\t{r}\n" for r in c.rules)
        for c in rs.chains if c.name.startswith(("acl_", "forward_", "nat_postrouting"))))
