"""RouterConfig: the typed view of the stored documents."""

from __future__ import annotations

import pytest
from vragent.config import RouterConfig
from vragent.errors import StoreError

from tests.conftest import REFERENCE
from tests.unit.builders import PAIR_BOOT, apply_bags, load, sample_config, sample_docs


def test_empty_store_is_a_bare_vpc_router() -> None:
    cfg = RouterConfig.from_docs({})
    assert cfg.cmdline.router_type == "vpcrouter"
    rules = cfg.part("netfilter")
    assert (cfg.ips, cfg.guests, rules.acls, rules.firewall, rules.forwards, rules.staticnat,
            cfg.part("routes")) == ({}, {}, {}, [], [], [], [])
    assert cfg.redundant is False


def test_sample_config() -> None:
    cfg = sample_config()
    assert sorted(cfg.ips) == ["eth1", "eth2", "eth3", "eth4"]
    assert sorted(cfg.guests) == ["eth2", "eth3"]
    assert sorted(cfg.part("netfilter").acls) == ["eth2", "eth3"]
    assert [(f.source_ip_address, f.public_ports) for f in cfg.part("netfilter").forwards] == [
        ("100.64.10.11", (2222, 2222))]
    assert [s.destination_ip_address for s in cfg.part("netfilter").staticnat] == ["10.10.2.10"]
    assert [r.network for r in cfg.part("routes")] == ["10.99.0.0/24"]
    assert cfg.redundant is False


def test_redundant_flag_without_sync_link_is_cloudstack_mode() -> None:
    # What a management server sends: no sync link, and still one of a pair.
    docs = apply_bags([load(REFERENCE / "cmdline-1.json")])
    cfg = RouterConfig.from_docs(docs)
    assert cfg.redundant is True and cfg.ha_problem is None
    assert cfg.ha is not None and cfg.ha.mode == "cloudstack"


def test_ha_params_from_boot_parameters() -> None:
    docs = apply_bags([load(REFERENCE / "cmdline-1.json")])
    docs["cmdline"]["config"].update(PAIR_BOOT)
    cfg = RouterConfig.from_docs(docs)
    assert cfg.redundant is True and cfg.ha_problem is None
    ha = cfg.ha
    assert ha is not None
    assert ha.mode == "sync-link"
    assert (ha.vrid, ha.priority, ha.advert_int, ha.version) == (12, 100, 1.0, 3)
    assert (ha.sync_dev, ha.sync_ip, ha.sync_prefix, ha.peer) == ("eth5", "10.255.0.1", 24,
                                                                   "10.255.0.2")
    # Default advert address: the highest host of the sync network, the same on both.
    assert ha.vip == "10.255.0.254"


def test_sync_dev_without_address_is_explained() -> None:
    docs = apply_bags([load(REFERENCE / "cmdline-1.json")])
    docs["cmdline"]["config"]["sync_dev"] = "eth7"
    cfg = RouterConfig.from_docs(docs)
    assert cfg.redundant is True and cfg.ha is not None and cfg.ha.mode == "cloudstack"
    assert cfg.ha_problem is not None and "eth7ip" in cfg.ha_problem


def test_firewall_rules_in_numeric_id_order() -> None:
    rules = [{"id": i, "protocol": "tcp", "src_ip": "1.2.3.4", "src_port_range": [i, i]}
             for i in (10, 2, 33, 1)]
    cfg = RouterConfig.from_docs(apply_bags([{"type": "firewallrules", "rules": rules}]))
    assert [r.id for r in cfg.part("netfilter").firewall] == [1, 2, 10, 33]


def test_forwards_flattened_in_stable_order() -> None:
    def fwd(ip: str, port: int) -> dict[str, object]:
        return {"source_ip_address": ip, "source_port_range": f"{port}:{port}",
                "destination_ip_address": "10.0.0.1",
                "destination_port_range": f"{port}:{port}", "protocol": "tcp"}

    docs = apply_bags([{"type": "forwardrules", "rules": [
        fwd("100.64.10.12", 80), fwd("100.64.10.11", 443), fwd("100.64.10.11", 22)]}])
    cfg = RouterConfig.from_docs(docs)
    assert [(f.source_ip_address, f.public_ports[0]) for f in cfg.part("netfilter").forwards] == [
        ("100.64.10.11", 443), ("100.64.10.11", 22), ("100.64.10.12", 80)]


def test_hand_edited_state_is_a_store_error() -> None:
    docs = sample_docs()
    docs["staticroutes"]["10.99.0.0/24"]["gateway"] = "not-an-ip"
    with pytest.raises(StoreError, match=r"stored configuration is invalid: gateway: "
                                         r"not an IPv4 or IPv6 address \(got 'not-an-ip'\)"):
        RouterConfig.from_docs(docs)
