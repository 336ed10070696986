"""The netfilter traffic the VPN declares, and how nftables renders it.

Upstream: systemvm/debian/opt/cloud/bin/configure.py
CsSite2SiteVpn.configure_iptables and CsRemoteAccessVpn.remoteaccessvpn_iptables.
"""

from __future__ import annotations

from typing import Any

from vragent.feature import Between, Opening
from vragent.features.vpn import feature

from tests.unit.builders import settings

from .helpers import PUBLIC, VPC, desired, netfilter, ra, s2s

POOL = ("10.1.2.2/31", "10.1.2.4/30", "10.1.2.8/32")


def _traffic(*bags: dict[str, Any]) -> Any:
    return feature.traffic(None, settings(), desired(*bags))


def test_peers_only_from_their_address() -> None:
    t = _traffic(s2s(), s2s(peer_gateway_ip="100.64.40.1", peer_guest_cidr_list="10.40.0.0/24"))
    assert t.accept == (
        Opening("public", "udp", (500, 4500), saddr="100.64.30.1", daddr=PUBLIC),
        Opening("public", 50, saddr="100.64.30.1", daddr=PUBLIC),
        Opening("public", "udp", (500, 4500), saddr="100.64.40.1", daddr=PUBLIC),
        Opening("public", 50, saddr="100.64.40.1", daddr=PUBLIC))
    cidrs = ("10.30.0.0/24", "10.31.0.0/24")
    assert t.forward == (Between((VPC,), cidrs), Between(cidrs, (VPC,)),
                         Between((VPC,), ("10.40.0.0/24",)), Between(("10.40.0.0/24",), (VPC,)))
    assert t.nat_exempt == (Between((VPC,), cidrs), Between((VPC,), ("10.40.0.0/24",)))
    assert t.own_source == ()


def test_identity_peer_and_remote_access_from_any() -> None:
    t = _traffic(s2s(peer_gateway_ip="0.0.0.0", peer_id="@b.example.org"), ra())
    assert t.accept == (Opening("public", "udp", (500, 4500), daddr=PUBLIC),
                        Opening("public", 50, daddr=PUBLIC),
                        Opening("public", "udp", (500, 4500), daddr=PUBLIC),
                        Opening("public", 50, daddr=PUBLIC),
                        Opening("public", "udp", (1701,), daddr=PUBLIC, ipsec=True))
    cidrs = ("10.30.0.0/24", "10.31.0.0/24")
    assert t.forward == (Between((VPC,), cidrs), Between(cidrs, (VPC,)),
                         Between(POOL, (VPC,)), Between((VPC,), POOL))
    assert t.nat_exempt == (Between((VPC,), cidrs), Between((VPC,), POOL))


def test_nothing_without_vpn() -> None:
    assert _traffic() == feature.Traffic()
    assert feature.traffic(None, settings(), None) == feature.Traffic()
    # A peer whose local address is not here opens nothing.
    assert _traffic(s2s(local_public_ip="100.64.99.9")) == feature.Traffic()


def test_nftables() -> None:
    text = netfilter(s2s(), s2s(peer_gateway_ip="0.0.0.0", peer_id="@b.example.org",
                                peer_guest_cidr_list="10.50.0.0/24"), ra())
    lines = [line.strip() for line in text.splitlines()]
    assert ('iifname "eth1" ip saddr 100.64.30.1 ip daddr 100.64.10.10 udp dport { 500, 4500 } '
            'accept') in lines
    assert 'iifname "eth1" ip saddr 100.64.30.1 ip daddr 100.64.10.10 meta l4proto 50 accept' \
        in lines
    assert 'iifname "eth1" ip daddr 100.64.10.10 udp dport { 500, 4500 } accept' in lines
    assert 'iifname "eth1" ip daddr 100.64.10.10 meta l4proto 50 accept' in lines
    # Never from any address to any of the router's: always to the VPN's address.
    assert not any("dport { 500, 4500 }" in line and "daddr" not in line for line in lines)
    assert "ip saddr 10.10.0.0/16 ip daddr { 10.30.0.0/24, 10.31.0.0/24 } accept" in lines
    assert "ip saddr { 10.30.0.0/24, 10.31.0.0/24 } ip daddr 10.10.0.0/16 accept" in lines
    assert "ip saddr 10.50.0.0/24 ip daddr 10.10.0.0/16 accept" in lines
    # L2TP only out of its IPsec SA (upstream opens udp/1701 to anyone).
    assert 'iifname "eth1" ip daddr 100.64.10.10 meta ipsec exists udp dport 1701 accept' \
        in lines
    assert not any("1701" in line and "ipsec" not in line for line in lines)
    pool = "{ 10.1.2.2/31, 10.1.2.4/30, 10.1.2.8/32 }"
    assert f"ip saddr {pool} ip daddr 10.10.0.0/16 accept" in lines
    # Kept out of source NAT: before the SNAT rules.
    nat = text[text.index("chain nat_postrouting"):]
    nat = nat[:nat.index("}\n")]
    assert nat.index("ip saddr 10.10.0.0/16 ip daddr 10.50.0.0/24 accept") < nat.index("snat")
    assert nat.index(f"ip saddr 10.10.0.0/16 ip daddr {pool} accept") < nat.index("snat")


def test_nftables_without_vpn_has_no_ike() -> None:
    text = netfilter()
    assert "4500" not in text and "l4proto 50" not in text


def test_without_l2tp_nothing_for_1701() -> None:
    raw = ra()
    del raw["preshared_key"]
    t = _traffic(raw)
    assert all(1701 not in o.ports for o in t.accept)
    # Both kinds of client share the pool: forwarded whole either way.
    assert t.forward == _traffic(ra()).forward == (Between(POOL, (VPC,)), Between((VPC,), POOL))
