"""Router advertisements on the dual-stack tiers: radvd, as upstream.

apache/cloudstack cs/CsVpcGuestNetwork.py add_radvd_conf writes, per tier
with router_guest_ip6, ``interface <dev> { AdvSendAdvert on;
MinRtrAdvInterval 5; MaxRtrAdvInterval 15; prefix <gateway>/<len> {
AdvOnLink on; AdvAutonomous on; }; RDNSS <dns6> { AdvRDNSSLifetime 30; }; }``
and restarts radvd on every change. The same here, with two differences:

* the prefix is always advertised. Upstream adds it only when
  ``router_guest_ip6 is router_guest_ip6_gateway``, an identity test of two
  strings read from JSON that is false whenever they are two objects, which is
  why its redundant routers advertise no prefix and SLAAC fails
  (apache/cloudstack#13121);
* the router's own address on the tier is the first RDNSS, then the tier's
  dns6 servers, as cs/CsGuestNetwork.py get_dns does for IPv4 (the VMs'
  resolver is the router's dnsmasq, which forwards); with the boot parameter
  ``useextdns=true``, only the dns6 servers.

radvd rather than dnsmasq's RA: it is what upstream runs (and what operators
of CloudStack read), it re-reads its file on SIGHUP without touching the
DHCP server's leases, and on a pair it stops with mastership on its own
(master-only daemon) while dnsmasq's RA would be tied to the DHCP server.
"""

from __future__ import annotations

from dataclasses import dataclass

from ... import templates
from ...config import RouterConfig
from ...feature import Text
from ...settings import Settings
from ...topology import Topology
from . import daemon

NAME = "ra"

# cs/CsVpcGuestNetwork.py add_radvd_conf's values.
MIN_INTERVAL = 5
MAX_INTERVAL = 15
RDNSS_LIFETIME = 30


@dataclass(frozen=True)
class Tier:
    ifname: str
    prefix: str  # "fd10:1::/64"
    rdnss: tuple[str, ...]
    # On a pair: the shared link-local address advertisements come from
    # (AdvRASrcAddress), the hosts' default router across failovers (features/vrrp).
    source: str | None = None


@dataclass(frozen=True)
class Desired:
    tiers: tuple[Tier, ...] = ()
    min_interval: int = MIN_INTERVAL
    max_interval: int = MAX_INTERVAL
    rdnss_lifetime: int = RDNSS_LIFETIME


def desired(cfg: RouterConfig, topo: Topology, settings: Settings) -> Desired:
    tiers = []
    external = cfg.cmdline.flag("useextdns")
    for g in topo.guests:
        if g.private_gateway or g.network6 is None:
            continue
        # The VMs' resolver on the tier: the gateway they route through.
        router = g.gateway6 or g.ip6
        servers = list(g.dns6) if external and g.dns6 else [s for s in (router,) if s]
        servers += [s for s in g.dns6 if s not in servers]
        # radvd takes at most three addresses per RDNSS line; RFC 8106 allows more
        # lines, but a VM's resolver uses three.
        tiers.append(Tier(g.ifname, str(g.network6), tuple(servers[:3]), g.router6))
    return Desired(tuple(tiers))


def verify(d: Desired) -> list[str]:
    return []


def render(d: Desired) -> Text:
    if not d.tiers:
        return Text("")
    return Text(templates.render("ra/radvd.conf.j2", d=d))


def apply(d: Desired, rendered: Text, settings: Settings, dry_run: bool = False) -> list[str]:
    from ...system import daemons

    return daemons.sync_rendered(daemon.daemons(settings)[0], rendered, settings, dry_run)
