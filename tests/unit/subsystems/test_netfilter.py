"""Netfilter: what the ruleset says, rule by rule, and how long chains are chunked."""

from __future__ import annotations

import copy
import zlib
from typing import Any

import pytest
from vragent.config import RouterConfig
from vragent.features.netfilter import subsystem as netfilter
from vragent.features.netfilter.model_acl import AclRule
from vragent.features.netfilter.subsystem import (
    CHUNK_MASK,
    CHUNK_MAX,
    CHUNK_MIN,
    Chain,
    Ruleset,
    _delta,
    _record,
    acl_rules,
    chunked,
)
from vragent.reconcile import desired_states
from vragent.topology import resolve

from tests.unit.builders import (
    apply_bags,
    cloudstack_pair_topology,
    isolated_bags,
    isolated_links,
    isolated_topology,
    sample_bag,
    sample_docs,
    sample_links,
    sample_topology,
    settings,
)

HOOKS = {
    "mangle_prerouting": "type filter hook prerouting priority mangle; policy accept;",
    "nat_prerouting": "type nat hook prerouting priority dstnat; policy accept;",
    "nat_postrouting": "type nat hook postrouting priority srcnat; policy accept;",
    "forward_egress": "type filter hook forward priority filter; policy accept;",
    "forward_ingress": "type filter hook forward priority 10; policy accept;",
    "forward_firewall": "type filter hook forward priority 20; policy accept;",
    "forward_final": "type filter hook forward priority 30; policy drop;",
    "input": "type filter hook input priority filter; policy drop;",
    # What features count (the usage feature's counters), after every filter.
    "count_forward": "type filter hook forward priority 100; policy accept;",
    "count_input": "type filter hook input priority 100; policy accept;",
    "count_output": "type filter hook output priority 100; policy accept;",
}


def _render(cfg: RouterConfig, topo: Any) -> Ruleset:
    # Both passes of the plan: every feature's declared traffic included.
    d = desired_states(cfg, topo, settings())["netfilter"]
    assert netfilter.verify(d) == []
    return netfilter.render(d)


def _chains(rs: Ruleset) -> dict[str, tuple[str, ...]]:
    return {c.name: c.rules for c in rs.chains}


@pytest.fixture(scope="module")
def vpc() -> dict[str, tuple[str, ...]]:
    return _chains(_render(*sample_topology()))


@pytest.fixture(scope="module")
def iso() -> dict[str, tuple[str, ...]]:
    return _chains(_render(*isolated_topology()))


# -- the sample VPC --------------------------------------------------------------


def test_base_chains_and_hooks() -> None:
    rs = _render(*sample_topology())
    hooks = {c.name: c.hook for c in rs.chains if c.hook}
    assert hooks == HOOKS
    assert rs.table == "vragent"
    # Every jump target is defined before the chain that jumps to it.
    seen: set[str] = set()
    for c in rs.chains:
        for rule in c.rules:
            if "jump " in rule:
                assert rule.split("jump ")[1].split()[0] in seen, rule
        seen.add(c.name)
    assert rs.rule_count == sum(len(c.rules) for c in rs.chains)


def test_source_nat_via_the_source_nat_address(vpc: dict[str, tuple[str, ...]]) -> None:
    snat = vpc["nat_postrouting"]
    assert snat[-1] == ('oifname "eth1" ip saddr != { 100.64.10.10, 100.64.10.11, '
                        '100.64.10.12 } snat ip to 100.64.10.10')


def test_port_forward(vpc: dict[str, tuple[str, ...]]) -> None:
    assert "ip daddr 100.64.10.11 tcp dport 2222 dnat ip to 10.10.1.10:22" in vpc["port_forward"]
    assert vpc["nat_prerouting"] == ("jump port_forward",)


def test_static_nat_both_ways(vpc: dict[str, tuple[str, ...]]) -> None:
    assert "ip daddr 100.64.10.12 dnat ip to 10.10.2.10" in vpc["port_forward"]
    snat = list(vpc["nat_postrouting"])
    one_to_one = 'oifname "eth1" ip saddr 10.10.2.10 snat ip to 100.64.10.12'
    assert one_to_one in snat
    # ...and ahead of the general source NAT, which would otherwise catch the VM first.
    assert snat.index(one_to_one) < len(snat) - 1


def test_hairpin_nat_per_tier(vpc: dict[str, tuple[str, ...]]) -> None:
    tiers = '{ "eth2", "eth3", "eth4" }'
    assert [r for r in vpc["nat_postrouting"] if r.startswith("ct status dnat")] == [
        f'ct status dnat iifname {tiers} oifname "eth2" snat ip to 10.10.1.1',
        f'ct status dnat iifname {tiers} oifname "eth3" snat ip to 10.10.2.1',
        f'ct status dnat iifname {tiers} oifname "eth4" snat ip to 172.30.0.1',
    ]


