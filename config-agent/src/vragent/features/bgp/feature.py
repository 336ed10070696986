"""The bgp feature: FRR's bgpd from the ``bgppeers`` bag (cs_bgppeers.py,
cs/CsBgpPeers.py; the Java: BgpPeers.java, BgpPeerTO, BgpPeersConfigItem).

Merge rule, as cs_bgppeers.merge: the bag is the router's whole list of
peers (the stored document is replaced), each item filed by
"<peer_id>-<network_id>"; an item without ``peer_id`` (BgpPeerTO(networkId):
"this network has no peer") is dropped. Peer passwords are secrets: never
shown (the API's configuration, errors, the diagnostics zip), written only
to root-only files.

Netfilter (the traffic declared here): BGP (TCP 179) to the router from each
configured peer only, on the public side.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ...feature import BagType, Docs, Feature, Opening, Traffic, raw
from ...models.limits import REDACTED
from . import stats, subsystem
from .model import BgpPeer, BgpPeers

KEY = "bgppeers"
BGP_PORT = 179


def view(docs: Docs, v: Any) -> dict[str, BgpPeer]:
    return {k: v(BgpPeer, d) for k, d in sorted(docs.get(KEY, {}).items())}


def merge_bgppeers(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    assert isinstance(bag, BgpPeers)
    stored = raw(bag).get("peers", [])
    peers = {p.key: item for p, item in zip(bag.peers, stored, strict=True)
             if p.peer_id is not None}
    return {**docs, KEY: peers}


def _redact(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: {**v, "peer_password": REDACTED} if isinstance(v, dict) and
            v.get("peer_password") else v for k, v in doc.items()}


def traffic(cfg: Any, settings: Any, d: Any) -> Traffic:
    if d is None or not d.enabled:
        return Traffic()
    return Traffic(accept=tuple(Opening("public", "tcp", (BGP_PORT,), saddr=n.address)
                                for n in d.neighbors))


FEATURE = Feature(
    name=subsystem.NAME,
    bags=(BagType(KEY, BgpPeers, merge_bgppeers,
                  secret_fields=frozenset({"peer_password"}), redact=_redact),),
    view=view,
    subsystem=subsystem,
    traffic=traffic,
    metrics=stats.metrics,
)
