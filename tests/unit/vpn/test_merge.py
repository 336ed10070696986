"""The three bags' merge rules (cs_site2sitevpn.py, cs_remoteaccessvpn.py,
cs_vpnusers.py), without upstream's two faults.

Upstream: systemvm/debian/opt/cloud/bin/cs_site2sitevpn.py,
cs_remoteaccessvpn.py and cs_vpnusers.py.
"""

from __future__ import annotations

import copy
from typing import Any

from vragent.bags import merge, parse_bag

from .helpers import PSK, ra, s2s, users

Docs = dict[str, dict[str, Any]]
OTHER = {"ips": {"x": {"public_ip": "100.64.10.10"}}}


def _apply(docs: Docs, *bags: dict[str, Any]) -> Docs:
    for raw in bags:
        bag = parse_bag(copy.deepcopy(raw))
        docs = merge(docs, raw["type"], bag)
    return docs


def test_peers_are_keyed_by_their_gateway_ip() -> None:
    docs = _apply(copy.deepcopy(OTHER), s2s(), s2s(peer_gateway_ip="100.64.40.1"))
    assert sorted(docs["site2sitevpn"]) == ["100.64.30.1", "100.64.40.1"]
    assert docs["site2sitevpn"]["100.64.30.1"]["ipsec_psk"] == PSK
    docs = _apply(docs, s2s(ipsec_psk="new-psk"))
    assert docs["site2sitevpn"]["100.64.30.1"]["ipsec_psk"] == "new-psk"
    assert docs["ips"] == OTHER["ips"]


def test_a_peer_known_by_identity_is_keyed_by_it() -> None:
    docs = _apply({}, s2s(peer_gateway_ip="0.0.0.0", peer_id="@a.example.org"),
                  s2s(peer_gateway_ip="0.0.0.0", peer_id="@b.example.org"))
    assert sorted(docs["site2sitevpn"]) == ["id-@a.example.org", "id-@b.example.org"]
    docs = _apply(docs, s2s(peer_gateway_ip="0.0.0.0", peer_id="@a.example.org", create=False))
    assert sorted(docs["site2sitevpn"]) == ["id-@b.example.org"]


def test_create_false_removes_a_stored_peer() -> None:
    docs = _apply(copy.deepcopy(OTHER), s2s(), s2s(peer_gateway_ip="100.64.40.1"),
                  s2s(create=False))
    assert sorted(docs["site2sitevpn"]) == ["100.64.40.1"]
    assert docs["ips"] == OTHER["ips"]


def test_create_false_for_an_unknown_peer_is_not_stored() -> None:
    # Upstream stores it, then configures it.
    docs = _apply({}, s2s(create=False))
    assert docs["site2sitevpn"] == {}
    docs = _apply(_apply({}, s2s()), s2s(peer_gateway_ip="100.64.40.1", create=False))
    assert sorted(docs["site2sitevpn"]) == ["100.64.30.1"]


def test_remote_access_is_keyed_by_the_server_ip() -> None:
    docs = _apply(copy.deepcopy(OTHER), ra(), ra(vpn_server_ip="100.64.10.11"))
    assert sorted(docs["remoteaccessvpn"]) == ["100.64.10.10", "100.64.10.11"]
    docs = _apply(docs, ra(ip_range="10.1.3.2-10.1.3.9"))
    assert docs["remoteaccessvpn"]["100.64.10.10"]["ip_range"] == "10.1.3.2-10.1.3.9"
    docs = _apply(docs, ra(create=False), ra(vpn_server_ip="100.64.10.99", create=False))
    assert sorted(docs["remoteaccessvpn"]) == ["100.64.10.11"]
    assert docs["ips"] == OTHER["ips"]


def test_users_are_added_updated_and_removed() -> None:
    docs = _apply(copy.deepcopy(OTHER), users(("alice", "a1", True), ("bob", "b1", True)))
    assert docs["vpnuserlist"] == {"alice": {"user": "alice", "password": "a1", "add": True},
                                   "bob": {"user": "bob", "password": "b1", "add": True}}
    # Re-sent with a new password: it is taken (upstream kept the old one).
    docs = _apply(docs, users(("alice", "a2", True)))
    assert docs["vpnuserlist"]["alice"]["password"] == "a2"
    assert docs["vpnuserlist"]["bob"]["password"] == "b1"  # not in the list: untouched
    # add:false removes (not kept for a round as upstream does), unknown or not.
    docs = _apply(docs, users(("bob", "b1", False), ("carol", "c1", False)))
    assert sorted(docs["vpnuserlist"]) == ["alice"]
    assert docs["ips"] == OTHER["ips"]


def test_a_user_list_changes_only_its_users() -> None:
    docs = _apply({}, s2s(), ra(), users(("alice", "a1", True)))
    before = copy.deepcopy(docs)
    docs = _apply(docs, users(("bob", "b1", True)))
    assert {k: v for k, v in docs.items() if k != "vpnuserlist"} == {
        k: v for k, v in before.items() if k != "vpnuserlist"}
    assert sorted(docs["vpnuserlist"]) == ["alice", "bob"]


def test_merging_leaves_the_stored_docs_untouched() -> None:
    docs = _apply({}, s2s(), users(("alice", "a1", True)))
    before = copy.deepcopy(docs)
    _apply(docs, s2s(create=False), users(("alice", "a1", False)), ra())
    assert docs == before