def test_acl_chains(vpc: dict[str, tuple[str, ...]]) -> None:
    assert vpc["acl_in_eth2"] == ("tcp dport 22 accept", "meta l4proto icmp accept",
                                  "counter drop")
    assert vpc["acl_in_eth3"] == (
        "ip saddr 10.10.1.0/24 tcp dport 8080 accept",
        "ip saddr 10.10.1.0/24 tcp dport 9090 drop",
        "tcp dport 80 accept",
        "meta l4proto icmp accept",
        "counter drop",
    )
    assert vpc["acl_out_eth2"] == ("accept", "counter drop")
    assert vpc["forward_egress"][2:] == ('iifname "eth2" jump acl_out_eth2',
                                         'iifname "eth3" jump acl_out_eth3')
    # The private gateway (eth4) has no ACL: nothing about it in forward_ingress.
    assert vpc["forward_ingress"][2:] == ('oifname "eth2" jump acl_in_eth2',
                                          'oifname "eth3" jump acl_in_eth3')


def test_policy_routing_marks(vpc: dict[str, tuple[str, ...]]) -> None:
    assert vpc["mangle_prerouting"] == ('iifname "eth1" ct state new ct mark set 101',
                                        "ct mark != 0 meta mark set ct mark")


def test_input_chain(vpc: dict[str, tuple[str, ...]]) -> None:
    inp = vpc["input"]
    assert inp[0] == 'iifname "lo" accept'
    assert 'iifname "eth0" tcp dport 3922 accept' in inp
    assert 'iifname { "eth2", "eth3", "eth4" } udp dport { 53, 67 } accept' in inp
    assert inp[-1] == "counter drop"
    assert not any("fw_in_" in r for r in inp)  # VPC public IPs have no firewall chains


def test_tier_without_acl_admits_nothing_new_in_a_vpc() -> None:
    docs = sample_docs()
    del docs["networkacl"]["eth3"]
    cfg = RouterConfig.from_docs(docs)
    chains = _chains(_render(cfg, resolve(cfg, sample_links())))
    assert 'oifname "eth3" counter drop' in chains["forward_ingress"]
    assert not any("ct status dnat accept" in r for r in chains["forward_ingress"])
    assert "acl_in_eth3" not in chains


def test_forward_final_without_guests() -> None:
    docs = apply_bags([sample_bag("cmd_line.json"), sample_bag("ip_associations.json")])
    cfg = RouterConfig.from_docs(docs)
    chains = _chains(_render(cfg, resolve(cfg, sample_links())))
    assert chains["forward_final"] == ("ct state established,related accept", "counter drop")
    assert chains["nat_postrouting"] == (
        ('oifname "eth1" ip saddr != { 100.64.10.10, 100.64.10.11, 100.64.10.12 } '
         "snat ip to 100.64.10.10"),
    )


def test_shifted_port_range_expanded_per_port() -> None:
    docs = apply_bags([{"type": "forwardrules", "rules": [{
        "source_ip_address": "100.64.10.11", "source_port_range": "8000:8002",
        "destination_ip_address": "10.10.1.10", "destination_port_range": "80:82",
        "protocol": "udp"}, {
        "source_ip_address": "100.64.10.11", "source_port_range": "9000:9100",
        "destination_ip_address": "10.10.1.11", "destination_port_range": "9000:9100",
        "protocol": "tcp"}]}], sample_docs())
    cfg = RouterConfig.from_docs(docs)
    pf = _chains(_render(cfg, resolve(cfg, sample_links())))["port_forward"]
    assert [r for r in pf if "10.10.1.1" in r and "2222" not in r] == [
        "ip daddr 100.64.10.11 udp dport 8000 dnat ip to 10.10.1.10:80",
        "ip daddr 100.64.10.11 udp dport 8001 dnat ip to 10.10.1.10:81",
        "ip daddr 100.64.10.11 udp dport 8002 dnat ip to 10.10.1.10:82",
        "ip daddr 100.64.10.11 tcp dport 9000-9100 dnat ip to 10.10.1.11",
    ]


