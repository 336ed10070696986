"""The control feature: what the management server reaches the router by, on
the link-local control NIC only: CloudStack's ssh port (3922,
VRScripts/VirtualRoutingResource) and, with an ``api_token``, the resident
agent's API (boot parameter ``api_port``)."""

from __future__ import annotations

from typing import Any

from ...feature import Feature, Opening, Traffic

NAME = "control"
SSH_CONTROL_PORT = 3922


def traffic(cfg: Any, settings: Any, d: Any) -> Traffic:
    accept = [Opening("control", "tcp", (SSH_CONTROL_PORT,))]
    port = cfg.api_port(settings.api_port)
    if port is not None:
        accept.append(Opening("control", "tcp", (port,)))
    return Traffic(accept=tuple(accept))


FEATURE = Feature(name=NAME, traffic=traffic)
