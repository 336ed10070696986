"""The bgppeers bag and FRR's configuration (features/bgp).

Upstream followed: systemvm/debian/opt/cloud/bin/cs_bgppeers.py (merge: the
bag replaces the list, items keyed "<peer_id>-<network_id>"),
cs/CsBgpPeers.py (frr.conf), the Java BgpPeers.java / BgpPeerTO (field
names, ``details`` keyed by BgpPeer.Detail, BgpPeerTOTest's EBGP_MultiHop).
The fixture tests/fixtures/cloudstack/bgppeers-1.json has the shape the
management server sends.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from vragent.bags import parse_bag
from vragent.errors import BagError
from vragent.features.bgp import daemon, feature, subsystem
from vragent.features.bgp.stats import peer_error
from vragent.reconcile import desired_states
from vragent.settings import Settings
from vragent.system import frr

from tests.conftest import REFERENCE
from tests.unit.builders import apply_bags, load, sample_bag, sample_docs, settings, with_bags

from .golden_files import check_golden

FIXTURE = load(REFERENCE / "bgppeers-1.json")
DUAL1 = {"router_guest_ip6": "fd00:10:10:1::1", "router_guest_ip6_gateway": "fd00:10:10:1::1",
         "router_guest_ip6_cidr": "fd00:10:10:1::/64"}
PASSWORD = "S3cr3t!pw"


def peer(peer_id: int, network_id: int, **kw: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "peer_id": peer_id, "peer_as_number": 64601, "ip4_address": "100.64.10.1",
        "network_id": network_id, "network_as_number": 64512,
        "guest_ip4_cidr": "10.10.1.0/24", "details": {}}
    item.update(kw)
    return {k: v for k, v in item.items() if v is not None}


def vpc_bag() -> dict[str, Any]:
    """The sample VPC's two tiers behind one dual-stack peer (with a password
    and multihop) and one IPv4-only peer."""
    return {"type": "bgppeers", "peers": [
        peer(1, 201, ip6_address="fd00:64:10::1", guest_ip6_cidr="fd00:10:10:1::/64",
             peer_password=PASSWORD, details={"EBGP_MultiHop": "2"}),
        peer(1, 202, guest_ip4_cidr="10.10.2.0/24", peer_password=PASSWORD,
             details={"EBGP_MultiHop": "2"}),
        peer(2, 201, peer_as_number=64602, ip4_address="100.64.10.2"),
    ]}


def dual_stack_router(*bags: dict[str, Any]) -> subsystem.Desired:
    tier1 = {**sample_bag("guest_network_tier1.json"), **DUAL1}
    cfg, topo = with_bags(sample_docs(), tier1, *bags)
    d = desired_states(cfg, topo, settings())[subsystem.NAME]
    assert isinstance(d, subsystem.Desired)
    return d


def test_the_management_servers_bag_is_accepted_and_filed_by_peer_and_network() -> None:
    bag = parse_bag(copy.deepcopy(FIXTURE))
    docs = feature.merge_bgppeers({}, bag)
    assert sorted(docs["bgppeers"]) == ["1-100", "1-101", "2-100"]
    assert docs["bgppeers"]["1-100"]["details"] == {"EBGP_MultiHop": "2"}
    # The next bag is the whole list again: peer 2 is gone.
    fewer = {**FIXTURE, "peers": [FIXTURE["peers"][0]]}
    docs = feature.merge_bgppeers(docs, parse_bag(fewer))
    assert sorted(docs["bgppeers"]) == ["1-100"]
    # BgpPeerTO(networkId): the network has no peer; nothing is filed for it.
    docs = feature.merge_bgppeers(docs, parse_bag({"type": "bgppeers",
                                                   "peers": [{"network_id": 100}]}))
    assert docs["bgppeers"] == {}


def test_frr_conf_golden() -> None:
    d = dual_stack_router(vpc_bag())
    assert subsystem.verify(d) == []
    files = subsystem.render(d)
    for name in ("frr.conf", "bgpd.conf", "zebra.conf"):
        check_golden(f"bgp/{name}", files[name])
    text = files["frr.conf"]
    # Both families announced, each by its own peers.
    assert "  network 10.10.1.0/24\n  network 10.10.2.0/24\n" in text
    assert "  network fd00:10:10:1::/64\n" in text
    assert " neighbor fd00:64:10::1 remote-as 64601\n" in text
    assert " neighbor 100.64.10.1 ebgp-multihop 2\n" in text
    assert f" neighbor 100.64.10.1 password {PASSWORD}\n" in text
    assert " neighbor 100.64.10.2 password" not in text
    assert " bgp router-id 100.64.10.10\n" in text


@pytest.mark.parametrize("name", ["frr.conf", "bgpd.conf"])
def test_every_route_map_is_defined_before_a_neighbour_names_it(name: str) -> None:
    """bgpd resolves a neighbour's route map when it reads the neighbour line;
    one it has not read yet denies everything until its route-map delay timer
    (5 s) runs: a pair's new master, whose bgpd starts on the takeover,
    announced nothing for 5 s (tests/integration/ha/test_pair_bgp.py).
    Upstream's CsBgpPeers.py writes the route maps after ``router bgp``."""
    lines = subsystem.render(dual_stack_router(vpc_bag()))[name].splitlines()
    defined = {line.split()[1]: n for n, line in enumerate(lines)
               if line.startswith("route-map ")}
    named = [(n, line.split()[3]) for n, line in enumerate(lines)
             if line.startswith("  neighbor ") and line.split()[2] == "route-map"]
    assert {m for _, m in named} == {"upstream-v4-in", "upstream-v4-out", "upstream-v6-in",
                                     "upstream-v6-out"}
    for n, route_map in named:
        assert defined[route_map] < n, (route_map, lines[n])


