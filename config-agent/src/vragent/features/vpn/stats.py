"""The tunnels' state: CloudStack's ``checkbatchs2svpn.sh``, the metrics
endpoint and the health check, all from charon's SAs (vici)."""

from __future__ import annotations

import ipaddress
import json
import sys
from typing import Any

from ...feature import Metric
from ...settings import Settings

CONNECTED = "IPsec SA found;Site-to-site VPN have connected"
NOT_CONNECTED = "IPsec SA not found;Site-to-site VPN have not connected"


def pool_networks(pool: str) -> list[ipaddress.IPv4Network]:
    first, _, last = pool.partition("-")
    return list(ipaddress.summarize_address_range(ipaddress.IPv4Address(first),
                                                  ipaddress.IPv4Address(last)))


def _sas(settings: Settings) -> list[dict[str, Any]] | None:
    from ...system import charon
    from .daemon import SOCKET

    try:
        return charon.sas(SOCKET.of(settings))
    except (OSError, ImportError):
        return None


def _index(settings: Settings) -> dict[str, Any]:
    from .daemon import INDEX

    try:
        data = json.loads(INDEX.of(settings).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def l2tp_status(settings: Settings) -> dict[str, Any]:
    """Whether L2TP/IPsec is configured and served here, and why not
    (written by the subsystem's apply)."""
    from .daemon import L2TP_STATUS

    try:
        data = json.loads(L2TP_STATUS.of(settings).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def peer_up(sas: list[dict[str, Any]], conn: str, children: list[str]) -> bool:
    """Connected: an established IKE SA with every CHILD_SA installed (upstream's
    checks2svpn.sh looks for an established IKE SA only)."""
    for ike in sas:
        if ike["name"] == conn and ike.get("state") == "ESTABLISHED":
            up = {c.get("name") for c in ike.get("child-sas", {}).values()
                  if c.get("state") == "INSTALLED"}
            if set(children) <= up:
                return True
    return False


def check_batch(settings: Settings, peers: list[str]) -> str:
    """checkbatchs2svpn.sh's answer: ``<peer>:<0|11>:<detail>&`` per peer
    (CheckS2SVpnConnectionsAnswer.parseDetails splits on '&' and ':')."""
    sas = _sas(settings) or []
    conns = _index(settings).get("conns", {})
    out = ""
    for peer in peers:
        conn = next((n for n, c in conns.items() if c.get("peer") == peer), None)
        up = conn is not None and peer_up(sas, conn, conns[conn].get("children", []))
        out += f"{peer}:{0 if up else 11}:{CONNECTED if up else NOT_CONNECTED}&"
    return out


def main(argv: list[str] | None = None) -> int:
    """``checkbatchs2svpn.sh <peer ip>...`` (VRScripts.S2SVPN_CHECK)."""
    args = sys.argv[1:] if argv is None else argv
    if any(not a.isascii() or not a.replace(".", "").replace("-", "").isalnum() for a in args):
        print("usage: checkbatchs2svpn.sh <peer ip>...", file=sys.stderr)
        return 1
    print(check_batch(Settings.from_env(), args), end="")
    return 0


def metrics(settings: Settings) -> list[Metric]:
    conns = _index(settings).get("conns", {})
    if not conns:
        return []
    status = l2tp_status(settings)
    l2tp = []
    if status.get("configured"):
        from ...system import xl2tpd

        l2tp = [
            Metric("vragent_l2tp_served", "1 while L2TP/IPsec remote access is served (0: the "
                   "kernel lacks ESP or PPP; the health check says which)", "gauge", (),
                   (((), 1.0 if status.get("served") else 0.0),)),
            Metric("vragent_l2tp_sessions", "L2TP/IPsec clients connected (pppd sessions)",
                   "gauge", (), (((), float(len(xl2tpd.sessions()))),)),
        ]
    sas = _sas(settings)
    if sas is None:
        sas = []
    up = tuple(((c.get("peer") or name,), 1.0 if peer_up(sas, name, c.get("children", []))
                else 0.0) for name, c in sorted(conns.items()) if c.get("peer"))
    traffic_in, traffic_out = [], []
    for ike in sas:
        peer = conns.get(ike["name"], {}).get("peer") or ike["name"]
        for c in ike.get("child-sas", {}).values():
            traffic_in.append(((peer, str(c.get("name"))), float(c.get("bytes-in") or 0)))
            traffic_out.append(((peer, str(c.get("name"))), float(c.get("bytes-out") or 0)))
    clients = sum(1 for ike in sas if ike.get("remote-eap-id"))
    return [
        Metric("vragent_ipsec_peer_up", "1 while the site-to-site tunnel to the peer is up "
               "(IKE SA established, every CHILD_SA installed)", "gauge", ("peer",), up),
        Metric("vragent_ipsec_bytes_in", "Bytes received through a CHILD_SA", "counter",
               ("peer", "child"), tuple(traffic_in)),
        Metric("vragent_ipsec_bytes_out", "Bytes sent through a CHILD_SA", "counter",
               ("peer", "child"), tuple(traffic_out)),
        Metric("vragent_ipsec_remote_access_clients", "Remote-access clients connected",
               "gauge", (), (((), float(clients)),)),
        *l2tp,
    ]