def test_verify_reports_what_cannot_be_realised() -> None:
    docs = apply_bags([
        {"type": "forwardrules", "rules": [{
            "source_ip_address": "198.51.100.1", "source_port_range": "22:22",
            "destination_ip_address": "10.10.1.10", "destination_port_range": "22:22",
            "protocol": "tcp"}]},
        {"type": "staticnatrules", "rules": [{
            "source_ip_address": "198.51.100.2", "destination_ip_address": "10.10.1.10"}]},
        {"type": "networkacl", "device": "eth9", "ingress_rules": []},
    ], sample_docs())
    cfg = RouterConfig.from_docs(docs)
    d = netfilter.desired(cfg, resolve(cfg, sample_links()), settings())
    assert sorted(netfilter.verify(d)) == sorted([
        "forwardrules: public IP 198.51.100.1 is not configured on this router",
        "staticnatrules: public IP 198.51.100.2 is not configured on this router",
        "networkacl.eth9: no guest tier or private gateway on eth9",
    ])
    # What can be realised still is.
    assert [f.source_ip_address for f in d.forwards] == ["100.64.10.11"]
    assert [s.source_ip_address for s in d.staticnat] == ["100.64.10.12"]
    assert sorted(d.acls) == ["eth2", "eth3"]


def test_table_name_from_settings() -> None:
    cfg, topo = sample_topology()
    d = netfilter.desired(cfg, topo, settings().__class__(nft_table="vr_test"))
    text = netfilter.render(d).text()
    assert text.startswith("table inet vr_test\ndelete table inet vr_test\ntable inet vr_test {")


# -- acl_rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "ingress", "expected"),
    [
        ({"type": "tcp", "cidr": "0.0.0.0/0", "first_port": 22, "last_port": 22}, True,
         "tcp dport 22 accept"),
        ({"type": "udp", "cidr": "10.0.0.0/8", "first_port": 1000, "last_port": 2000}, True,
         "ip saddr 10.0.0.0/8 udp dport 1000-2000 accept"),
        ({"type": "tcp", "cidr": "10.0.0.0/8,192.168.0.0/16"}, False,
         "ip daddr { 10.0.0.0/8, 192.168.0.0/16 } meta l4proto tcp accept"),
        ({"type": "icmp", "cidr": "0.0.0.0/0", "icmp_type": 8, "icmp_code": 0}, True,
         "icmp type 8 icmp code 0 accept"),
        ({"type": "icmp", "cidr": "0.0.0.0/0", "icmp_type": 3, "icmp_code": -1}, True,
         "icmp type 3 accept"),
        ({"type": "icmp", "cidr": "0.0.0.0/0", "icmp_type": -1, "icmp_code": -1}, True,
         "meta l4proto icmp accept"),
        ({"type": "all", "cidr": "0.0.0.0/0"}, True, "accept"),
        ({"type": "protocol", "protocol": 47, "cidr": "172.16.0.0/12"}, False,
         "ip daddr 172.16.0.0/12 meta l4proto 47 accept"),
        # "any" among other networks is still any: upstream emits one -s per CIDR.
        ({"type": "all", "cidr": "0.0.0.0/0, 10.1.0.0/16"}, True, "accept"),
        # SetNetworkAclConfigItem: tcp/udp items without ports arrive as 0-0: every port.
        ({"type": "tcp", "cidr": "0.0.0.0/0", "first_port": 0, "last_port": 0}, True,
         "meta l4proto tcp accept"),
        ({"type": "udp", "cidr": "10.0.0.0/8", "first_port": 0, "last_port": 65535}, True,
         "ip saddr 10.0.0.0/8 meta l4proto udp accept"),
        # SetNetworkACLCommand writes an empty source list as both families' "any".
        ({"type": "tcp", "cidr": "0.0.0.0/0,::/0", "first_port": 80, "last_port": 80}, True,
         "tcp dport 80 accept"),
    ],
)
@pytest.mark.parametrize("allowed", [True, False])
def test_acl_rule(rule: dict[str, Any], ingress: bool, expected: str, allowed: bool) -> None:
    r = AclRule.model_validate({**rule, "allowed": allowed})
    verdict = "accept" if allowed else "drop"
    assert acl_rules(r, ingress) == [expected.removesuffix("accept") + verdict]


def test_acl_rule_with_both_families_gets_one_rule_per_family() -> None:
    r = AclRule.model_validate({"type": "tcp", "cidr": "10.1.0.0/16,fd00::/8,10.2.0.0/16",
                                "first_port": 22, "last_port": 22, "allowed": True})
    assert acl_rules(r, True) == ["ip saddr { 10.1.0.0/16, 10.2.0.0/16 } tcp dport 22 accept",
                                  "ip6 saddr fd00::/8 tcp dport 22 accept"]
    only_v6 = AclRule.model_validate({"type": "all", "cidr": "::/0", "allowed": False})
    assert acl_rules(only_v6, False) == ["meta nfproto ipv6 drop"]


