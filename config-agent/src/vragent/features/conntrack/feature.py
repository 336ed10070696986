"""The conntrack feature: conntrackd replicates connection state to the peer
over the sync link (its daemon, pair steps and fitness are in ``daemon``)."""

from __future__ import annotations

from typing import Any

from ...feature import Feature, Opening, Traffic
from . import subsystem


def traffic(cfg: Any, settings: Any, d: subsystem.Desired) -> Traffic:
    # The state sync: on its link only, before any firewall.
    return Traffic(accept=(Opening("sync", "udp", (d.port,), pair=True),)) if d.enabled \
        else Traffic()


FEATURE = Feature(name=subsystem.NAME, subsystem=subsystem, traffic=traffic)
