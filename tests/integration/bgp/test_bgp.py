"""BGP with the real FRR: the sample VPC router (supervisord, the resident
agent, zebra and bgpd) and an outside speaker, FRR's bgpd started by the
test in the outside namespace with its own configuration.

Upstream followed: systemvm/debian/opt/cloud/bin/cs_bgppeers.py and
cs/CsBgpPeers.py (the bag's meaning, frr.conf), BgpPeerTO (field names).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vragent_lab.netns import in_ns, wait_for

from ..harness import SAMPLE, ns_of
from ..services.conftest import Appliance
from ..services.conftest import appliance as appliance  # noqa: F401 (the fixture)
from .speaker import PASSWORD, ROUTER6, SPEAKER4, SPEAKER6, SPEAKER_AS, VPC_AS, Speaker

TIER1_6 = "fd00:10:10:1::/64"


def metrics(app: Appliance) -> str:
    conn = http.client.HTTPConnection("localhost", timeout=10)
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(app.router.root / "run/vragent/api.sock"))
    conn.sock = sock
    conn.request("GET", "/metrics")
    return conn.getresponse().read().decode()


def router_neighbor(app: Appliance, address: str) -> dict[str, Any]:
    root = app.router.root
    out = in_ns(app.router.ns, ["vtysh", "--config_dir", str(root / "etc/vragent/frr"),
                                "--vty_socket", str(root / "run/vragent/frr"), "-d", "bgpd",
                                "-c", "show bgp neighbors json"], check=False)
    try:
        return dict(json.loads(out or "{}").get(address, {}))
    except ValueError:
        return {}


def advertised(app: Appliance, address: str) -> set[str]:
    root = app.router.root
    out = in_ns(app.router.ns, ["vtysh", "--config_dir", str(root / "etc/vragent/frr"),
                                "--vty_socket", str(root / "run/vragent/frr"), "-d", "bgpd",
                                "-c", f"show bgp ipv6 unicast neighbors {address} "
                                "advertised-routes json"], check=False)
    try:
        return set(json.loads(out or "{}").get("advertisedRoutes", {}))
    except ValueError:
        return set()


def peers_bag(tmp: Path, peers: list[dict[str, Any]]) -> Path:
    path = tmp / f"bgp-{time.monotonic_ns()}.json"
    path.write_text(json.dumps({"type": "bgppeers", "peers": peers}))
    return path


def peer(peer_id: int, network_id: int, cidr4: str, password: str = PASSWORD,
         address: str = SPEAKER4, **kw: Any) -> dict[str, Any]:
    return {"peer_id": peer_id, "peer_as_number": SPEAKER_AS, "ip4_address": address,
            "peer_password": password, "network_id": network_id,
            "network_as_number": VPC_AS, "guest_ip4_cidr": cidr4, "details": {}, **kw}


def vpc_peers(password: str = PASSWORD) -> list[dict[str, Any]]:
    return [peer(1, 201, "10.10.1.0/24", password, ip6_address=SPEAKER6,
                 guest_ip6_cidr=TIER1_6),
            peer(1, 202, "10.10.2.0/24", password)]


@pytest.fixture
def bgp_app(tmp_path: Path, appliance: Appliance) -> Iterator[tuple[Appliance, Speaker]]:  # noqa: F811
    router = appliance.router
    out = ns_of(router, "out")
    in_ns(out, ["ip", "-6", "addr", "add", f"{SPEAKER6}/64", "dev", "eth0", "nodad"])
    tier1 = json.loads((SAMPLE / "guest_network_tier1.json").read_text())
    tier1.update(router_guest_ip6="fd00:10:10:1::1", router_guest_ip6_gateway="fd00:10:10:1::1",
                 router_guest_ip6_cidr=TIER1_6, router_ip6=ROUTER6,
                 router_ip6_gateway=SPEAKER6, router_ip6_cidr="fd00:64:10::/64")
    path = tmp_path / "tier1-dual.json"
    path.write_text(json.dumps(tier1))
    router.apply(path)
    speaker = Speaker(out, tmp_path / "speaker")
    try:
        yield appliance, speaker
    finally:
        speaker.stop()


def test_bgp_with_real_frr(bgp_app: tuple[Appliance, Speaker], tmp_path: Path) -> None:
    app, speaker = bgp_app
    router = app.router
    speaker.start(PASSWORD)
    # 1. A wrong password: the session never comes up, and the router says why.
    router.apply(peers_bag(tmp_path, vpc_peers("Wrong-pw1")))
    wait_for(lambda: app.running("bgpd") and app.running("zebra"), 30, "zebra and bgpd to run")
    conf = router.root / "etc/vragent/frr/frr.conf"
    assert conf.stat().st_mode & 0o777 == 0o600
    err = ('vragent_bgp_peer_error{error="never established: password mismatch or peer '
           'unreachable (the kernel drops TCP-MD5 segments)",peer="100.64.10.1"} 1.0')
    wait_for(lambda: err in metrics(app), 30, "the password error on the metrics endpoint")
    text = metrics(app)
    assert 'vragent_bgp_peer_up{peer="100.64.10.1"} 0.0' in text
    md5 = [line for line in text.splitlines()
           if line.startswith('vragent_bgp_tcp_md5_segments_total{counter="TCPMD5Failure"}')]
    assert md5 and float(md5[0].split()[-1]) > 0, text
    records = [json.loads(line) for line in app.agent_log().splitlines() if line.strip()]
    bgp_errors = [r for r in records if r.get("event") == "bgp" and r.get("peer") == SPEAKER4]
    assert bgp_errors and "password mismatch or peer unreachable" in bgp_errors[-1]["error"]
    assert "Wrong-pw1" not in app.agent_log() and PASSWORD not in app.agent_log()
    assert speaker.routes("ipv4") == set()
    bgpd_pid = app.pid("bgpd")

    # 2. The right password: both families learnt, by reload (bgpd not restarted).
    started = time.monotonic()
    router.apply(peers_bag(tmp_path, vpc_peers()))
    wait_for(lambda: {"10.10.1.0/24", "10.10.2.0/24"} <= speaker.routes("ipv4"), 30,
             "the speaker to learn both tiers (IPv4)")
    learnt4 = time.monotonic() - started
    # IPv6: over the session between the public IPv6 addresses, the router
    # advertises the IPv6 tier and the speaker takes it.
    wait_for(lambda: TIER1_6 in advertised(app, SPEAKER6), 30,
             "the router to advertise the IPv6 tier to the IPv6 peer")
    wait_for(lambda: TIER1_6 in speaker.routes("ipv6"), 30,
             "the speaker to learn the IPv6 tier")
    learnt6 = time.monotonic() - started
    print(f"\nlearnt after the bag: IPv4 {learnt4:.1f} s, IPv6 {learnt6:.1f} s")
    assert app.pid("bgpd") == bgpd_pid
    wait_for(lambda: 'vragent_bgp_peer_up{peer="100.64.10.1"} 1.0' in metrics(app), 20,
             "the peer up on the metrics endpoint")
    first = router_neighbor(app, SPEAKER4)
    assert first["bgpState"] == "Established" and first["connectionsEstablished"] == 1

    # 3. A second peer added: the first one's session is untouched.
    router.apply(peers_bag(tmp_path, [*vpc_peers(),
                                      peer(2, 201, "10.10.1.0/24", address="100.64.10.3")]))
    wait_for(lambda: "neighbor 100.64.10.3 remote-as" in in_ns(router.ns, [
        "vtysh", "--config_dir", str(router.root / "etc/vragent/frr"), "--vty_socket",
        str(router.root / "run/vragent/frr"), "-c", "show running-config"]), 20,
        "the second peer in bgpd's running configuration")
    after = router_neighbor(app, SPEAKER4)
    assert after["connectionsEstablished"] == 1 and after["bgpState"] == "Established"
    assert after["bgpTimerUpMsec"] >= first["bgpTimerUpMsec"]
    assert app.pid("bgpd") == bgpd_pid

    # 4. A tier goes: its route is withdrawn.
    gone = json.loads((SAMPLE / "guest_network_tier2.json").read_text()) | {"add": False}
    path = tmp_path / "tier2-gone.json"
    path.write_text(json.dumps(gone))
    router.apply(path)
    wait_for(lambda: "10.10.2.0/24" not in speaker.routes("ipv4"), 20,
             "the removed tier's route to be withdrawn")
    assert "10.10.1.0/24" in speaker.routes("ipv4")
    assert router_neighbor(app, SPEAKER4)["connectionsEstablished"] == 1
    assert app.pid("bgpd") == bgpd_pid
    # No password in any log of the router.
    for name in ("agent", "bgpd", "zebra"):
        text = (router.root / f"var/log/vragent/{name}.log").read_text()
        assert PASSWORD not in text and "Wrong-pw1" not in text, name