# -- the isolated router: public-IP firewall and egress policy -------------------------


def test_isolated_ingress_firewall_chains(iso: dict[str, tuple[str, ...]]) -> None:
    assert iso["fw_in_100_64_20_10"] == (
        "meta l4proto tcp ct original proto-dst 22 accept", "counter drop")
    assert iso["fw_in_100_64_20_11"] == (
        ("ip saddr { 198.18.113.0/24, 198.51.100.7/32 } meta l4proto tcp "
         "ct original proto-dst 2222 accept"),
        "icmp type 8 accept",
        "counter drop",
    )
    # Forwarded (DNAT) traffic and traffic to the router itself both pass through them.
    assert iso["forward_firewall"][1:3] == (
        "ct status dnat ct original ip daddr 100.64.20.10 jump fw_in_100_64_20_10",
        "ct status dnat ct original ip daddr 100.64.20.11 jump fw_in_100_64_20_11",
    )
    # Ahead of the ICMP accept: the public IP's firewall governs ping to it too
    # (CsAddress.fw_router: FIREWALL_<ip> in mangle PREROUTING ends in DROP).
    inp = list(iso["input"])
    jumps = ["ip daddr 100.64.20.10 jump fw_in_100_64_20_10",
             "ip daddr 100.64.20.11 jump fw_in_100_64_20_11"]
    assert inp[inp.index(jumps[0]):inp.index(jumps[0]) + 3] == [*jumps,
                                                                "meta l4proto icmp accept"]
    assert inp[-1] == "counter drop"


def test_isolated_port_forward_reaches_the_firewall(iso: dict[str, tuple[str, ...]]) -> None:
    # A drop in an earlier base chain is final: forwarded connections must get past
    # forward_ingress to be judged by the public IP's firewall chain.
    ingress = list(iso["forward_ingress"])
    admit = 'oifname "eth0" ct status dnat accept'
    assert admit in ingress
    assert ingress.index(admit) < ingress.index('oifname "eth0" counter drop')
    assert "ip daddr 100.64.20.11 tcp dport 2222 dnat ip to 10.20.1.10:22" in iso["port_forward"]


def test_isolated_public_ip_without_rules_admits_nothing() -> None:
    bags = isolated_bags()
    bags[-1] = {"type": "firewallrules", "rules": [r for r in bags[-1]["rules"]
                                                    if r["id"] != 1]}
    cfg = RouterConfig.from_docs(apply_bags(bags))
    chains = _chains(_render(cfg, resolve(cfg, isolated_links())))
    assert chains["fw_in_100_64_20_10"] == ("counter drop",)


def test_isolated_egress_default_allow(iso: dict[str, tuple[str, ...]]) -> None:
    # default_egress_policy true: everything may leave except what the rules name.
    assert iso["fw_egress"] == (
        "ip saddr 10.20.1.0/24 tcp dport 25 drop",
        "ip saddr 10.20.1.0/24 ip daddr 198.18.2.0/24 meta l4proto udp drop",
        "accept",
    )
    assert iso["forward_firewall"][-1] == 'iifname "eth0" oifname "eth2" jump fw_egress'


def test_isolated_egress_default_deny() -> None:
    chains = _chains(_render(*isolated_topology(default_egress_policy=False)))
    assert chains["fw_egress"] == (
        "ip saddr 10.20.1.0/24 tcp dport 25 accept",
        "ip saddr 10.20.1.0/24 ip daddr 198.18.2.0/24 meta l4proto udp accept",
        "counter drop",
    )


def test_egress_default_comes_last_wherever_the_bag_puts_it() -> None:
    bags = isolated_bags(default_egress_policy=False)
    rules = bags[-1]["rules"]
    bags[-1] = {"type": "firewallrules", "rules": [*rules[4:], rules[3], *rules[:3]]}
    cfg = RouterConfig.from_docs(apply_bags(bags))
    chains = _chains(_render(cfg, resolve(cfg, isolated_links())))
    assert chains["fw_egress"][-1] == "counter drop"
    assert len(chains["fw_egress"]) == 3


def test_egress_rules_without_the_default_rule_drop_the_rest() -> None:
    # The FORWARD policy upstream is DROP: what no rule allows does not pass.
    bags = isolated_bags(default_egress_policy=False)
    bags[-1] = {"type": "firewallrules", "rules": [r for r in bags[-1]["rules"]
                                                    if r["id"] != 0]}
    cfg = RouterConfig.from_docs(apply_bags(bags))
    chains = _chains(_render(cfg, resolve(cfg, isolated_links())))
    assert chains["fw_egress"][-1] == "counter drop"


