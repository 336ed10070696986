"""The sample VPC router as an appliance, with a strongSwan peer site in the
outside host's namespace (its public address 100.64.10.1, its networks on
its loopback)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vragent_lab.netns import in_ns

from ..harness import ALL_BAGS, ns_of, vpc_lab
from ..services.conftest import Appliance
from .peer import Peer

PUBLIC = "100.64.10.10"  # the router's source-NAT IP: its VPN gateway
PEER_IP = "100.64.10.1"  # the outside host
VPC = "10.10.0.0/16"
PEER_NETS = ("10.30.0.0/24", "10.31.0.0/24")
PSK = "s3cret-psk"


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
