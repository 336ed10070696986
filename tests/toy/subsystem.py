"""The toy's four steps: from its ``toyecho`` bag and the guest tiers, busybox
httpd's files (the port, ``httpd.conf`` from ``httpd.conf.j2``, the message)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from vragent.feature import Files
from vragent.settings import Settings

from . import daemon
from .daemon import CONF, INDEX, PORT

if TYPE_CHECKING:
    from vragent.config import RouterConfig
    from vragent.topology import Topology

NAME = daemon.SUBSYSTEM


@dataclass(frozen=True)
class Desired:
    enabled: bool
    port: int = 0
    message: str = ""
    gateways: tuple[str, ...] = ()  # where VMs reach it
    networks: tuple[str, ...] = ()  # who may ask


def desired(cfg: RouterConfig, topo: Topology, settings: Settings) -> Desired:
    bag = cfg.part(NAME)
    tiers = [g for g in topo.guests if not g.private_gateway]
    if bag is None or not tiers:
        return Desired(enabled=False)
    return Desired(
        enabled=True,
        port=bag.port,
        message=bag.message,
        gateways=tuple(sorted({g.gateway for g in tiers})),
        networks=tuple(sorted({str(g.network) for g in tiers})),
    )


def verify(d: Desired) -> list[str]:
    return []


@functools.cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=False,  # noqa: S701 - a daemon's configuration; values are validated
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def render(d: Desired) -> Files:
    if not d.enabled:
        return Files(((PORT.name, ""), (CONF.name, ""), (INDEX, "")))
    conf = _templates().get_template("httpd.conf.j2").render(networks=d.networks, index=INDEX)
    return Files(((PORT.name, f"{d.port}\n"), (CONF.name, conf), (INDEX, f"{d.message}\n")))


def apply(d: Desired, rendered: Files, settings: Settings, dry_run: bool = False) -> list[str]:
    from vragent.system import daemons

    return daemons.sync_rendered(daemon.daemons(settings)[0], rendered, settings, dry_run)
