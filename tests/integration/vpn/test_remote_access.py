"""Remote access: real strongSwan road warriors against the router.

The bags are as RemoteAccessVpnConfigItem and VpnUsersConfigItem send them;
upstream's router is configure.py CsRemoteAccessVpn (L2TP/IPsec, xl2tpd)
and CsVpnUser (chap-secrets; removing a user kills every pppd whose tdb
record merely contains the name). Here IKEv2 with EAP-MSCHAPv2 against the
user list, the router's own certificate, addresses from ``ip_range`` and
only the VPC as traffic selector (split routes): see
vragent/features/vpn/subsystem.py. Each client is a charon in a namespace
of its own on the public side (client.py).

Upstream file: systemvm/debian/opt/cloud/bin/configure.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vragent_lab.ipsec import Peer
from vragent_lab.netns import OUTSIDE_FAR, VM1, wait_for

from ..harness import connect, ns_of, server
from ..services.conftest import Appliance
from .client import SERVER, Client, router_conns, router_sas
from .conftest import PEER_NETS, VPC, apply, s2s
from .test_site_to_site import peer_side, ping

RANGE = "10.1.2.2-10.1.2.8"
POOL = {f"10.1.2.{i}" for i in range(2, 9)}
SSH = 22  # tier 1's ACL lets ICMP and TCP 22 in


def ra(**over: Any) -> dict[str, Any]:
    """A remoteaccessvpn bag as RemoteAccessVpnConfigItem sends it (a VPC)."""
    return {"type": "remoteaccessvpn", "create": True, "ip_range": RANGE,
            "preshared_key": "ra-psk-unused", "vpn_server_ip": SERVER, "local_ip": "10.1.2.1",
            "local_cidr": VPC, "public_interface": "eth1", **over}


def users(*entries: tuple[str, str] | tuple[str, str, bool]) -> dict[str, Any]:
    return {"type": "vpnuserlist",
            "vpn_users": [{"user": e[0], "password": e[1], "add": e[2] if len(e) > 2 else True}
                          for e in entries]}


class Site:
    """The router with remote access, and the clients attached to it."""

    def __init__(self, app: Appliance, peer: Peer, tmp: Path) -> None:
        self.app, self.peer, self.tmp = app, peer, tmp
        self.clients: list[Client] = []

    @property
    def log(self) -> Path:
        return self.app.router.root / "var/log/vragent/charon.log"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def apply(self, *bags: dict[str, Any], check: bool = True, settle: bool = True) -> Any:
        """Apply, then wait until the resident agent has had charon load it:
        ``vragent apply`` writes the files and wakes the agent, which runs
        ``vragent-ipsec sync`` (it records the index it loaded)."""
        done = apply(self.app, self.tmp, *bags, check=check)
        if settle and done.returncode == 0:
            wait_for(self.settled, 10, "the agent to load the change into charon")
        return done

    def settled(self) -> bool:
        index = self.app.router.root / "etc/vragent/ipsec-index.json"
        synced = self.app.router.root / "run/vragent/ipsec-synced.json"
        try:
            return bool(json.loads(index.read_text()) == json.loads(synced.read_text()))
        except (OSError, ValueError):
            return False

    def serving(self, timeout: float = 20) -> None:
        """Wait until the router's charon has remote access loaded."""
        wait_for(lambda: "remote-access" in router_conns(self.app.router) and self.settled(),
                 timeout, "the router to load remote access")

    def client(self, user: str, password: str) -> Client:
        c = Client.attach(self.app.router, len(self.clients) + 1, self.tmp / "clients", user,
                          password)
        self.clients.append(c)
        return c

    def sessions(self) -> dict[str, dict[str, Any]]:
        """The router's remote-access IKE SAs, by EAP identity."""
        try:
            found = router_sas(self.app.router)
        except OSError:  # refused, reset, or no socket
            return {}  # no charon: no sessions
        return {s["remote-eap-id"]: s for s in found
                if s["name"] == "remote-access" and s.get("remote-eap-id")}


def spis(ike: dict[str, Any]) -> tuple[str, str, set[tuple[str, str]]]:
    return (ike["initiator-spi"], ike["responder-spi"],
            {(c["spi-in"], c["spi-out"]) for c in ike.get("child-sas", {}).values()})


@pytest.fixture
def site(vpn_site: tuple[Appliance, Peer], tmp_path: Path) -> Iterator[Site]:
    app, peer = vpn_site
    s = Site(app, peer, tmp_path)
    try:
        yield s
    finally:
        for c in s.clients:
            c.stop()