def test_the_fixture_announces_nothing_this_router_has_no_tier_for() -> None:
    cfg, topo = with_bags(sample_docs(), FIXTURE)
    d = desired_states(cfg, topo, settings())[subsystem.NAME]
    assert d.enabled and d.networks4 == () and d.networks6 == ()
    assert set(d.held) == {"10.1.1.0/24", "10.2.1.0/24", "2001:db8:100::/64"}
    assert "  network" not in subsystem.render(d)["frr.conf"]


def test_a_removed_tier_is_no_longer_announced() -> None:
    d = dual_stack_router(vpc_bag(), sample_bag("guest_network_tier2.json") | {"add": False})
    assert d.networks4 == ("10.10.1.0/24",)
    assert "10.10.2.0/24" in d.held
    assert "10.10.2.0/24" not in subsystem.render(d)["frr.conf"]


def test_no_peer_renders_no_file() -> None:
    d = dual_stack_router()
    assert not d.enabled
    assert subsystem.render(d).text() == ""


def test_two_local_as_numbers_are_refused() -> None:
    bag = vpc_bag()
    bag["peers"][2]["network_as_number"] = 64513
    d = dual_stack_router(bag)
    assert any("network_as_number" in p for p in subsystem.verify(d))


def test_one_peer_with_two_passwords_is_refused() -> None:
    bag = vpc_bag()
    bag["peers"][1]["peer_password"] = "other"
    problems = subsystem.verify(dual_stack_router(bag))
    assert problems and "100.64.10.1" in problems[0] and "other" not in problems[0]


# -- injection corpus: every string field -------------------------------------------

CORPUS = [
    "x\nrouter bgp 1", "x\rneighbor 1.1.1.1 remote-as 1", "x\x00", "{", "}", "a}b", "!",
    "x !", "\"quoted\"", "'q'", "neighbor", "router bgp 65000", "exit", "x\nexit", " ", "",
    "10.0.0.1 remote-as 1", "10.10.1.0/24\n!", "\\", "x\ty",
]
FIELDS = ["ip4_address", "ip6_address", "guest_ip4_cidr", "guest_ip6_cidr", "peer_password"]
# Refused in a password: what could end its word or its line, or quote it.
PASSWORD_OK = {"!", "neighbor", "exit"}


def _refused(item_field: str, value: Any, where: str = "") -> str:
    bag = vpc_bag()
    if where:
        bag["peers"][0]["details"] = {where: value} if item_field == "details-key" else \
            {"EBGP_MultiHop": value}
    else:
        bag["peers"][0][item_field] = value
    with pytest.raises(BagError) as info:
        parse_bag(bag)
    return "\n".join(info.value.problems)


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("value", CORPUS)
def test_injection_is_refused_naming_the_field(field: str, value: str) -> None:
    if field == "peer_password" and value in PASSWORD_OK:
        bag = vpc_bag()
        bag["peers"][0]["peer_password"] = value
        parse_bag(bag)  # one word FRR stores as it is (the real-FRR test proves it)
        return
    if value == "":
        return  # "" is CloudStack's "none" for an optional field (test below)
    message = _refused(field, value)
    assert f"peers.0.{field}" in message
    if field == "peer_password" and value.strip():
        assert value not in message.replace("peers.0.peer_password", "")


@pytest.mark.parametrize("value", [*CORPUS, "0", "256", "-1", "2 ", 2])
def test_details_values_are_refused_naming_the_detail(value: Any) -> None:
    message = _refused("details", value, where="EBGP_MultiHop")
    assert "peers.0.details" in message and "EBGP_MultiHop" in message


@pytest.mark.parametrize("key", ["EBGP_Multihop", "BFD", "x\nneighbor", "!", "{"])
def test_unknown_details_are_refused_naming_the_key(key: str) -> None:
    message = _refused("details-key", "2", where=key)
    assert "peers.0.details" in message and repr(key) in message


@pytest.mark.parametrize("field,value", [
    ("peer_as_number", 0), ("peer_as_number", 4294967296), ("peer_as_number", "64601"),
    ("network_as_number", -1), ("ip4_address", "fd00::1"), ("ip6_address", "10.0.0.1"),
    ("guest_ip6_cidr", "10.10.1.0/24"), ("peer_password", "x" * 81),
    ("peer_password", "pässword"),
])
def test_bad_values_are_refused_naming_the_field(field: str, value: Any) -> None:
    assert f"peers.0.{field}" in _refused(field, value)


