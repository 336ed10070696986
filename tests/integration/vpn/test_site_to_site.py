"""Site-to-site tunnels between the router and a real strongSwan peer site.

The bags are as Site2SiteVpnConfigItem sends them; upstream's router is
systemvm/debian/opt/cloud/bin/configure.py CsSite2SiteVpn (stroke ipsec.conf,
``ipsec reload`` on every apply). Here swanctl and vici: see
vragent/features/vpn/subsystem.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from vragent.features.vpn import stats
from vragent.features.vpn.daemon import INDEX, SOCKET
from vragent.system import charon
from vragent_lab.ipsec import Peer, site_conf
from vragent_lab.netns import VM1, in_ns, wait_for

from ..harness import connect, ns_of, server
from ..services.conftest import Appliance
from .conftest import (
    PEER_IP,
    PEER_NETS,
    PSK,
    PSK2,
    PUBLIC,
    SITE2_IP,
    SITE2_NETS,
    VPC,
    add_second_site,
    apply,
    holds,
    router_child_spis,
    router_sas,
    s2s,
    settings,
    synced,
)

CONN = "vpn-100-64-10-1"  # the router's connection to the first peer
CONN2 = "vpn-100-64-20-2"  # and to the second


def ping(app: Appliance, vm: str, dst: str) -> bool:
    return in_ns(ns_of(app.router, vm), ["ping", "-c", "1", "-W", "1", dst],
                 check=False).find(" 0% packet loss") >= 0


def peer_side(version: int = 2, psk: str = PSK, split: bool = False) -> str:
    children = ([(f"site-{i}", net) for i, net in enumerate(PEER_NETS)] if split else None)
    return site_conf("site", PEER_IP, PUBLIC, ",".join(PEER_NETS), VPC, psk, version=version,
                     children=[(n, VPC) for n, _ in children] if children else None)


def test_ikev2_tunnel_carries_ping_and_tcp_to_both_peer_networks(
        vpn_site: tuple[Appliance, Peer], tmp_path: Path) -> None:
    app, peer = vpn_site
    peer.load(peer_side())
    apply(app, tmp_path, s2s())
    wait_for(lambda: app.running("charon"), 20, "charon to run")
    for net in PEER_NETS:
        host = net.replace("0/24", "1")
        wait_for(lambda host=host: ping(app, "vm1", host), 20,  # type: ignore[misc]
                 f"vm1 to reach {host} through the tunnel")
    # The VM's own address arrives at the peer: no source NAT into the tunnel.
    out = in_ns(ns_of(app.router, "vm1"), ["curl", "-s", "-m", "3", "-o", "/dev/null", "-w",
                                           "%{http_code}", "http://10.30.0.1:9/"], check=False)
    assert out == "000"  # nothing listens there: refused, but across the tunnel
    sas = peer.sas()
    assert [s["name"] for s in sas] == ["site"] and sas[0]["remote-host"] == PUBLIC
    assert VM1  # the VM behind the router


def test_ikev1_with_two_peer_networks_gets_a_child_sa_each(
        vpn_site: tuple[Appliance, Peer], tmp_path: Path) -> None:
    app, peer = vpn_site
    peer.load(peer_side(version=1, split=True))
    apply(app, tmp_path, s2s(ike_version="ikev1"))
    for net in PEER_NETS:
        host = net.replace("0/24", "1")
        wait_for(lambda host=host: ping(app, "vm1", host), 30,  # type: ignore[misc]
                 f"vm1 to reach {host} over IKEv1")
    assert len(peer.child_spis()["site"]) == 2


def test_a_wrong_psk_fails_with_a_clear_line_in_the_log(
        vpn_site: tuple[Appliance, Peer], tmp_path: Path) -> None:
    app, peer = vpn_site
    peer.load(peer_side(psk="not-the-psk"))
    apply(app, tmp_path, s2s())
    log = app.router.root / "var/log/vragent/charon.log"
    wait_for(lambda: log.exists() and "AUTHENTICATION_FAILED" in log.read_text(), 30,
             "the failed authentication in the router's log")
    assert not ping(app, "vm1", "10.30.0.1")
    assert PSK not in log.read_text() and "not-the-psk" not in log.read_text()


def site2_side(psk: str = PSK2) -> str:
    return site_conf("site", SITE2_IP, PUBLIC, ",".join(SITE2_NETS), VPC, psk)


def site2_bag(**over: object) -> dict[str, object]:
    return s2s(peer_gateway_ip=SITE2_IP, peer_guest_cidr_list=",".join(SITE2_NETS),
               ipsec_psk=PSK2, **over)


def bytes_through(app: Appliance, conn: str) -> int:
    """Bytes the router's CHILD_SAs of ``conn`` carried, in and out."""
    return sum(int(c.get("bytes-in") or 0) + int(c.get("bytes-out") or 0)
               for ike in router_sas(app) if ike["name"] == conn
               for c in ike.get("child-sas", {}).values())


def through(app: Appliance, conn: str, host: str) -> bool:
    """vm1 pings ``host`` and the router's CHILD_SAs of ``conn`` carry it (10.30.0.1,
    on the outside host, answers in the clear too once the tunnel is gone)."""
    before = bytes_through(app, conn)
    return ping(app, "vm1", host) and bytes_through(app, conn) > before