def test_a_listed_user_gets_a_pool_address_reaches_the_vpc_and_only_the_vpc(
        site: Site) -> None:
    site.apply(ra(), users(("alice", "Al1ce-pw")))
    site.serving()
    alice = site.client("alice", "Al1ce-pw")
    # A full-tunnel request: the router narrows it to the VPC.
    alice.configure(remote_ts="0.0.0.0/0")
    assert alice.connect(), site.log_text()[-4000:]
    vip = alice.vip()
    assert vip in POOL
    child = alice.child()
    assert child["local-ts"] == [f"{vip}/32"] and child["remote-ts"] == [VPC]
    wait_for(lambda: alice.ping(VM1), 10, "alice to ping vm1 through the tunnel")
    with server(ns_of(site.app.router, "vm1"), SSH):
        # vm1 sees the client's pool address: no NAT either way.
        assert connect(alice.ns, VM1, SSH) == vip
    # Split routes: only the VPC is routed into the tunnel (charon's table 220).
    routes = [r.split()[0] for r in alice.run("ip", "-4", "route", "show", "table", "220")
              .splitlines() if r.strip()]
    assert routes == [VPC], routes
    assert "dev eth0" in alice.run("ip", "-4", "route", "get", OUTSIDE_FAR)
    assert "dev eth0" not in alice.run("ip", "-4", "route", "get", VM1)
    before = int(alice.child()["packets-out"])
    assert alice.ping(OUTSIDE_FAR)  # beyond "out", straight, not through the router
    assert int(alice.child()["packets-out"]) == before
    assert alice.ping(VM1)
    assert int(alice.child()["packets-out"]) > before
    # The router's side: the session, its identity and its address.
    s = site.sessions()["alice"]
    assert s["remote-host"] == alice.address and s["remote-vips"] == [vip]


def test_a_wrong_password_is_refused_with_an_eap_failure_and_no_secret_in_the_log(
        site: Site) -> None:
    right, wrong = "R1ght-pw-alice", "Wr0ng-pw-alice"
    site.apply(ra(), users(("alice", right)))
    site.serving()
    alice = site.client("alice", wrong)
    assert not alice.connect()
    assert alice.sas() == []
    assert not [s for s in router_sas(site.app.router) if s.get("state") == "ESTABLISHED"]
    # charon offers MS-CHAPv2's retry; the client gives up on the first failure.
    wait_for(lambda: "EAP-MS-CHAPv2 verification failed" in site.log_text(), 10,
             "the EAP failure in the router's log")
    log = site.log_text()
    assert "received EAP identity 'alice'" in log
    for secret in (right, wrong):
        assert secret not in log and secret.encode().hex() not in log
    # The same client with the right password: it was the password.
    alice.configure(password=right)
    assert alice.connect(), site.log_text()[-3000:]
    assert right not in site.log_text()


def test_remote_access_works_while_a_site_to_site_tunnel_is_up(site: Site) -> None:
    app, peer = site.app, site.peer
    peer.load(peer_side())
    site.apply(s2s(), ra(), users(("alice", "Al1ce-pw")))
    site.serving()
    far = PEER_NETS[0].replace("0/24", "1")
    wait_for(lambda: ping(app, "vm1", far), 20, "vm1 to reach the peer site")
    tunnel = peer.child_spis()["site"]
    alice = site.client("alice", "Al1ce-pw")
    assert alice.connect(), site.log_text()[-3000:]
    vip = alice.vip()
    assert vip in POOL
    wait_for(lambda: alice.ping(VM1), 10, "alice to ping vm1 beside the tunnel")
    with server(ns_of(app.router, "vm1"), SSH):
        assert connect(alice.ns, VM1, SSH) == vip
    # The site-to-site tunnel carried on, untouched.
    assert ping(app, "vm1", far)
    assert peer.child_spis()["site"] == tunnel
    names = {s["name"] for s in router_sas(app.router)}
    assert names == {"vpn-100-64-10-1", "remote-access"}, names


