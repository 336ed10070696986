"""Site-to-site tunnels between the router and a real strongSwan peer site.

The bags are as Site2SiteVpnConfigItem sends them; upstream's router is
systemvm/debian/opt/cloud/bin/configure.py CsSite2SiteVpn (stroke ipsec.conf,
``ipsec reload`` on every apply). Here swanctl and vici: see
vragent/features/vpn/subsystem.py.
"""

from __future__ import annotations

from pathlib import Path

from vragent_lab.netns import VM1, in_ns, wait_for

from ..harness import ns_of
from ..services.conftest import Appliance
from .conftest import PEER_IP, PEER_NETS, PSK, PUBLIC, VPC, apply, s2s
from .peer import Peer, site_conf


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
