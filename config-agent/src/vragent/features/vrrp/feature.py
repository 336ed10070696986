"""The vrrp feature: keepalived elects the pair's master on the VRRP link and
moves the shared addresses; with ``sync_bfd`` a BFD session to the peer
detects its death fast (see ha/fast.py)."""

from __future__ import annotations

from typing import Any

from ...feature import Feature, Opening, OwnSource, Traffic
from . import subsystem

VRRP_PROTO = 112
# BFD control packets from the peer (RFC 5881: single hop).
BFD_PORT = 3784


def traffic(cfg: Any, settings: Any, d: subsystem.Desired) -> Traffic:
    # The adverts, on the VRRP link only; they keep their own source.
    accept = [Opening("vrrp", VRRP_PROTO, pair=True)]
    if d.enabled and d.bfd is not None:
        accept.append(Opening("sync", "udp", (BFD_PORT,), saddr=d.bfd.peer, pair=True))
    return Traffic(accept=tuple(accept), own_source=(OwnSource("vrrp", VRRP_PROTO),))


FEATURE = Feature(name=subsystem.NAME, subsystem=subsystem, traffic=traffic, has_daemons=True)
