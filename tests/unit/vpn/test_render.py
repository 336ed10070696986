"""What the VPN renders: proposals, versions, children, lifetimes, DPD, encap,
passive and identity peers, the index, the two strongswan.conf variants, and
what verify refuses.

Upstream: systemvm/debian/opt/cloud/bin/configure.py (CsSite2SiteVpn,
CsRemoteAccessVpn, CsVpnUser).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from vragent.features.vpn import subsystem

from .helpers import PUBLIC, VPC, desired, ra, s2s, sections, structure, swanctl, users


def _conn(text: str, name: str) -> list[str]:
    """The stripped lines of connection ``name`` (its sub-sections included)."""
    lines = text.splitlines()
    start = lines.index(f"\t{name} {{")
    out = []
    for line in lines[start + 1:]:
        if line == "\t}":
            break
        out.append(line.strip())
    return out


@pytest.mark.parametrize(("value", "ike", "want"), [
    ("aes128-sha1;modp1536", True, "aes128-sha1-modp1536"),
    ("3des-md5", False, "3des-md5"),
    ("3des-sha1,aes128-sha1;modp1536", False, "3des-sha1,aes128-sha1-modp1536"),
    ("3des-sha1;modp3072,aes128-sha1;modp1536", True, "3des-sha1-modp3072,aes128-sha1-modp1536"),
    (" aes256-sha512;modp8192 , aes192-sha384;modp4096", True,
     "aes256-sha512-modp8192,aes192-sha384-modp4096"),
])
def test_proposals(value: str, ike: bool, want: str) -> None:
    assert subsystem.proposals(value, ike) == want


@pytest.mark.parametrize(("value", "ike"), [
    ("aes128-sha1", True),  # IKE needs a DH group
    ("aes128-sha1;", False), ("aes128-sha1;modp768", False), ("blowfish-sha1", False),
    ("aes128-sha224", False), ("aes128", False), ("", False), ("aes128-sha1,", False),
])
def test_invalid_policies(value: str, ike: bool) -> None:
    with pytest.raises(ValueError):
        subsystem.proposals(value, ike)


def test_policies_render_as_proposals() -> None:
    text = swanctl(s2s(ike_policy="3des-sha1;modp3072,aes128-sha1;modp1536",
                       esp_policy="aes256-sha256"))
    conn = _conn(text, "vpn-100-64-30-1")
    assert "proposals = 3des-sha1-modp3072,aes128-sha1-modp1536" in conn
    assert "esp_proposals = aes256-sha256" in conn


@pytest.mark.parametrize(("version", "n"), [("ike", 0), ("ikev1", 1), ("ikev2", 2)])
def test_ike_versions(version: str, n: int) -> None:
    d = desired(s2s(ike_version=version, peer_guest_cidr_list="10.30.0.0/24"))
    assert (d.peers[0].version, d.peers[0].ike_version) == (n, version)
    assert f"version = {n}" in _conn(subsystem.render(d)["swanctl.conf"], "vpn-100-64-30-1")


def test_ike_version_defaults_to_ike() -> None:
    raw = s2s()
    del raw["ike_version"]
    assert desired(raw).peers[0].version == 0


def _children(d: subsystem.Desired) -> list[tuple[str, str, str]]:
    return [(c.name, c.local_ts, c.remote_ts) for c in d.peers[0].children]


CIDRS = "10.30.0.0/24, 10.31.0.0/24,10.32.0.0/24"
SPLIT = [("vpn-100-64-30-1", VPC, "10.30.0.0/24"), ("vpn-100-64-30-1-2", VPC, "10.31.0.0/24"),
         ("vpn-100-64-30-1-3", VPC, "10.32.0.0/24")]


def test_ikev1_takes_a_child_per_cidr() -> None:
    d = desired(s2s(ike_version="ikev1", peer_guest_cidr_list=CIDRS))
    assert _children(d) == SPLIT
    got = sections(subsystem.render(d)["swanctl.conf"])
    assert {p[3] for p in got if p[:3] == ("connections", "vpn-100-64-30-1", "children")
            and len(p) == 4} == {n for n, _, _ in SPLIT}


def test_ikev1_with_one_cidr_has_one_child() -> None:
    d = desired(s2s(ike_version="ikev1", peer_guest_cidr_list="10.30.0.0/24"))
    assert _children(d) == [("vpn-100-64-30-1", VPC, "10.30.0.0/24")]


@pytest.mark.parametrize("version", ["ike", "ikev2"])
def test_ikev2_takes_every_cidr_in_one_child(version: str) -> None:
    d = desired(s2s(ike_version=version, peer_guest_cidr_list=CIDRS))
    assert _children(d) == [("vpn-100-64-30-1", VPC, "10.30.0.0/24,10.31.0.0/24,10.32.0.0/24")]


@pytest.mark.parametrize("version", ["ike", "ikev2"])
def test_split_connections_with_ikev2(version: str) -> None:
    d = desired(s2s(ike_version=version, split_connections=True, peer_guest_cidr_list=CIDRS))
    assert _children(d) == SPLIT
    assert json.loads(subsystem.index(d))["conns"]["vpn-100-64-30-1"]["children"] == [
        n for n, _, _ in SPLIT]


def test_lifetimes_in_seconds() -> None:
    text = swanctl(s2s(ike_lifetime=1800, esp_lifetime=900))
    conn = _conn(text, "vpn-100-64-30-1")
    assert "rekey_time = 1800s" in conn and "rekey_time = 900s" in conn
    assert not any(line.endswith("h") for line in conn)


@pytest.mark.parametrize("lifetime", [0, 59, 86401, "3600", 3600.5, True])
def test_lifetimes_out_of_range_are_refused(lifetime: Any) -> None:
    from .helpers import refused

    assert any(p.startswith("ike_lifetime:") for p in refused(s2s(ike_lifetime=lifetime)).problems)


def test_dpd_encap_passive() -> None:
    plain = _conn(swanctl(s2s()), "vpn-100-64-30-1")
    assert not any(line.startswith("dpd_") and "action" not in line for line in plain)
    assert "dpd_action = clear" in plain and "encap = no" in plain
    assert "close_action = start" in plain
    tuned = _conn(swanctl(s2s(dpd=True, encap=True, passive=True)), "vpn-100-64-30-1")
    assert {"dpd_delay = 30s", "dpd_timeout = 120s", "dpd_action = restart", "encap = yes",
            "close_action = none"} <= set(tuned)


def test_passive_peers_are_not_initiated() -> None:
    d = desired(s2s(), s2s(peer_gateway_ip="100.64.40.1", passive=True,
                           peer_guest_cidr_list="10.40.0.0/24"))
    conns = json.loads(subsystem.index(d))["conns"]
    assert conns["vpn-100-64-30-1"]["initiate"] is True
    assert conns["vpn-100-64-40-1"]["initiate"] is False
    assert conns["vpn-100-64-40-1"]["peer"] == "100.64.40.1"


def test_a_peer_known_by_identity_is_passive_from_any_address() -> None:
    d = desired(s2s(peer_gateway_ip="0.0.0.0", peer_id="@branch.example.org"))
    p = d.peers[0]
    assert (p.name, p.peer, p.remote, p.remote_id, p.passive) == (
        "vpn-id--branch-example-org", "id-@branch.example.org", "%any", "@branch.example.org",
        True)
    text = subsystem.render(d)["swanctl.conf"]
    conn = _conn(text, p.name)
    assert "remote_addrs = %any" in conn and "id = @branch.example.org" in conn
    assert "close_action = none" in conn
    assert json.loads(subsystem.index(d))["conns"][p.name]["initiate"] is False
    assert "\t\tid-remote = @branch.example.org\n" in text


def test_peer_id_names_the_remote_identity_of_an_addressed_peer() -> None:
    d = desired(s2s(peer_id="gw.example.org"))
    p = d.peers[0]
    assert (p.remote, p.remote_id, p.passive) == ("100.64.30.1", "gw.example.org", False)


def test_the_index_holds_no_secret() -> None:
    d = desired(s2s(), ra(), users(("alice", "Alice-Pw-1", True)))
    text = subsystem.index(d)
    assert "psk-one" not in text and "Alice-Pw-1" not in text
    assert "70736b2d6f6e65" not in text  # nor the hex
    data = json.loads(text)
    assert sorted(data["conns"]) == ["L2TP-PSK", "remote-access", "vpn-100-64-30-1"]
    assert "6c3274702d70736b" not in text  # nor L2TP's PSK in hex
    assert sorted(data["users"]) == ["alice"]
    # A changed PSK changes the digest (sync reloads the connection).
    other = json.loads(subsystem.index(desired(s2s(ipsec_psk="psk-two"))))
    assert other["conns"]["vpn-100-64-30-1"]["digest"] != data["conns"]["vpn-100-64-30-1"][
        "digest"]


def test_remote_access() -> None:
    d = desired(ra(), users(("bob", "b", True), ("alice", "a", True)))
    assert d.remote is not None and d.peers == ()
    # L2TP takes the first half of ip_range, IKEv2 the rest.
    assert (d.remote.server, d.remote.pool, d.remote.range, d.remote.local_ts) == (
        PUBLIC, "10.1.2.5-10.1.2.8", "10.1.2.2-10.1.2.8", VPC)
    assert d.remote.l2tp is not None and d.remote.l2tp.pool == "10.1.2.2-10.1.2.4"
    text = subsystem.render(d)["swanctl.conf"]
    assert "\t\taddrs = 10.1.2.5-10.1.2.8\n" in text
    # Without L2TP (no PSK, or a kernel without ESP or PPP), IKEv2 takes it all.
    alone = subsystem.without_l2tp(d)
    assert alone.remote is not None and alone.remote.l2tp is None
    assert alone.remote.pool == "10.1.2.2-10.1.2.8"
    assert "\t\taddrs = 10.1.2.2-10.1.2.8\n" in subsystem.render(alone)["swanctl.conf"]
    assert [u.name for u in d.remote.users] == ["0-alice", "1-bob"]
    assert structure(text)


def test_nothing_configured_renders_nothing() -> None:
    d = desired()
    assert not d.enabled
    assert subsystem.render(d).text() == ""


def test_strongswan_conf_variants() -> None:
    files = subsystem.render(desired(s2s()))
    kernel, libipsec = files["strongswan.conf"], files["strongswan-libipsec.conf"]
    load = [line for line in kernel.splitlines() if line.strip().startswith("load =")]
    load_lib = [line for line in libipsec.splitlines() if line.strip().startswith("load =")]
    assert len(load) == len(load_lib) == 1
    assert "kernel-libipsec" not in kernel
    assert " kernel-libipsec " in load_lib[0] and "kernel-netlink" in load_lib[0]
    assert "kernel-netlink" in load[0]
    assert load_lib[0].split() == [w for w in load_lib[0].split()]
    assert sorted(load_lib[0].split()) == sorted([*load[0].split(), "kernel-libipsec"])
    # Otherwise the same file.
    assert [x for x in kernel.splitlines() if "load =" not in x and "Data path" not in x] == [
        x for x in libipsec.splitlines() if "load =" not in x and "Data path" not in x]


def test_verify_refuses_a_pool_overlapping_a_peer() -> None:
    d = desired(s2s(peer_guest_cidr_list="10.30.0.0/24,10.1.2.0/28"), ra(), check=False)
    problems = subsystem.verify(d)
    assert len(problems) == 1
    assert "ip_range 10.1.2.2-10.1.2.8" in problems[0] and "10.1.2.0/28" in problems[0]
    assert "100.64.30.1" in problems[0]


def test_verify_refuses_a_pool_overlapping_a_tier() -> None:
    d = desired(ra(ip_range="10.10.1.200-10.10.1.210"), check=False)
    problems = subsystem.verify(d)
    assert len(problems) == 1
    assert "ip_range 10.10.1.200-10.10.1.210" in problems[0] and "10.10.1.0/24" in problems[0]


def test_verify_refuses_a_server_ip_not_on_the_router() -> None:
    problems = subsystem.verify(desired(ra(vpn_server_ip="100.64.99.9"), check=False))
    assert len(problems) == 1 and "vpn_server_ip 100.64.99.9" in problems[0]


def test_verify_refuses_remote_access_without_range() -> None:
    raw = ra()
    del raw["ip_range"]
    problems = subsystem.verify(desired(raw, check=False))
    assert len(problems) == 1 and "ip_range" in problems[0]


def test_a_local_public_ip_not_on_the_router_skips_the_peer() -> None:
    d = desired(s2s(local_public_ip="100.64.99.9"),
                s2s(peer_gateway_ip="100.64.40.1", peer_guest_cidr_list="10.40.0.0/24"))
    assert [p.peer for p in d.peers] == ["100.64.40.1"]
    assert len(d.warnings) == 1
    assert "100.64.30.1" in d.warnings[0] and "100.64.99.9" in d.warnings[0]
    assert "vpn-100-64-30-1" not in subsystem.render(d)["swanctl.conf"]
    alone = desired(s2s(local_public_ip="100.64.99.9"))
    assert not alone.enabled and alone.warnings


def test_peers_whose_names_clash_are_refused() -> None:
    # "100-64-30-1" is a host name; swanctl would merge both into one section.
    d = desired(s2s(), s2s(peer_gateway_ip="100-64-30-1", peer_guest_cidr_list="10.40.0.0/24"),
                check=False)
    problems = subsystem.verify(d)
    assert len(problems) == 1 and "vpn-100-64-30-1" in problems[0]
    assert [p.peer for p in d.peers] == ["100-64-30-1"]


def test_several_peers_render_sorted_and_whole() -> None:
    text = swanctl(s2s(peer_gateway_ip="100.64.40.1", peer_guest_cidr_list="10.40.0.0/24"),
                   s2s())
    names = [p[1] for p in sections(text) if p[0] == "connections" and len(p) == 2]
    assert sorted(names) == ["vpn-100-64-30-1", "vpn-100-64-40-1"]
    assert text.index("vpn-100-64-30-1 {") < text.index("vpn-100-64-40-1 {")
    assert "\tike-vpn-100-64-40-1 {\n\t\tid-local = 100.64.10.10\n\t\tid-remote = 100.64.40.1\n" \
        in text