def test_no_egress_chain_without_egress_rules() -> None:
    bags = isolated_bags()
    bags[-1] = {"type": "firewallrules", "rules": [r for r in bags[-1]["rules"]
                                                    if r["traffic_type"] == "Ingress"]}
    cfg = RouterConfig.from_docs(apply_bags(bags))
    chains = _chains(_render(cfg, resolve(cfg, isolated_links())))
    assert "fw_egress" not in chains
    assert not any("fw_egress" in r for r in chains["forward_firewall"])


# -- chunking ---------------------------------------------------------------------


def _rules(n: int, start: int = 0) -> list[str]:
    return [f"ip saddr 10.{i // 256 % 256}.{i % 256}.0/24 tcp dport {1024 + i} accept"
            for i in range(start, start + n)]


def _digests(chains: list[Chain]) -> dict[str, str]:
    return {c.name: c.digest() for c in chains}


def _changed(old: list[Chain], new: list[Chain]) -> tuple[set[str], set[str]]:
    """(chains added or with new content, chains gone)."""
    o, n = _digests(old), _digests(new)
    return {k for k in n if o.get(k) != n[k]}, set(o) - set(n)


@pytest.mark.parametrize("n", [0, 1, CHUNK_MIN - 1, CHUNK_MIN])
def test_short_chains_stay_whole(n: int) -> None:
    rules = _rules(n)
    assert chunked("acl_in_eth2", rules, ["counter drop"]) == [
        Chain("acl_in_eth2", (*rules, "counter drop"))]


@pytest.mark.parametrize("n", [CHUNK_MIN + 1, 1000, 10_000])
def test_long_chains_are_split(n: int) -> None:
    rules = _rules(n)
    chains = chunked("acl_in_eth2", rules, ["counter drop"])
    parent, chunks = chains[-1], chains[:-1]
    assert parent.name == "acl_in_eth2"
    assert len(chunks) > 1
    # The parent jumps to every chunk in order, then ends with the tail.
    assert parent.rules == (*(f"jump {c.name}" for c in chunks), "counter drop")
    # Chunks hold every rule, in order, once; none is empty or over the cap.
    assert [r for c in chunks for r in c.rules] == rules
    assert all(0 < len(c.rules) <= CHUNK_MAX for c in chunks)
    assert all(c.name.startswith("acl_in_eth2_") and not c.hook for c in chunks)
    # Boundaries are where the content says, or at the cap.
    for c in chunks[:-1]:
        last = c.rules[-1]
        assert (zlib.crc32(last.encode()) & CHUNK_MASK) == 0 or len(c.rules) == CHUNK_MAX
        assert not any((zlib.crc32(r.encode()) & CHUNK_MASK) == 0 for r in c.rules[:-1])


