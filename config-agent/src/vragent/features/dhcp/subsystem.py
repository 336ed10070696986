"""DHCP and DNS for the VMs: one dnsmasq per router.

From the ``dhcpentry`` bags (static leases by MAC, the entry's host name),
the guest networks (tier domain, DNS servers) and the boot parameters
(``dns1``/``dns2``, ``domain``); apache/cloudstack cs/CsDhcp.py does the same
with a restart per change. Here the tier-level configuration (interfaces,
ranges, domains) is the main file, which dnsmasq reads at start; everything
per VM is in two files dnsmasq re-reads on SIGHUP (``dhcp-hostsfile``,
``addn-hosts``), so adding or removing an entry costs one reload, never a
restart, however many entries there are. The exception is an entry with
options of its own (a VM's other NIC, its own DNS servers or routes): it
needs a tag, and dnsmasq 2.90 crashes (SIGSEGV) on the next SIGHUP once a
host tagged from a hosts file holds a lease; those few are in the main file,
and changing one restarts dnsmasq (leases persist). The ranges are
``static``: a MAC without an entry gets no offer. On a pair only the master
runs dnsmasq, answering on the tier gateways keepalived gives it.

IPv6: a dual-stack tier (guestnetwork router_guest_ip6_cidr) gets a static
DHCPv6 range, its DNS servers and domain; an entry's ``ipv6_address`` is
served to the client with its ``ipv6_duid`` as upstream's edithosts.sh wrote it
(``id:<duid>,[<ipv6>],<host>,infinite``; the stored cs/CsDhcp.py writes IPv4
lines only), on the same line as the entry's IPv4 lease when it has one
(``<mac>,id:<duid>,<ipv4>,[<ipv6>],<host>,<lease>``), and the name resolves to
it (AAAA). DNS over IPv6 needs nothing
more: dnsmasq binds every address of the tiers' interfaces. Addresses and
prefixes are advertised by radvd (features/ra), not by dnsmasq.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from ... import templates
from ...config import RouterConfig
from ...feature import Files
from ...settings import Settings
from ...topology import Topology
from . import daemon
from .daemon import CONF, HOSTS, LEASES, NAMES
from .model import DhcpEntry

NAME = "dhcp"

# merge.py processGuestNetwork's default.
DEFAULT_DOMAIN = "cloudnine.internal"
DEFAULT_LEASE = "infinite"
# The tag of every host with options of its own (a VM's other NIC, custom
# DNS servers or routes): the tiers' defaults skip it.
CUSTOM_TAG = "vr-custom"


@dataclass(frozen=True)
class Tier:
    ifname: str
    tag: str
    gateway: str  # DHCP server, default router and DNS server for the tier's VMs
    network: str
    network_address: str
    netmask: str
    domain: str
    dns: tuple[str, ...]
    # A dual-stack tier: its prefix, the DHCPv6 range's tag and DNS servers.
    network6: str = ""
    network6_address: str = ""
    prefixlen6: int = 0
    tag6: str = ""
    dns6: tuple[str, ...] = ()

    @property
    def dns6_option(self) -> str:
        return ",".join(f"[{a}]" for a in self.dns6)


@dataclass(frozen=True)
class Host6:
    """A VM's static DHCPv6 address, by the client's DUID (edithosts.sh)."""

    duid: str
    ip: str
    name: str
    fqdn: str
    lease: str

    def line(self) -> str:
        return f"id:{self.duid},[{self.ip}],{self.name},{self.lease}"


@dataclass(frozen=True)
class Host:
    mac: str
    ip: str
    name: str
    fqdn: str
    lease: str
    tag: str = ""  # set when it has options of its own
    options: tuple[str, ...] = ()  # "option:…,value" for its own tag
    # Its DHCPv6 address and the DUID it is served by, on a dual-stack tier:
    # one host with both (two hosts of one name would each take the other's
    # address from the names file, which dnsmasq reports as duplicates).
    duid: str = ""
    ip6: str = ""

    def line(self) -> str:
        """Its dhcp-host line (without "dhcp-host=")."""
        tags = f"set:{CUSTOM_TAG},set:{self.tag}," if self.tag else ""
        clid = f"id:{self.duid}," if self.duid else ""
        ip6 = f"[{self.ip6}]," if self.ip6 else ""
        return f"{self.mac},{clid}{tags}{self.ip},{ip6}{self.name},{self.lease}"


@dataclass(frozen=True)
class Desired:
    enabled: bool
    router: str = ""
    tiers: tuple[Tier, ...] = ()
    hosts: tuple[Host, ...] = ()  # in the hosts file, re-read on SIGHUP
    custom: tuple[Host, ...] = ()  # with options of their own: in the main file
    hosts6: tuple[Host6, ...] = ()  # IPv6 only: in the hosts file too
    names6: tuple[Host6, ...] = ()  # every IPv6 name (AAAA)
    upstream: tuple[str, ...] = ()
    lease_time: str = DEFAULT_LEASE
    leases: str = ""
    hosts_file: str = ""
    names_file: str = ""
    custom_tag: str = CUSTOM_TAG
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def desired(cfg: RouterConfig, topo: Topology, settings: Settings) -> Desired:
    cmd = cfg.cmdline
    tiers: list[Tier] = []
    for g in topo.guests:
        if g.private_gateway:
            continue
        bag = cfg.guests.get(g.key)
        domain = (bag.domain_name if bag else None) or cmd.get("domain") or DEFAULT_DOMAIN
        servers = [s.strip() for s in ((bag.dns or "") if bag else "").split(",")
                   if s.strip() and ":" not in s]
        # CsGuestNetwork.get_dns: the router first (it forwards), then the
        # tier's own servers; with useextdns=true only those.
        dns = servers if cmd.flag("useextdns") and servers else [g.gateway, *servers]
        v6: dict[str, object] = {}
        if g.network6 is not None:
            router6 = g.gateway6 or g.ip6
            dns6 = list(g.dns6) if cmd.flag("useextdns") and g.dns6 else [router6, *g.dns6]
            v6 = {"network6": str(g.network6),
                  "network6_address": str(g.network6.network_address),
                  "prefixlen6": g.network6.prefixlen, "tag6": f"tier6-{g.ifname}",
                  "dns6": tuple(dict.fromkeys(a for a in dns6 if a))}
        tiers.append(Tier(
            ifname=g.ifname,
            tag=f"tier-{g.ifname}",
            gateway=g.gateway,
            network=str(g.network),
            network_address=str(g.network.network_address),
            netmask=str(g.network.netmask),
            domain=domain.rstrip("."),
            dns=tuple(dict.fromkeys(dns)),
            **v6,  # type: ignore[arg-type]
        ))
    if not tiers:
        return Desired(enabled=False)
    target = topo.alias_guest
    for alias in cfg.aliases if target is not None else ():
        # An alias's subnet is served like a tier, on the NIC that holds it
        # (CsDhcp finds it among the NIC's addresses).
        assert target is not None
        net = ipaddress.IPv4Network(f"{alias.ip_address}/{alias.netmask}", strict=False)
        if any(ipaddress.IPv4Network(t.network).overlaps(net) for t in tiers):
            continue
        first = tiers[0]
        tiers.append(replace(first, ifname=target.ifname,
                             tag=f"alias-{alias.ip_address.replace('.', '-')}",
                             gateway=alias.ip_address, network=str(net),
                             network_address=str(net.network_address),
                             netmask=str(net.netmask),
                             dns=(alias.ip_address, *first.dns[1:]),
                             network6="", network6_address="", prefixlen6=0, tag6="",
                             dns6=()))
    # Forwarding as upstream's resolv-file: the boot parameters' servers, never
    # one of the router's own addresses (a tier's DNS is often the router itself).
    own = {t.gateway for t in tiers} | {g.ip for g in topo.guests}
    upstream = [cmd.get(k) for k in ("internaldns1", "internaldns2", "dns1", "dns2")
                if cmd.get(k) and cmd.get(k) not in own]
    nets = [(t, ipaddress.IPv4Network(t.network)) for t in tiers]
    nets6 = [(t, ipaddress.IPv6Network(t.network6)) for t in tiers if t.network6]
    hosts: list[Host] = []
    hosts6: list[Host6] = []
    warnings: list[str] = []
    names6: list[Host6] = []
    for e in cfg.part(NAME, ()):
        own6 = _host6(e, nets6, warnings) if e.ipv6_address else []
        names6 += own6
        if e.ipv4_address is None:
            hosts6 += own6  # IPv6 only
            continue
        addr = ipaddress.IPv4Address(e.ipv4_address)
        tier = next((t for t, net in nets if addr in net), None)
        if tier is None:
            warnings.append(f"dhcpentry {e.ipv4_address} ({e.host_name}): on no guest tier of "
                            f"this router: no lease until its tier is added")
            hosts6 += own6
            continue
        host = _host(e, tier)
        if own6:
            host = replace(host, duid=own6[0].duid, ip6=own6[0].ip)
        hosts.append(host)
    return Desired(
        enabled=True,
        router=cmd.get("name", "router"),
        tiers=tuple(tiers),
        hosts=tuple(h for h in hosts if not h.tag),
        custom=tuple(h for h in hosts if h.tag),
        hosts6=tuple(hosts6),
        names6=tuple(names6),
        upstream=tuple(dict.fromkeys(upstream)),
        leases=str(LEASES.of(settings)),
        hosts_file=str(HOSTS.of(settings)),
        names_file=str(NAMES.of(settings)),
        warnings=tuple(warnings),
    )


def _host6(e: DhcpEntry, nets6: list[tuple[Tier, ipaddress.IPv6Network]],
           warnings: list[str]) -> list[Host6]:
    assert e.ipv6_address is not None
    addr = ipaddress.IPv6Address(e.ipv6_address)
    tier = next((t for t, net in nets6 if addr in net), None)
    if tier is None:
        warnings.append(f"dhcpentry {e.ipv6_address} ({e.host_name}): on no IPv6 tier of "
                        f"this router: not served until its tier has IPv6")
        return []
    if not e.ipv6_duid:
        # DHCPv6 knows a client by its DUID; CloudStack always sends one with
        # the address (VmDhcpConfig.ipv6Duid, DUID-LL of the NIC's MAC).
        warnings.append(f"dhcpentry {e.ipv6_address} ({e.host_name}): no ipv6_duid: "
                        f"not served over DHCPv6 (SLAAC still gives the VM its address)")
        return []
    lease = str(e.lease_time) if e.lease_time is not None else DEFAULT_LEASE
    short = e.host_name.split(".")[0]
    return [Host6(e.ipv6_duid.lower(), str(addr), short, f"{short}.{tier.domain}", lease)]


def _host(e: DhcpEntry, tier: Tier) -> Host:
    assert e.ipv4_address is not None
    lease = str(e.lease_time) if e.lease_time is not None else DEFAULT_LEASE
    gateway = e.default_gateway or tier.gateway
    dns = tuple(e.dns) or tier.dns
    routes = e.routes
    short = e.host_name.split(".")[0]
    host = Host(mac=e.mac_address, ip=e.ipv4_address, name=short,
                fqdn=f"{short}.{tier.domain}", lease=lease)
    if e.default_entry and gateway == tier.gateway and dns == tier.dns and not routes:
        return host  # the tier's defaults
    if e.default_entry:
        options = [f"option:router,{gateway}", f"option:dns-server,{','.join(dns)}",
                   f"option:domain-name,{tier.domain}"]
    else:
        # A VM's other NIC: no default route, DNS server or domain (CsDhcp.add's
        # per-address tag); an option without a value is not sent at all.
        options = ["option:router", "option:dns-server", "option:domain-name"]
    if routes:
        # A client that takes option 121 ignores option 3 (RFC 3442): the
        # default route must be among the classless ones.
        pairs = [*routes, *([("0.0.0.0/0", gateway)] if e.default_entry else [])]
        options.append("option:classless-static-route,"
                       + ",".join(f"{net},{gw}" for net, gw in pairs))
    return replace(host, tag=f"vm-{e.ipv4_address.replace('.', '-')}", options=tuple(options))


def verify(d: Desired) -> list[str]:
    return list(d.problems)


def render(d: Desired) -> Files:
    if not d.enabled:
        return Files(((CONF.name, ""), (HOSTS.name, ""), (NAMES.name, "")))
    # Never empty while dnsmasq runs: an empty text means "no file", and a
    # file missing at a reload is an error to dnsmasq.
    head = "# generated by vragent: re-read on SIGHUP\n"
    hosts = "".join(f"{h.line()}\n" for h in d.hosts)
    hosts += "".join(f"{h.line()}\n" for h in d.hosts6)
    names = "".join(f"{t.gateway} data-server\n" for t in d.tiers)
    names += "".join(f"{h.ip} {h.fqdn} {h.name}\n" for h in (*d.hosts, *d.custom))
    names += "".join(f"{h.ip} {h.fqdn} {h.name}\n" for h in d.names6)
    return Files((
        (CONF.name, templates.render("dhcp/dnsmasq.conf.j2", d=d)),
        (HOSTS.name, head + hosts),
        (NAMES.name, head + names),
    ))


def apply(d: Desired, rendered: Files, settings: Settings, dry_run: bool = False) -> list[str]:
    from ...system import daemons

    # Leases of removed entries are released by the resident agent once
    # dnsmasq has re-read its hosts (daemon.prune): IPv4 by dhcp_release,
    # DHCPv6 by dhcp_release6 (system/dnsmasq.py), so an address is the next
    # owner's at once.
    return daemons.sync_rendered(daemon.daemons(settings)[0], rendered, settings, dry_run)
