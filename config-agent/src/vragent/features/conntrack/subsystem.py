"""conntrackd: connection state replicated to the peer, so sessions survive a takeover.

FTFW mode over a UDP unicast channel (or multicast) on the sync link, for
flows of both families (upstream's conntrackd.conf.templ and
cs/CsRedundant.py _collect_ignore_ips name IPv4 only; its TCP and UDP
filters pass IPv6 flows too, but not ICMPv6). The file depends only on the
boot parameters; the resident agent starts
conntrackd before keepalived and runs the commit/resync sequence on each
transition.
"""

from __future__ import annotations

from dataclasses import dataclass

from ... import templates
from ...config import RouterConfig
from ...feature import Text
from ...settings import Settings
from ...topology import Topology
from . import daemon
from .daemon import LOCK, SOCKET

NAME = "conntrack"

PORT = 3780
MULTICAST_GROUP = "225.0.0.50"
# Never replicated: the router's own IPv6 loopback and link-local traffic.
# Constant, as the whole file: a tier gaining IPv6 restarts nothing.
IGNORE6 = ("::1", "fe80::/10")


@dataclass(frozen=True)
class Desired:
    enabled: bool
    sync_dev: str = ""
    sync_ip: str = ""
    peer: str | None = None
    group: str = MULTICAST_GROUP
    port: int = PORT
    ignore: tuple[str, ...] = ()
    ignore6: tuple[str, ...] = IGNORE6
    lock_file: str = ""
    socket: str = ""


def desired(cfg: RouterConfig, topo: Topology, settings: Settings) -> Desired:
    sync = topo.sync
    if sync is None:
        # Not a pair, or (CloudStack mode) no tier yet: no VM connections to replicate.
        return Desired(enabled=False)
    ignore = {sync.ip}
    if topo.vrrp is not None:
        ignore.add(topo.vrrp.vip)
    if sync.peer:
        ignore.add(sync.peer)
    ignore.update(ip for ip, _ in cfg.cmdline.interfaces().values())
    return Desired(
        enabled=True,
        sync_dev=sync.ifname,
        sync_ip=sync.ip,
        peer=sync.peer,
        ignore=tuple(sorted(ignore)),
        lock_file=str(LOCK.of(settings)),
        socket=str(SOCKET.of(settings)),
    )


def verify(d: Desired) -> list[str]:
    return []  # every value was checked with the boot parameters (see vrrp.verify)


def render(d: Desired) -> Text:
    if not d.enabled:
        return Text("")
    return Text(templates.render("conntrack/conntrackd.conf.j2", d=d))


def apply(d: Desired, rendered: Text, settings: Settings, dry_run: bool = False) -> list[str]:
    from ...system import daemons

    return daemons.sync_rendered(daemon.daemons(settings)[0], rendered, settings, dry_run)
