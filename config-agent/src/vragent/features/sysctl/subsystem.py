"""Kernel settings a router needs: forwarding on (IPv4, and IPv6 once it has
IPv6), reverse-path filtering per role."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import RouterConfig
from ...errors import ApplyError
from ...feature import Text
from ...settings import Settings
from ...system import sysctl
from ...topology import Topology

NAME = "sysctl"


@dataclass(frozen=True)
class Desired:
    # Keys are /proc/sys paths: interface names may contain dots.
    values: tuple[tuple[str, str], ...]


def desired(cfg: RouterConfig, topo: Topology, settings: Settings) -> Desired:
    values = {
        "net/ipv4/ip_forward": "1",
        "net/ipv4/conf/all/rp_filter": "0",
        # Removing a subnet's first address must not take the others with it:
        # a source-NAT IP moved within its subnet (old one removed, new one
        # added in the same ips bag) would otherwise vanish with the old one.
        "net/ipv4/conf/all/promote_secondaries": "1",
    }
    off = cfg.cmdline.flag("disable_rp_filter")
    for g in topo.guests:
        # Strict on tiers: a VM can only source addresses routed back to its tier.
        values[f"net/ipv4/conf/{g.ifname}/rp_filter"] = "0" if off else "1"
    for p in topo.public:
        # Loose on public links: with several uplinks and policy routing, replies
        # may legitimately come back on another interface than the main route's.
        values[f"net/ipv4/conf/{p.ifname}/rp_filter"] = "0" if off else "2"
    v6_links = [g.ifname for g in topo.guests if g.network6 is not None]
    if topo.public6 is not None:
        v6_links.append(topo.public6.ifname)
    if v6_links:
        # IPv6 only once a tier or the public side has it (a container's
        # /proc/sys is read-only: a router without IPv6 asks for nothing new).
        # Upstream (cs/CsVpcGuestNetwork.py enable_ipv6): forwarding on,
        # duplicate detection off on the router's links. Router advertisements
        # are never accepted: the default route is the one CloudStack sends
        # (router_ip6_gateway), and a VM's RA on a tier must not move it.
        values["net/ipv6/conf/all/forwarding"] = "1"
        for dev in v6_links:
            values[f"net/ipv6/conf/{dev}/disable_ipv6"] = "0"
            values[f"net/ipv6/conf/{dev}/accept_ra"] = "0"
            values[f"net/ipv6/conf/{dev}/accept_dad"] = "0"
    if topo.vrrp is not None and topo.vrrp.borrowed_src:
        # CloudStack mode: both routers' public NICs share one MAC, and the
        # backup's must stay silent; IPv6 would announce it (DAD, MLD, RS).
        dev = topo.vrrp.ifname
        if topo.public6 is not None and topo.public6.ifname == dev:
            # Unless the VPC's public IPv6 is there (keepalived's, the master's
            # only, see vrrp): IPv6 on, but no link-local address of the shared
            # MAC (addr_gen_mode 1, set before IPv6 comes on: sorted keys), so
            # the master's own IPv6 leaves from router_ip6, and netfilter's
            # public guard drops what the backup would send.
            values[f"net/ipv6/conf/{dev}/addr_gen_mode"] = "1"
        else:
            values[f"net/ipv6/conf/{dev}/disable_ipv6"] = "1"
    return Desired(tuple(sorted(values.items())))


def verify(d: Desired) -> list[str]:
    return []


def render(d: Desired) -> Text:
    return Text("".join(f"{k} = {v}\n" for k, v in d.values))


def apply(d: Desired, rendered: Text, settings: Settings, dry_run: bool = False) -> list[str]:
    changes = []
    for key, value in d.values:
        current = sysctl.read(key)
        if current is None:
            continue  # interface went away between resolve and apply
        if current != value:
            changes.append(f"sysctl: {key} {current} -> {value}")
            if not dry_run:
                try:
                    sysctl.write(key, value)
                except OSError as exc:
                    # A container's /proc/sys is read-only: its sysctls are set
                    # when it is created (compose "sysctls"), and only checked here.
                    raise ApplyError(
                        f"sysctl {key.replace('/', '.')}={value}: cannot be set here "
                        f"({exc.strerror}); it is {current}. In a container, set it "
                        f"with the container's sysctls") from None
    return changes