def test_users_added_and_a_new_password_take_effect_at_once(site: Site) -> None:
    site.apply(ra(), users(("alice", "Al1ce-pw-1")))
    site.serving()
    alice = site.client("alice", "Al1ce-pw-1")
    assert alice.connect()
    # A user added connects right after the apply (once the agent has loaded
    # it, which apply leaves to it): one attempt, no restart of charon.
    pid = site.app.pid("charon")
    site.apply(users(("carol", "C4rol-pw")))
    carol = site.client("carol", "C4rol-pw")
    assert carol.connect(), site.log_text()[-3000:]
    assert site.app.pid("charon") == pid
    kept = spis(site.sessions()["carol"])
    # A new password: alice's session (on the old one) ends, the old one fails.
    site.apply(users(("alice", "Al1ce-pw-2")))
    wait_for(lambda: "alice" not in site.sessions(), 10, "alice's old session to end")
    wait_for(lambda: alice.sas() == [], 10, "alice's client to see it end")
    assert not alice.connect()
    alice.configure(password="Al1ce-pw-2")
    assert alice.connect(), site.log_text()[-3000:]
    assert alice.ping(VM1)
    assert spis(site.sessions()["carol"]) == kept  # nobody else's session touched


def test_removing_a_user_closes_exactly_that_users_sessions(site: Site) -> None:
    # "bobby" holds "bob": only bob's own session may end.
    pws = {"alice": "Al1ce-pw", "bob": "B0b-pw", "bobby": "B0bby-pw"}
    site.apply(ra(), users(*pws.items()))
    site.serving()
    clients = {u: site.client(u, pw) for u, pw in pws.items()}
    for c in clients.values():
        assert c.connect(), site.log_text()[-3000:]
    before = site.sessions()
    assert set(before) == {"alice", "bob", "bobby"}
    site.apply(users(("bob", "B0b-pw", False)))
    wait_for(lambda: "bob" not in site.sessions(), 10, "bob's session to end on the router")
    after = site.sessions()
    assert set(after) == {"alice", "bobby"}
    for u in ("alice", "bobby"):
        assert spis(after[u]) == spis(before[u]), u
        assert after[u]["uniqueid"] == before[u]["uniqueid"]
    wait_for(lambda: clients["bob"].sas() == [], 10, "bob's client to see its session end")
    assert not clients["bob"].connect()
    assert clients["alice"].ping(VM1) and clients["bobby"].ping(VM1)


@pytest.mark.parametrize("tunnel", [False, True], ids=["alone", "beside-a-tunnel"])
def test_create_false_removes_the_service_and_ends_its_sessions(site: Site,
                                                                tunnel: bool) -> None:
    # Alone, charon stops (and says goodbye); beside a tunnel, it stays up and
    # only remote access is unloaded, its sessions terminated.
    far = PEER_NETS[0].replace("0/24", "1")
    if tunnel:
        site.peer.load(peer_side())
        site.apply(s2s())
    site.apply(ra(), users(("alice", "Al1ce-pw")))
    site.serving()
    alice = site.client("alice", "Al1ce-pw")
    assert alice.connect()
    wait_for(lambda: alice.ping(VM1), 10, "alice to ping vm1")
    site.apply(ra(create=False), settle=tunnel)  # alone: no index, charon stops
    wait_for(lambda: site.sessions() == {}, 10, "the router to end alice's session")
    wait_for(lambda: alice.sas() == [], 10, "alice's client to see its session end")
    assert not alice.ping(VM1)
    assert not alice.connect()
    if tunnel:
        assert "remote-access" not in router_conns(site.app.router)
        wait_for(lambda: ping(site.app, "vm1", far), 20, "the tunnel to carry on")


def test_a_client_range_overlapping_a_peer_network_is_refused_and_nothing_changes(
        site: Site) -> None:
    app, peer = site.app, site.peer
    peer.load(peer_side())
    site.apply(s2s(), ra(), users(("alice", "Al1ce-pw")))
    site.serving()
    alice = site.client("alice", "Al1ce-pw")
    assert alice.connect()
    wait_for(lambda: alice.ping(VM1), 10, "alice to ping vm1")
    conf = app.router.root / "etc/vragent/swanctl.conf"
    snapshot, text, before = app.router.snapshot(), conf.read_bytes(), site.sessions()
    overlapping = "10.30.0.100-10.30.0.120"
    proc = site.apply(ra(ip_range=overlapping), check=False)
    assert proc.returncode != 0
    assert "ip_range" in proc.stderr and overlapping in proc.stderr, proc.stderr
    assert PEER_NETS[0] in proc.stderr, proc.stderr
    assert app.router.snapshot() == snapshot
    assert conf.read_bytes() == text
    assert {u: spis(s) for u, s in site.sessions().items()} == \
        {u: spis(s) for u, s in before.items()}
    assert alice.ping(VM1)
    # A new session still gets an address from the range in force.
    bob_pw = "B0b-pw"
    site.apply(users(("bob", bob_pw)))
    bob = site.client("bob", bob_pw)
    assert bob.connect()
    assert bob.vip() in POOL