def tunnel_up(app: Appliance, host: str, conn: str = CONN, timeout: float = 20) -> None:
    wait_for(lambda: through(app, conn, host), timeout,
             f"vm1 to reach {host} through the tunnel {conn}")


def test_vm_traffic_reaches_the_peer_site_with_its_own_address(
        vpn_site: tuple[Appliance, Peer], tmp_path: Path) -> None:
    """NAT exemption: the peer's server sees the VM's address, not the router's public one."""
    app, peer = vpn_site
    peer.load(peer_side())
    apply(app, tmp_path, s2s())
    tunnel_up(app, "10.30.0.1")
    before = bytes_through(app, CONN)
    with server(ns_of(app.router, "out"), 7001):
        seen = connect(ns_of(app.router, "vm1"), "10.30.0.1", 7001)
    assert seen == VM1, f"the peer site saw {seen!r}, not the VM's {VM1}"
    assert bytes_through(app, CONN) > before  # and it went through the tunnel


def test_removing_or_changing_one_peer_leaves_the_other_untouched(
        two_sites: tuple[Appliance, Peer, Peer], tmp_path: Path) -> None:
    app, peer, second = two_sites
    peer.load(site_conf("site", PEER_IP, PUBLIC, ",".join(PEER_NETS), VPC, PSK,
                        esp="aes128-sha1-modp1536,aes256-sha256-modp2048"))
    second.load(site2_side())
    apply(app, tmp_path, s2s(), site2_bag())
    tunnel_up(app, "10.30.0.1")
    tunnel_up(app, "10.40.0.1", CONN2)
    wait_for(lambda: synced(app), 20, "the router's sync of both peers")
    kept = second.child_spis()
    kept_router = router_child_spis(app)[CONN2]
    assert kept and kept_router

    # The first peer changes (a new ESP policy): only its tunnel is re-established.
    old_first = router_child_spis(app)[CONN]
    apply(app, tmp_path, s2s(esp_policy="aes256-sha256;modp2048"))
    wait_for(lambda: synced(app), 20, "the router's sync of the change")
    wait_for(lambda: router_child_spis(app).get(CONN, old_first) != old_first
             and through(app, CONN, "10.30.0.1"), 30,
             "the first peer's tunnel re-established with the new policy")
    # (The CHILD_SA set up with IKE_AUTH has no DH exchange of its own: PFS is on rekeying.)
    algs = {(c.get("encr-alg"), c.get("encr-keysize"), c.get("integ-alg"))
            for ike in router_sas(app) if ike["name"] == CONN
            for c in ike["child-sas"].values()}
    assert algs == {("AES_CBC", "256", "HMAC_SHA2_256_128")}, algs
    assert second.child_spis() == kept
    assert router_child_spis(app)[CONN2] == kept_router
    assert through(app, CONN2, "10.40.0.1")

    # The first peer is removed: its SAs go, on both sides; the second's stay as they were.
    apply(app, tmp_path, s2s(create=False, esp_policy="aes256-sha256;modp2048"))
    wait_for(lambda: synced(app), 20, "the router's sync of the removal")
    wait_for(lambda: CONN not in {s["name"] for s in router_sas(app)}, 10,
             "the router to terminate the removed peer's SAs")
    wait_for(lambda: not peer.sas(), 10, "the removed peer to see its IKE SA deleted")
    # The removed site's networks are just the Internet again: source-NATed.
    with server(ns_of(app.router, "out"), 7004):
        assert connect(ns_of(app.router, "vm1"), "10.30.0.1", 7004) == PUBLIC
    assert second.child_spis() == kept
    assert router_child_spis(app) == {CONN2: kept_router}
    assert through(app, CONN2, "10.40.0.1")


def test_a_passive_peer_is_not_called_but_answered(
        vpn_site: tuple[Appliance, Peer], tmp_path: Path) -> None:
    app, peer = vpn_site
    peer.load(peer_side())
    apply(app, tmp_path, s2s(passive=True))
    wait_for(lambda: synced(app), 20, "the router's sync of the passive peer")
    # A non-passive peer is initiated by that sync (the IKE SA exists within
    # milliseconds): none appears, on either side.
    holds(lambda: not router_sas(app) and not peer.sas(), 3,
          "the router initiated a passive peer")
    assert f"from {PUBLIC}[500]" not in peer.log.read_text()
    assert not ping(app, "vm1", "10.30.0.1")
    peer.swanctl("--initiate", "--child", "site", "--timeout", "20")
    tunnel_up(app, "10.30.0.1")
    with server(ns_of(app.router, "out"), 7002):
        assert connect(ns_of(app.router, "vm1"), "10.30.0.1", 7002) == VM1