def test_chunk_names_depend_on_content_only() -> None:
    rules = _rules(2000)
    a = chunked("acl_in_eth2", rules, ["counter drop"])
    b = chunked("acl_in_eth2", list(rules), ["counter drop"])
    assert a == b
    c = chunked("acl_in_eth3", rules, ["counter drop"])
    assert [x.rules for x in a[:-1]] == [x.rules for x in c[:-1]]
    assert all(x.name.replace("acl_in_eth2", "acl_in_eth3") == y.name
               for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize("index", [0, 1234, 5000, 9999])
def test_changing_one_rule_in_10000_touches_few_chains(index: int) -> None:
    rules = _rules(10_000)
    old = chunked("acl_in_eth2", rules, ["counter drop"])
    edited = list(rules)
    edited[index] = "ip saddr 198.18.2.0/24 tcp dport 1 drop"
    new = chunked("acl_in_eth2", edited, ["counter drop"])
    changed, gone = _changed(old, new)
    assert "acl_in_eth2" in changed
    assert 2 <= len(changed) <= 3
    assert 1 <= len(gone) <= 2
    assert len(new) > 100
    unchanged = set(_digests(old)) & set(_digests(new))
    assert len(unchanged) >= len(old) - 3


def test_changing_a_boundary_rule_merges_two_chunks_only() -> None:
    rules = _rules(10_000)
    old = chunked("acl_in_eth2", rules, ["counter drop"])
    # A rule that ends its chunk by content (not by the size cap).
    offset, boundary = 0, -1
    for c in old[:-1]:
        offset += len(c.rules)
        if (zlib.crc32(c.rules[-1].encode()) & CHUNK_MASK) == 0:
            boundary = offset - 1
            break
    assert 0 < boundary < 9000
    edited = list(rules)
    replacement = next(r for r in (f"ip saddr 198.18.2.{i} drop" for i in range(256))
                       if zlib.crc32(r.encode()) & CHUNK_MASK)
    edited[boundary] = replacement
    new = chunked("acl_in_eth2", edited, ["counter drop"])
    changed, gone = _changed(old, new)
    assert len(new) == len(old) - 1  # two chunks became one
    assert len(changed) == 2 and len(gone) == 2
    assert len(set(_digests(old)) & set(_digests(new))) == len(old) - 2


@pytest.mark.parametrize("index", [0, 2500, 7777, 10_000])
def test_inserting_a_rule_keeps_most_chunk_names(index: int) -> None:
    rules = _rules(10_000)
    old = chunked("acl_in_eth2", rules, ["counter drop"])
    for extra in ("ip saddr 198.18.2.0/24 tcp dport 1 drop",
                  next(r for r in (f"ip saddr 198.18.2.{i} drop" for i in range(256))
                       if not zlib.crc32(r.encode()) & CHUNK_MASK)):  # a new boundary too
        edited = list(rules)
        edited.insert(index, extra)
        new = chunked("acl_in_eth2", edited, ["counter drop"])
        old_names = {c.name for c in old[:-1]}
        new_names = {c.name for c in new[:-1]}
        assert len(old_names - new_names) <= 2
        assert len(new_names - old_names) <= 2
        changed, _ = _changed(old, new)
        assert len(changed) <= 3


def test_duplicate_chunks_share_one_chain() -> None:
    block = _rules(CHUNK_MIN)
    boundary = next(r for r in (f"ip saddr 198.18.2.{i} drop" for i in range(256))
                    if not zlib.crc32(r.encode()) & CHUNK_MASK)
    rules = [*block[:10], boundary] * 20
    chains = chunked("x", rules, [])
    assert len(chains) == 2  # one distinct chunk and the parent
    assert chains[-1].rules == (f"jump {chains[0].name}",) * 20


# -- _delta: replacing only the chains that changed ----------------------------------

TABLE = "vragent"
BASE = Chain("forward_ingress", ('oifname "eth2" jump acl_in_eth2',), HOOKS["forward_ingress"])


def _ruleset(rules: list[str]) -> Ruleset:
    return Ruleset(TABLE, (*chunked("acl_in_eth2", rules, ["counter drop"]), BASE))


def _script_parts(script: str) -> dict[str, list[str]]:
    parts: dict[str, list[str]] = {"flush": [], "add": [], "delete": [], "body": []}
    for line in script.splitlines():
        if line.startswith("flush chain "):
            parts["flush"].append(line.split()[-1])
        elif line.startswith("add chain "):
            parts["add"].append(line.split()[-1])
        elif line.startswith("delete chain "):
            parts["delete"].append(line.split()[-1])
        elif line.startswith("\tchain "):
            parts["body"].append(line.split()[1])
    # A chain about to be deleted is emptied first (see _delta): not a change.
    assert all(n in parts["flush"] for n in parts["delete"])
    parts["flush"] = [n for n in parts["flush"] if n not in parts["delete"]]
    return parts


def test_delta_replaces_only_changed_chains() -> None:
    rules = _rules(10_000)
    old = _ruleset(rules)
    edited = list(rules)
    edited[5000] = "ip saddr 198.18.2.0/24 tcp dport 1 drop"
    new = _ruleset(edited)
    script = _delta(_record(old), new, TABLE)
    assert script
    parts = _script_parts(script)
    changed, gone = _changed(list(old.chains), list(new.chains))
    assert parts["flush"] == ["acl_in_eth2"]
    assert set(parts["add"]) == changed - {"acl_in_eth2"}
    assert set(parts["body"]) == changed
    assert set(parts["delete"]) == gone
    assert "forward_ingress" not in script
    assert "delete table" not in script and "hook" not in script
    assert "ip saddr 198.18.2.0/24 tcp dport 1 drop" in script
    lines = script.splitlines()
    # Chains are created or emptied first, filled in one table block, old chunks deleted last.
    block = lines.index(f"table inet {TABLE} {{")
    assert all(ln.startswith(("flush chain", "add chain")) for ln in lines[:block])
    assert all(ln.startswith("delete chain") for ln in lines[lines.index("}") + 1:])
    assert len(lines) < 300  # a chunk or two, not 10,000 rules


def test_delta_empty_when_nothing_changed() -> None:
    rs = _ruleset(_rules(1000))
    assert _delta(_record(rs), _ruleset(_rules(1000)), TABLE) == ""


def test_delta_full_reload_when_a_base_chain_changes_hook() -> None:
    old = _ruleset(_rules(200))
    rehooked = Chain(BASE.name, BASE.rules, "type filter hook forward priority 15; policy accept;")
    new = Ruleset(TABLE, (*old.chains[:-1], rehooked))
    assert _delta(_record(old), new, TABLE) is None
    added = Ruleset(TABLE, (*old.chains, Chain("input", ("counter drop",), HOOKS["input"])))
    assert _delta(_record(old), added, TABLE) is None
    removed = Ruleset(TABLE, old.chains[:-1])
    assert _delta(_record(old), removed, TABLE) is None


def test_delta_base_chain_rules_flushed_in_place() -> None:
    old = _ruleset(_rules(50))
    base = Chain(BASE.name, (*BASE.rules, "counter drop"), BASE.hook)
    new = Ruleset(TABLE, (*old.chains[:-1], base))
    script = _delta(_record(old), new, TABLE)
    assert script == (f"flush chain inet {TABLE} forward_ingress\n"
                      f"table inet {TABLE} {{\n"
                      "\tchain forward_ingress {\n"
                      '\t\toifname "eth2" jump acl_in_eth2\n'
                      "\t\tcounter drop\n"
                      "\t}\n"
                      "}\n")


def test_delta_deletes_a_removed_regular_chain() -> None:
    old = Ruleset(TABLE, (Chain("acl_in_eth3", ("accept",)), BASE))
    new = Ruleset(TABLE, (BASE,))
    script = _delta(_record(old), new, TABLE)
    assert script == (f"flush chain inet {TABLE} acl_in_eth3\n"
                      f"table inet {TABLE} {{\n}}\ndelete chain inet {TABLE} acl_in_eth3\n")


def test_record() -> None:
    rs = _ruleset(_rules(10))
    rec = _record(rs)
    assert rec["chains"] == {c.name: c.digest() for c in rs.chains}
    assert rec["hooks"] == {"forward_ingress": HOOKS["forward_ingress"]}
    assert rec != _record(_ruleset(_rules(11)))


def test_digest_covers_hook_and_rules_not_name() -> None:
    a = Chain("a", ("accept",))
    assert a.digest() == Chain("b", ("accept",)).digest()
    assert a.digest() != Chain("a", ("drop",)).digest()
    assert a.digest() != Chain("a", ("accept",), "type filter hook input priority 0;").digest()
    assert a.digest() != Chain("a", ("accept", "")).digest()


def test_full_pipeline_large_acl_delta() -> None:
    """10,000 ACL rules through the real models: one edit replaces a chunk, not the table."""
    rules = [{"type": "tcp", "cidr": f"10.{i // 250}.{i % 250}.0/24", "first_port": 1 + i % 60000,
              "last_port": 1 + i % 60000, "allowed": True} for i in range(10_000)]
    acl = {"type": "networkacl", "device": "eth3", "ingress_rules": rules}
    docs = apply_bags([acl], sample_docs())
    cfg = RouterConfig.from_docs(docs)
    old = _render(cfg, resolve(cfg, sample_links()))
    edited = copy.deepcopy(acl)
    edited["ingress_rules"][4321]["allowed"] = False
    cfg2 = RouterConfig.from_docs(apply_bags([edited], docs))
    new = _render(cfg2, resolve(cfg2, sample_links()))
    assert new.rule_count == old.rule_count
    script = _delta(_record(old), new, "vragent")
    assert script
    parts = _script_parts(script)
    assert parts["flush"] == ["acl_in_eth3"]
    assert len(parts["add"]) in (1, 2) and len(parts["delete"]) in (1, 2)
    assert all(n.startswith("acl_in_eth3_") for n in parts["add"] + parts["delete"])
    assert "ip saddr 10.17.71.0/24 tcp dport 4322 drop" in script


def test_pair_traffic_admitted_only_on_a_redundant_router_and_only_on_the_sync_link() -> None:
    from tests.unit.builders import PAIR_BOOT, apply_bags, sample_bag, sample_docs, sample_links
    from tests.unit.builders import settings as unit_settings

    def input_chain(redundant: str) -> tuple[str, ...]:
        cmdline = sample_bag("cmd_line.json")
        if redundant == "1":
            cmdline["cmd_line"].update(PAIR_BOOT)
        cfg = RouterConfig.from_docs(apply_bags([cmdline], sample_docs()))
        rs = netfilter.render(
            desired_states(cfg, resolve(cfg, sample_links()), unit_settings())["netfilter"])
        return next(c for c in rs.chains if c.name == "input").rules

    single = input_chain("0")
    assert not any("112" in r or "3780" in r for r in single)
    pair = input_chain("1")
    assert 'iifname "eth5" meta l4proto 112 accept' in pair
    assert 'iifname "eth5" udp dport 3780 accept' in pair


# -- forwards, helpers, and the CloudStack-mode pair ------------------------------


def _with_forwards(*rules: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    docs = apply_bags([{"type": "forwardrules", "rules": list(rules)}], sample_docs())
    cfg = RouterConfig.from_docs(docs)
    return _chains(_render(cfg, resolve(cfg, sample_links())))


def _fwd(ports: str, dst: str, dports: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"source_ip_address": "100.64.10.11", "source_port_range": ports,
            "destination_ip_address": dst, "destination_port_range": dports or ports,
            "protocol": "tcp", "revoke": False, **extra}


def test_forwards_split_by_source_cidr_list() -> None:
    """configure.py forward_vpc: "-s <source_cidr_list>" on the DNAT."""
    chains = _with_forwards(
        _fwd("80:80", "10.10.1.10", source_cidr_list="100.64.10.0/24"),
        _fwd("80:80", "10.10.2.10", source_cidr_list="100.64.99.0/24,100.64.98.0/24"),
        _fwd("81:81", "10.10.2.10", source_cidr_list="0.0.0.0/0,::/0"),
        _fwd("82:82", "10.10.2.10", source_cidr_list=""))
    pf = chains["port_forward"]
    assert "ip saddr 100.64.10.0/24 ip daddr 100.64.10.11 tcp dport 80 dnat ip to 10.10.1.10" in pf
    assert ("ip saddr { 100.64.99.0/24, 100.64.98.0/24 } ip daddr 100.64.10.11 tcp dport 80 "
            "dnat ip to 10.10.2.10") in pf
    # "any" and no list at all: no source match.
    assert "ip daddr 100.64.10.11 tcp dport 81 dnat ip to 10.10.2.10" in pf
    assert "ip daddr 100.64.10.11 tcp dport 82 dnat ip to 10.10.2.10" in pf


def test_forward_to_port_21_gets_the_ftp_helper() -> None:
    """configure.py forward_ftp_helper: the public port that leads to 21."""
    rs = _render(*_cfg_topo_with(_fwd("2121:2121", "10.10.1.10", "21:21")))
    assert rs.helpers == ("ftp",)
    assert "\tct helper ftp {\n\t\ttype \"ftp\" protocol tcp\n\t}" in rs.text()
    assert ('ip daddr 100.64.10.11 tcp dport 2121 ct helper set "ftp"'
            in _chains(rs)["mangle_prerouting"])
    # A range that covers 21, shifted: the public port that maps to it.
    rs = _render(*_cfg_topo_with(_fwd("1020:1030", "10.10.1.10", "20:30")))
    assert ('ip daddr 100.64.10.11 tcp dport 1021 ct helper set "ftp"'
            in _chains(rs)["mangle_prerouting"])
    assert _render(*sample_topology()).helpers == ()


def _cfg_topo_with(*rules: dict[str, Any]) -> tuple[RouterConfig, Any]:
    docs = apply_bags([{"type": "forwardrules", "rules": list(rules)}], sample_docs())
    cfg = RouterConfig.from_docs(docs)
    return cfg, resolve(cfg, sample_links())


def test_a_new_helper_reloads_the_whole_table() -> None:
    old = _record(_render(*sample_topology()))
    new = _render(*_cfg_topo_with(_fwd("21:21", "10.10.1.10")))
    assert _delta(old, new, "vragent") is None


def test_cloudstack_pair_keeps_the_backup_silent_on_the_shared_public_nic() -> None:
    chains = _chains(_render(*cloudstack_pair_topology()))
    # After source NAT: only adverts and what leaves from a public IP held here.
    assert chains["public_guard"] == (
        'oifname "eth1" meta l4proto 112 accept',
        'oifname "eth1" ip saddr { 100.64.10.10, 100.64.10.11, 100.64.10.12 } '
        "fib saddr type local accept",
        'oifname "eth1" drop',
    )
    # Adverts keep their own source: never NATed to the shared address.
    assert chains["nat_postrouting"][0] == 'oifname "eth1" meta l4proto 112 accept'
    # VRRP on the public NIC, conntrackd on the first tier.
    assert 'iifname "eth1" meta l4proto 112 accept' in chains["input"]
    assert 'iifname "eth2" udp dport 3780 accept' in chains["input"]
    standalone = _chains(_render(*sample_topology()))
    assert "public_guard" not in standalone