def test_empty_optional_fields_mean_none() -> None:
    bag = vpc_bag()
    bag["peers"][0].update(ip6_address="", guest_ip6_cidr="", peer_password="")
    item = parse_bag(bag).peers[0]  # type: ignore[attr-defined]
    assert (item.ip6_address, item.guest_ip6_cidr, item.peer_password) == (None, None, None)


def test_a_refused_bag_changes_nothing() -> None:
    docs = apply_bags([vpc_bag()])
    bad = vpc_bag()
    bad["peers"][1]["ip4_address"] = "1.1.1.1\nrouter bgp 1"
    with pytest.raises(BagError):
        apply_bags([bad], copy.deepcopy(docs))
    assert docs == apply_bags([vpc_bag()])


# -- secrets ------------------------------------------------------------------------


def test_passwords_are_redacted_and_the_files_root_only() -> None:
    docs = apply_bags([vpc_bag()])
    shown = json.dumps(feature._redact(docs["bgppeers"]))
    assert PASSWORD not in shown and shown.count("(secret, not shown)") == 2
    text = subsystem.render(dual_stack_router(vpc_bag()))["frr.conf"]
    redacted = daemon.shown(text)
    assert PASSWORD not in redacted and "password (secret, not shown)" in redacted
    s = Settings(root=settings().root)
    for d in daemon.daemons(s):
        for f in d.files:
            assert f.mode == 0o600, f.path
    bad = vpc_bag()
    bad["peers"][0]["peer_password"] = PASSWORD + "\n"
    with pytest.raises(BagError) as info:
        parse_bag(bad)
    assert PASSWORD not in "\n".join(info.value.problems)


def test_frr_runs_on_the_routers_own_paths() -> None:
    s = Settings(root=settings().root)
    for d in daemon.daemons(s):
        assert not any(a.startswith(("/etc/frr", "/var/run/frr", "/run/frr")) for a in d.argv)
        assert "--vty_socket" in d.argv and "-P" in d.argv
    argv = daemon.reload_argv(s)
    # Its messages would quote the password lines: only critical ones, never shown.
    assert "--stdout" in argv and argv[argv.index("--log-level") + 1] == "critical"
    bgpd = next(d for d in daemon.daemons(s) if d.name == "bgpd")
    assert bgpd.master_only and bgpd.needs == ("zebra",)
    assert bgpd.reload_command and bgpd.check[:1] == ("vtysh",)


# -- the session's error -------------------------------------------------------------


def test_a_session_that_never_came_up_with_a_password_says_so() -> None:
    never = {"bgpState": "Active", "connectionsEstablished": 0}
    assert peer_error(never, True, {"TCPMD5Failure": 0}) == \
        "never established: password mismatch or peer unreachable"
    assert peer_error(never, True, {"TCPMD5Failure": 3}).endswith(
        "(the kernel drops TCP-MD5 segments)")
    assert peer_error(never, False, {}) == "never established: peer unreachable or refusing"
    assert peer_error({"bgpState": "Established"}, True, {}) == ""
    assert peer_error({"bgpState": "Active", "connectionsEstablished": 2,
                       "lastResetDueTo": "BGP Notification send"}, True, {}) == \
        "down: BGP Notification send"


def test_md5_counters_read_from_netstat(tmp_path: Any) -> None:
    path = tmp_path / "netstat"
    path.write_text("TcpExt: SyncookiesSent TCPMD5NotFound TCPMD5Unexpected TCPMD5Failure\n"
                    "TcpExt: 1 2 3 4\nIpExt: InNoRoutes\nIpExt: 0\n")
    assert frr.md5_counters(path) == {"TCPMD5NotFound": 2, "TCPMD5Unexpected": 3,
                                      "TCPMD5Failure": 4}


class _Ctx:
    def __init__(self, s: Settings, running: bool) -> None:
        self.settings, self._running = s, running

    def running(self, name: str) -> bool:
        return self._running


def test_the_health_check_names_each_peer_down_and_why(tmp_path: Any,
                                                        monkeypatch: Any) -> None:
    from vragent.features.bgp import checks

    s = Settings(root=tmp_path)
    assert checks.bgp(_Ctx(s, True)).message == "No BGP peer configured, skipping"
    conf = daemon.FRR_CONF.of(s)
    conf.parent.mkdir(parents=True)
    conf.write_text(subsystem.render(dual_stack_router(vpc_bag()))["frr.conf"])
    assert not checks.bgp(_Ctx(s, False)).success
    live = {"100.64.10.1": {"bgpState": "Active", "connectionsEstablished": 0},
            "fd00:64:10::1": {"bgpState": "Established"},
            "100.64.10.2": {"bgpState": "Established"}}
    monkeypatch.setattr(frr, "neighbors", lambda *a: live)
    monkeypatch.setattr(frr, "md5_counters", lambda *a: {"TCPMD5Failure": 0})
    out = checks.bgp(_Ctx(s, True))
    assert not out.success
    assert out.message == ("BGP session(s) down: 100.64.10.1: never established: password "
                           "mismatch or peer unreachable")
    live["100.64.10.1"] = {"bgpState": "Established"}
    assert checks.bgp(_Ctx(s, True)).success