def test_a_peer_known_by_its_identity_only_connects_from_any_address(
        vpn_site: tuple[Appliance, Peer], tmp_path: Path) -> None:
    app, peer = vpn_site
    peer.load(site_conf("site", PEER_IP, PUBLIC, ",".join(PEER_NETS), VPC, PSK,
                        local_id="@site.example"))
    apply(app, tmp_path, s2s(peer_gateway_ip="0.0.0.0", peer_id="@site.example"))
    wait_for(lambda: synced(app), 20, "the router's sync of the peer by identity")
    assert "vpn-id--site-example" in json_index(app)
    peer.swanctl("--initiate", "--child", "site", "--timeout", "20")
    tunnel_up(app, "10.30.0.1", "vpn-id--site-example")
    sas = router_sas(app)
    assert [(s["name"], s["remote-id"], s["remote-host"]) for s in sas] == [
        ("vpn-id--site-example", "site.example", PEER_IP)]


def json_index(app: Appliance) -> str:
    return INDEX.of(settings(app)).read_text()


def ike_rules(app: Appliance) -> list[str]:
    """The router's netfilter rules that mention IKE's ports."""
    listing = app.router.sh("nft", "list", "table", "inet", "vragent")
    return [line.strip() for line in listing.splitlines()
            if re.search(r"\b(500|4500)\b", line) and "dport" in line]


def test_ike_from_an_address_that_is_not_a_peer_is_dropped(
        vpn_site: tuple[Appliance, Peer], tmp_path: Path) -> None:
    app, peer = vpn_site
    stranger = add_second_site(app, tmp_path / "peer2")
    try:
        peer.load(peer_side())
        stranger.load(site2_side())
        apply(app, tmp_path, s2s())
        tunnel_up(app, "10.30.0.1")
        rules = ike_rules(app)
        assert rules and all(f"ip saddr {PEER_IP}" in r and f"ip daddr {PUBLIC}" in r
                             for r in rules), rules
        # The stranger calls: its IKE_SA_INIT is retransmitted, never answered.
        stranger.swanctl("--initiate", "--child", "site", "--timeout", "1", check=False)
        wait_for(lambda: "retransmit 1 of request" in stranger.log.read_text(), 15,
                 "the stranger to retransmit its unanswered IKE_SA_INIT")
        router_log = (app.router.root / "var/log/vragent/charon.log").read_text()
        assert f"received packet: from {PEER_IP}" in router_log  # the log does show packets
        assert f"from {SITE2_IP}" not in router_log
        assert not [s for s in stranger.sas() if s.get("state") == "ESTABLISHED"]
        # Once it is a peer, the same call is answered.
        apply(app, tmp_path, site2_bag(passive=True))
        wait_for(lambda: synced(app), 20, "the router's sync of the second peer")
        assert any(SITE2_IP in r for r in ike_rules(app))
        stranger.swanctl("--terminate", "--ike", "site", "--force", check=False)
        stranger.swanctl("--initiate", "--child", "site", "--timeout", "20")
        tunnel_up(app, "10.40.0.1", CONN2)
    finally:
        stranger.stop()


def test_checkbatchs2svpn_and_metrics_report_the_tunnel(
        vpn_site: tuple[Appliance, Peer], tmp_path: Path) -> None:
    app, peer = vpn_site
    peer.load(peer_side())
    apply(app, tmp_path, s2s())
    tunnel_up(app, "10.30.0.1")
    unknown = "100.64.10.99"
    script = Path(sys.executable).parent / "checkbatchs2svpn.sh"
    proc = subprocess.run(["ip", "netns", "exec", app.router.ns, "env",
                           f"VRAGENT_ROOT={app.router.root}", str(script), PEER_IP, unknown],
                          capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout) == (
        0, f"{PEER_IP}:0:IPsec SA found;Site-to-site VPN have connected&"
           f"{unknown}:11:IPsec SA not found;Site-to-site VPN have not connected&"), proc.stderr
    metrics = {m.name: m for m in stats.metrics(settings(app))}
    assert dict(metrics["vragent_ipsec_peer_up"].samples) == {(PEER_IP,): 1.0}


def test_dpd_and_forced_encapsulation(
        vpn_site: tuple[Appliance, Peer], tmp_path: Path) -> None:
    app, peer = vpn_site
    peer.load(site_conf("site", PEER_IP, PUBLIC, ",".join(PEER_NETS), VPC, PSK, encap=True))
    apply(app, tmp_path, s2s(dpd=True, encap=True))
    tunnel_up(app, "10.30.0.1")
    with charon.session(SOCKET.of(settings(app))) as v:
        conns = {n: c for e in v.list_conns() for n, c in e.items()}
    conn = conns[CONN]
    # Upstream's dpddelay=30, dpdtimeout=120, dpdaction=restart (vici lists restart as start).
    assert (conn["dpd_delay"], conn["dpd_timeout"]) == (b"30", b"120"), conn
    assert conn["children"][CONN]["dpd_action"] == b"start", conn
    [ike] = router_sas(app)
    # UDP-encapsulated ESP on NAT-T's port, though no NAT is in the way.
    assert ike["remote-port"] == "4500", ike
    assert {c.get("encap") for c in ike["child-sas"].values()} == {"yes"}, ike
    with server(ns_of(app.router, "out"), 7003):
        assert connect(ns_of(app.router, "vm1"), "10.30.0.1", 7003) == VM1
