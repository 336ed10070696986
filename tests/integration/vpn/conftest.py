"""The sample VPC router as an appliance, with a strongSwan peer site in the
outside host's namespace (its public address 100.64.10.1, its networks on
its loopback)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from vragent.features.vpn.daemon import INDEX, SOCKET, SYNCED
from vragent.settings import Settings
from vragent.system import charon
from vragent_lab.ipsec import Peer
from vragent_lab.netns import in_ns

from ..harness import ALL_BAGS, ns_of, vpc_lab
from ..services.conftest import Appliance

PUBLIC = "100.64.10.10"  # the router's source-NAT IP: its VPN gateway
PEER_IP = "100.64.10.1"  # the outside host
VPC = "10.10.0.0/16"
PEER_NETS = ("10.30.0.0/24", "10.31.0.0/24")
PSK = "s3cret-psk"
# A second peer site beyond the outside host: its own public subnet, routed by "out".
SITE2_IP = "100.64.20.2"
SITE2_GW = "100.64.20.1"  # "out"'s address on that subnet
SITE2_NETS = ("10.40.0.0/24",)
PSK2 = "other-site-psk"


def s2s(**over: Any) -> dict[str, Any]:
    """A site2sitevpn bag as Site2SiteVpnConfigItem sends it."""
    return {"type": "site2sitevpn", "local_public_ip": PUBLIC, "local_guest_cidr": VPC,
            "local_public_gateway": "100.64.10.1", "peer_gateway_ip": PEER_IP,
            "peer_guest_cidr_list": ",".join(PEER_NETS), "esp_policy": "aes128-sha1;modp1536",
            "ike_policy": "aes128-sha256;modp2048", "ipsec_psk": PSK, "ike_lifetime": 86400,
            "esp_lifetime": 3600, "create": True, "dpd": False, "passive": False,
            "encap": False, "split_connections": False, "ike_version": "ikev2", **over}


def apply(app: Appliance, tmp: Path, *bags: dict[str, Any], check: bool = True
          ) -> subprocess.CompletedProcess[str]:
    paths = []
    for bag in bags:
        path = tmp / f"bag-{time.monotonic_ns()}.json"
        path.write_text(json.dumps(bag))
        paths.append(path)
    return app.router.apply(*paths, check=check)


def settings(app: Appliance) -> Settings:
    return Settings(root=app.router.root)


def router_sas(app: Appliance) -> list[dict[str, Any]]:
    """The router's IKE SAs (vici), [] while charon is not listening."""
    try:
        return charon.sas(SOCKET.of(settings(app)))
    except OSError:
        return []


def router_child_spis(app: Appliance) -> dict[str, set[tuple[str, str]]]:
    """The router's installed CHILD_SAs' (in, out) SPIs, by connection."""
    spis: dict[str, set[tuple[str, str]]] = {}
    for ike in router_sas(app):
        for c in ike.get("child-sas", {}).values():
            if c.get("state") == "INSTALLED":
                spis.setdefault(ike["name"], set()).add((c["spi-in"], c["spi-out"]))
    return spis


def synced(app: Appliance) -> bool:
    """The last sync (``vragent-ipsec sync``) loaded what the last apply rendered."""
    s = settings(app)
    try:
        return bool(json.loads(SYNCED.of(s).read_text()) == json.loads(INDEX.of(s).read_text()))
    except (OSError, ValueError):
        return False


def holds(check: Callable[[], bool], duration: float, what: str) -> None:
    """``check`` stays true for ``duration`` seconds (polled): fail naming ``what``."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        assert check(), what
        time.sleep(0.1)


def add_second_site(app: Appliance, base: Path) -> Peer:
    """A second peer site: namespace ``site2`` (the lab's prefix, so the lab's
    destroy removes it) linked to "out", which routes for it; its networks on
    its loopback and its own charon (started)."""
    lab = app.router.lab
    lab.link("out", "eth1", "site2", "eth0")
    out, site2 = ns_of(app.router, "out"), lab.ns("site2")
    in_ns(out, ["ip", "addr", "add", f"{SITE2_GW}/24", "dev", "eth1"])
    in_ns(out, ["ip", "link", "set", "eth1", "up"])
    in_ns(out, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    lab.host("site2", "eth0", f"{SITE2_IP}/24", SITE2_GW)
    for net in SITE2_NETS:
        in_ns(site2, ["ip", "addr", "add", net.replace("0/24", "1/24"), "dev", "lo"])
    peer = Peer(site2, base)
    peer.start()
    return peer


@pytest.fixture
def vpn_site(tmp_path: Path) -> Iterator[tuple[Appliance, Peer]]:
    with vpc_lab(tmp_path) as router:
        out = ns_of(router, "out")
        for net in PEER_NETS:
            in_ns(out, ["ip", "addr", "add", net.replace("0/24", "1/24"), "dev", "lo"])
        app = Appliance(router)
        peer = Peer(out, tmp_path / "peer")
        try:
            app.start()
            router.apply(*ALL_BAGS)
            peer.start()
            yield app, peer
        finally:
            peer.stop()
            app.stop()


@pytest.fixture
def two_sites(vpn_site: tuple[Appliance, Peer], tmp_path: Path
              ) -> Iterator[tuple[Appliance, Peer, Peer]]:
    app, peer = vpn_site
    second = add_second_site(app, tmp_path / "peer2")
    try:
        yield app, peer, second
    finally:
        second.stop()
