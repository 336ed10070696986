"""Netfilter: NAT, ACLs, firewall and the router's own rules, as one nft table.

desired -> verify -> render -> apply:

* ``desired`` picks what the ruleset must express from the configuration;
* ``verify`` lists what cannot be realised (a forward to an address the router
  does not own, an ACL for a tier that does not exist);
* ``render`` builds the ruleset (pure; the text is golden-tested);
* ``apply`` loads it with ``nft -f`` as one transaction, or nothing at all when
  the live table already matches.

Filtering uses several base chains on the forward hook at increasing priority.
An ``accept`` ends one base chain and the packet goes on to the next, while
``drop`` is final, so a packet between two tiers must pass the source tier's
egress ACL *and* the destination tier's ingress ACL, and each ACL can use
plain accept/drop verdicts, which keeps long chains splittable.

Long chains are cut into chunks at content-defined boundaries, each chunk its
own chain named after its content. Changing one rule among 10,000 then
replaces one ~64-rule chunk and the short chain that jumps to the chunks, not
the whole table.

What features count (``Traffic.count``: usage accounting) is counted in named
counter objects, by rules in base chains that come after every filter (only
what the router let through is counted). A change replaces chains, never the
objects, so their values carry on; a reload of the whole table (a base chain
or helper changed, or the table is not the one last loaded) declares them
again with the values read just before, under ``nft.counters_locked`` so a
reset cannot fall in between.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast

from ... import family
from ...config import RouterConfig
from ...family import V6
from ...feature import Between, Count, Opening, Traffic
from ...models.common import split_cidrs
from ...settings import Settings
from ...templates import render as render_template
from ...topology import Topology
from .model_acl import AclRule, NetworkAcl
from .model_firewall import FirewallRule
from .model_forward import ForwardRule, StaticNatRule
from .model_ipv6firewall import Ipv6FirewallRule

T = TypeVar("T")

NAME = "netfilter"

FTP_PORT = 21
FTP_HELPER = "ftp"

CHUNK_MIN = 96  # shorter chains stay whole
CHUNK_MASK = 0x3F  # a boundary after ~1 rule in 64
CHUNK_MAX = 256


@dataclass(frozen=True)
class Chain:
    name: str
    rules: tuple[str, ...]
    hook: str = ""

    def digest(self) -> str:
        # Computed once per chain (frozen; unchanged chains are reused across renders).
        cached: str | None = self.__dict__.get("_digest")
        if cached is None:
            h = hashlib.sha256(self.hook.encode())
            for rule in self.rules:
                h.update(b"\n")
                h.update(rule.encode())
            cached = self.__dict__["_digest"] = h.hexdigest()[:16]
        return cached


@dataclass(frozen=True)
class Ruleset:
    table: str
    chains: tuple[Chain, ...]  # leaf chains first: every jump target precedes its caller
    helpers: tuple[str, ...] = ()  # conntrack helpers (ct helper objects) the rules use
    counters: tuple[str, ...] = ()  # named counter objects (Traffic.count), sorted

    def text(self, carried: dict[str, tuple[int, int]] | None = None) -> str:
        """The whole table. ``carried``: the counters' values to start from
        (packets, bytes), read from the table this one replaces."""
        values = carried or {}
        counters = [(name, values.get(name)) for name in self.counters]
        return render_template("netfilter/nftables.conf.j2", table=self.table,
                               chains=self.chains, helpers=self.helpers, counters=counters)

    @property
    def rule_count(self) -> int:
        return sum(len(c.rules) for c in self.chains)


@dataclass(frozen=True)
class Desired:
    table: str
    topo: Topology
    acls: dict[str, NetworkAcl]  # by interface name
    firewall: tuple[FirewallRule, ...]
    forwards: tuple[ForwardRule, ...]
    staticnat: tuple[StaticNatRule, ...]
    problems: tuple[str, ...] = field(default=())
    # What every feature needs the router to let through (``with_traffic``).
    traffic: Traffic = field(default_factory=Traffic)
    # ipv6firewallrules: the rules, and every IPv6 prefix they were sent for
    # with its default egress policy.
    ipv6_firewall: tuple[Ipv6FirewallRule, ...] = ()
    ipv6_networks: dict[str, bool] = field(default_factory=dict)
    # Routed mode (CloudStack 4.20, boot parameter is_routed, the whole
    # router's): the guests' addresses are routed as they are, never
    # source-NATed, and what comes in to them passes the routing firewall
    # (isolated) or the tier's ACL (VPC), which also judges what goes out.
    routed: bool = False


# -- desired --------------------------------------------------------------


def desired(cfg: RouterConfig, topo: Topology, settings: Settings) -> Desired:
    problems: list[str] = []
    owned = {a.public_ip for p in topo.public for a in p.addresses}
    rules = cfg.part(NAME)

    acls: dict[str, NetworkAcl] = {}
    for key, acl in rules.acls.items():
        guest = topo.guest_by_key(key)
        if guest is None:
            problems.append(f"networkacl.{key}: no guest tier or private gateway on {key}")
        else:
            acls[guest.ifname] = acl

    def public_ip_known(kind: str, ip: str) -> bool:
        if ip not in owned:
            problems.append(f"{kind}: public IP {ip} is not configured on this router")
            return False
        return True

    forwards = tuple(
        f for f in rules.forwards if public_ip_known("forwardrules", f.source_ip_address)
    )
    staticnat = tuple(
        s for s in rules.staticnat if public_ip_known("staticnatrules", s.source_ip_address)
    )
    # Routed-ness is the whole router's, from one boot parameter, never a
    # tier's: the management server appends " is_routed=true" for a routed
    # VPC (VpcVirtualNetworkApplianceManagerImpl.finalizeVirtualMachineProfile:
    # "if (routedIpv4Manager.isRoutedVpc(vpc))", the VPC offering's routing
    # mode) and for an isolated network whose offering's network mode is
    # ROUTED (VirtualNetworkApplianceManagerImpl.createGuestBootLoadArgs); no
    # guestnetwork or ips field says it. The VR asks config.is_routed()
    # everywhere (cs/CsAddress.py fw_router_routing / fw_vpcrouter_routing, no
    # VPC source NAT "and not self.config.is_routed()"; configure.py CsAcl).
    routed = cfg.cmdline.flag("is_routed")
    for fw in rules.firewall:
        if fw.is_ingress and fw.src_ip is None and not fw.revoked and not routed:
            # Only a routed network's routing firewall has ingress rules that
            # guard no public IP (configure.py CsAcl.add_routing_rules).
            problems.append(f"firewallrules.{fw.id}: an Ingress rule needs src_ip (the public "
                            "IP it guards) unless the router is routed (is_routed)")
    networks = dict(rules.ipv6_networks)
    for r6 in rules.ipv6_firewall:
        networks.setdefault(r6.guest_ip6_cidr, r6.default_egress_policy)
    return Desired(
        table=settings.nft_table,
        topo=topo,
        acls=acls,
        firewall=tuple(rules.firewall),
        forwards=forwards,
        staticnat=staticnat,
        problems=tuple(problems),
        ipv6_firewall=tuple(rules.ipv6_firewall),
        ipv6_networks=networks,
        routed=routed,
    )


def with_traffic(d: Desired, traffic: Traffic) -> Desired:
    """The second pass of ``reconcile.plan``: every feature's declared traffic,
    whatever the order of the features."""
    return replace(d, traffic=traffic)


def verify(d: Desired) -> list[str]:
    return list(d.problems)


# -- render (pure) ----------------------------------------------------------


def _q(ifname: str) -> str:
    return json.dumps(ifname)  # interface names are validated; quoting keeps nft's parser happy


def _set(items: list[str]) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _ifset(names: list[str]) -> str:
    return _set([_q(n) for n in names])


def _match(address: str, direction: str) -> str:
    """``ip daddr 10.0.0.1``, ``ip6 saddr fd00::1``: the address's family decides."""
    return f"{family.of(address).nft} {direction} {address}"


def _nat(kind: str, address: str, port: int | None = None) -> str:
    """``snat ip to 10.0.0.1``, ``dnat ip to 10.0.0.5:22``, ``dnat ip6 to [fd00::5]:22``."""
    fam = family.of(address)
    to = address if port is None else (f"[{address}]:{port}" if fam.version == 6
                                       else f"{address}:{port}")
    return f"{kind} {fam.nft} to {to}"


def _ports(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def _l4(proto: str, ports: tuple[int, int] | None, icmp: tuple[int | None, int | None],
        dport: str = "dport") -> str:
    if proto in ("tcp", "udp"):
        if ports is None:
            return f"meta l4proto {proto}"
        return f"{proto} {dport} {_ports(*ports)}"
    if proto == "icmp":
        icmp_type, icmp_code = icmp
        if icmp_type is None or icmp_type < 0:
            return "meta l4proto icmp"
        match = f"icmp type {icmp_type}"
        if icmp_code is not None and icmp_code >= 0:
            match += f" icmp code {icmp_code}"
        return match
    if proto:
        return f"meta l4proto {proto}"
    return ""


def _join(*parts: str) -> str:
    # filter() rather than a generator: this runs for every rule of a render.
    return " ".join(filter(None, parts))


def _addr_matches(cidrs: str | list[str] | None, direction: str) -> list[str] | None:
    """Address matches for a CIDR list, one per family present; [""] means any.

    The management server writes "any" as "0.0.0.0/0,::/0"
    (SetNetworkACLCommand: NetUtils.ALL_IP4_CIDRS, ALL_IP6_CIDRS). The table
    is inet, so IPv6 entries get their own match rather than being refused or
    dropped (configure.py CsAcl.AclDevice sends them to ip6tables/nft).
    None means the list names no address at all.
    """
    v4, v6 = split_cidrs(cidrs)
    if "0.0.0.0/0" in v4 and (not v6 or "::/0" in v6):
        return [""]
    matches = []
    if "0.0.0.0/0" in v4:
        matches.append("meta nfproto ipv4")
    elif v4:
        matches.append(f"ip {direction} {_set(v4)}")
    if "::/0" in v6:
        matches.append("meta nfproto ipv6")
    elif v6:
        matches.append(f"ip6 {direction} {_set(v6)}")
    return matches or None


class _Recent:
    """What the last render produced, by key: reused by the next one.

    Rendering is pure and an ACL is re-sent whole for every change, so the
    resident agent renders each distinct item (and each unchanged model: they
    are frozen, and config.Memo keeps the unchanged ones) once. Only what the
    render in progress used is kept afterwards, so nothing accumulates.
    """

    def __init__(self) -> None:
        self.now: dict[Any, Any] = {}
        self.before: dict[Any, Any] = {}

    def start(self) -> None:
        self.before, self.now = self.now, {}

    def finish(self) -> None:
        self.before = {}

    def get(self, key: Any) -> Any:
        value = self.now.get(key)
        if value is None:
            value = self.before.pop(key, None)
            if value is not None:
                self.now[key] = value
        return value


_RECENT = _Recent()
_RENDERING = threading.Lock()


def acl_rules(rule: AclRule, ingress: bool) -> list[str]:
    """One ACL item (configure.py CsAcl.AclDevice.AclRule): ingress rules match
    who may reach the tier, egress rules where it may go; first match wins."""
    cidr = rule.cidr
    key = (tuple(cidr) if isinstance(cidr, list) else cidr, rule.type, rule.allowed,
           rule.first_port, rule.last_port, rule.icmp_type, rule.icmp_code, rule.protocol,
           ingress)
    # _RECENT.get, inlined: this runs for each of 10,000 items.
    now = _RECENT.now
    lines: list[str] | None = now.get(key)
    if lines is None:
        lines = _RECENT.before.pop(key, None)
        if lines is None:
            lines = _acl_rules(rule, ingress)
        now[key] = lines
    return lines


def _acl_rules(rule: AclRule, ingress: bool) -> list[str]:
    # Ingress rules are about who may reach the tier, egress about where it may go.
    addrs = _addr_matches(rule.cidr, "saddr" if ingress else "daddr") or []
    verdict = "accept" if rule.allowed else "drop"
    icmp = (rule.icmp_type, rule.icmp_code)
    if rule.proto != "icmp":
        # _join(addr, l4, verdict) for each family, the common end built once.
        tail = _join(_l4(rule.proto, rule.ports, icmp), verdict)
        return [f"{addr} {tail}" if addr else tail for addr in addrs]
    # ICMP is a protocol of each family: an IPv6 part of the list is ICMPv6
    # (configure.py CsAcl.AclDevice.__process_ip6: "icmpv6 type <n>", the same
    # type number). A list without IPv6 says nothing of ICMPv6 (upstream
    # leaves such an item out of the IPv6 ACL), "0.0.0.0/0,::/0" means both.
    cidr = rule.cidr if isinstance(rule.cidr, str) else ",".join(rule.cidr)
    out = []
    for addr in addrs:
        v6 = addr.startswith("ip6 ") or addr == "meta nfproto ipv6"
        if addr == "":
            out.append(_join(_l4("icmp", None, icmp), verdict))
            if ":" in cidr:
                out.append(_join(_icmp6(icmp), verdict))
        else:
            out.append(_join(addr, _icmp6(icmp) if v6 else _l4("icmp", None, icmp), verdict))
    return out


def _icmp6(icmp: tuple[int | None, int | None]) -> str:
    """``_l4``'s ICMP match for ICMPv6."""
    icmp_type, icmp_code = icmp
    if icmp_type is None or icmp_type < 0:
        return "meta l4proto ipv6-icmp"
    match = f"icmpv6 type {icmp_type}"
    if icmp_code is not None and icmp_code >= 0:
        match += f" icmpv6 code {icmp_code}"
    return match


def chunked(name: str, rules: list[str], tail: list[str]) -> list[Chain]:
    """Chain ``name`` holding ``rules`` then ``tail``; long ones split into chunks.

    Boundaries depend only on rule text, so inserting or changing a rule moves
    at most the chunk it lands in. Chunk chains end in no verdict and fall back
    to the parent, which goes on to the next chunk.
    """
    if len(rules) <= CHUNK_MIN:
        return [Chain(name, tuple(rules + tail))]
    chunks: list[list[str]] = [[]]
    for rule in rules:
        chunks[-1].append(rule)
        if (zlib.crc32(rule.encode()) & CHUNK_MASK) == 0 or len(chunks[-1]) >= CHUNK_MAX:
            chunks.append([])
    out: dict[str, Chain] = {}
    jumps = []
    for chunk in (c for c in chunks if c):
        digest = hashlib.sha256("\n".join(chunk).encode()).hexdigest()[:10]
        sub = f"{name}_{digest}"
        out[sub] = Chain(sub, tuple(chunk))
        jumps.append(f"jump {sub}")
    return [*out.values(), Chain(name, tuple(jumps + tail))]


def _fw_rules(rule: FirewallRule, verdict: str) -> list[str]:
    """Rules of one public-IP firewall item (configure.py CsAcl.AclIP.add_rule):
    one per source family; an item with no source CIDR matches nothing."""
    addrs = _addr_matches(rule.sources, "saddr")
    if addrs is None:
        return []
    proto = rule.protocol if rule.protocol != "all" else ""
    l4 = _l4(proto, None, (rule.icmp_type, rule.icmp_code))
    ports = rule.ports
    if ports is not None:
        # On a forwarded packet the port was already rewritten by DNAT: the public
        # port the rule is about is the connection's original destination port.
        l4 = f"meta l4proto {rule.protocol} ct original proto-dst {_ports(*ports)}"
    return [_join(addr, l4, verdict) for addr in addrs]


def _egress_rules(rule: FirewallRule, verdict: str) -> list[str]:
    """One egress firewall item (configure.py CsAcl.AclIP.add_rule, egress):
    sources and destinations (0.0.0.0/0 meaning any) and the protocol."""
    src = _addr_matches(rule.sources, "saddr") or [""]
    dst = _addr_matches([c for c in rule.destinations if c != "0.0.0.0/0"], "daddr") or [""]
    proto = rule.protocol if rule.protocol != "all" else ""
    l4 = _l4(proto, rule.ports, (rule.icmp_type, rule.icmp_code))
    return [_join(a, b, l4, verdict) for a in src for b in dst
            if not (a.startswith("ip6") and b.startswith("ip ")
                    or a.startswith("ip ") and b.startswith("ip6"))]


# Neighbour discovery: never filtered, whatever a firewall says (without it
# no IPv6 address on a link answers).
ND_TYPES = ("nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit",
            "nd-neighbor-advert", "nd-redirect")
ND_ACCEPT = f"icmpv6 type {{ {', '.join(ND_TYPES)} }} accept"


def _net6(cidr: str) -> str:
    """A validated IPv6 CIDR as nft reads it: host bits cleared, canonical text."""
    return str(ipaddress.IPv6Network(cidr, strict=False))


def _v6_id(cidr: str) -> str:
    """A chain-name part for an IPv6 prefix ("fd00:10:1::/64" -> "fd00_10_1__64")."""
    return _net6(cidr).replace(":", "_").replace("/", "_")


def _ipv6_fw_rule(rule: Ipv6FirewallRule, verdict: str) -> str:
    """One ipv6firewallrules item (configure.py CsIpv6Firewall.process:
    "ip6 saddr <sources> ip6 daddr <destinations> <protocol> [dport ...]")."""
    src = [_net6(c) for c in rule.source_cidr_list or []]
    dst = [_net6(c) for c in rule.dest_cidr_list or []]
    proto = rule.protocol if rule.protocol != "all" else ""
    if proto == "icmp":
        l4 = _icmp6((rule.icmp_type, rule.icmp_code))
    else:
        l4 = _l4(proto, rule.ports, (None, None))
    return _join(f"ip6 saddr {_set(src)}" if src and src != ["::/0"] else "",
                 f"ip6 daddr {_set(dst)}" if dst and dst != ["::/0"] else "",
                 l4, verdict)


def _ipv6_firewall(d: Desired) -> tuple[list[Chain], list[str], list[str]]:
    """Per IPv6 prefix of the ipv6firewallrules bag: its ingress chain (what
    may reach the prefix: the rules, then drop) and its egress chain (what may
    leave it: the exceptions to the default policy, then the policy), as
    configure.py CsIpv6Firewall builds fw_chain_ingress / fw_chain_egress.
    Returns the chains and the jumps for forward_egress and forward_ingress,
    which accept established and related traffic before any of them (upstream
    #12962, #10970)."""
    chains: list[Chain] = []
    jumps_out: list[str] = []
    jumps_in: list[str] = []
    by_net: dict[str, list[Ipv6FirewallRule]] = {_net6(n): [] for n in d.ipv6_networks}
    policy = {_net6(n): p for n, p in d.ipv6_networks.items()}
    for r in d.ipv6_firewall:
        by_net.setdefault(_net6(r.guest_ip6_cidr), []).append(r)
    for net, rules in sorted(by_net.items()):
        allow = policy.get(net, any(r.default_egress_policy for r in rules))
        ingress = [_ipv6_fw_rule(r, "accept") for r in rules if r.is_ingress]
        egress = [_ipv6_fw_rule(r, "drop" if allow else "accept")
                  for r in rules if not r.is_ingress and not r.is_default_egress]
        chains += chunked(f"fw6_in_{_v6_id(net)}", [ND_ACCEPT, *ingress], ["counter drop"])
        chains += chunked(f"fw6_out_{_v6_id(net)}", egress,
                          ["accept" if allow else "counter drop"])
        jumps_out.append(f"ip6 saddr {net} jump fw6_out_{_v6_id(net)}")
        jumps_in.append(f"ip6 daddr {net} jump fw6_in_{_v6_id(net)}")
    return chains, jumps_out, jumps_in


def _routed_rules(rule: FirewallRule) -> list[str]:
    """One ingress rule of a routed network's routing firewall (configure.py
    CsAcl.add_routing_rules: "ip saddr <sources> ip daddr <destinations>
    <protocol> [dport ...] accept"), one per family the lists carry."""
    src = _addr_matches(rule.sources, "saddr") or [""]
    dst = _addr_matches(rule.destinations, "daddr") or [""]
    proto = rule.protocol if rule.protocol != "all" else ""
    out = []
    for a in src:
        for b in dst:
            fams = {x.split()[0] for x in (a, b) if x and not x.startswith("meta")}
            fams |= {"ip6" if x.endswith("ipv6") else "ip" for x in (a, b)
                     if x.startswith("meta")}
            if len(fams) > 1:
                continue  # an IPv4 source with an IPv6 destination matches nothing
            v6 = fams == {"ip6"}
            icmp = (rule.icmp_type, rule.icmp_code)
            if proto == "icmp":
                # "Any address" of lists that name no IPv6 network is IPv4's
                # ICMP only (an IPv4 routing firewall rule), as in the ACLs.
                named_v6 = any(":" in c for c in rule.sources + rule.destinations)
                l4s = [_icmp6(icmp)] if v6 else (
                    [_l4("icmp", None, icmp)] if fams or not named_v6
                    else [_l4("icmp", None, icmp), _icmp6(icmp)])
            else:
                l4s = [_l4(proto, rule.ports, icmp)]
            out += [_join(a, b, l4, "accept") for l4 in l4s]
    return out


def _fw_chain_name(ip: str) -> str:
    return "fw_in_" + ip.replace(".", "_")


def _once(obj: object, what: str, make: Callable[[], T]) -> T:
    """``make()``, or what it gave for this very object in the last render
    (the entry keeps the object alive, so its id is not reused meanwhile)."""
    key = (id(obj), what)
    hit = _RECENT.get(key)
    if hit is not None and hit[0] is obj:
        return cast(T, hit[1])
    value = make()
    _RECENT.now[key] = (obj, value)
    return value


def _forward_dnat(rule: ForwardRule) -> list[str]:
    return _once(rule, "dnat", lambda: _render_dnat(rule))


def _ftp_helper(f: ForwardRule) -> list[str]:
    return _once(f, "ftp", lambda: _render_ftp_helper(f))


def _render_ftp_helper(f: ForwardRule) -> list[str]:
    if f.protocol == "tcp" and f.private_ports[0] <= FTP_PORT <= f.private_ports[1]:
        return [f"{_match(f.source_ip_address, 'daddr')} tcp dport "
                f"{f.public_ports[0] + FTP_PORT - f.private_ports[0]} "
                f"ct helper set {_q(FTP_HELPER)}"]
    return []


def _acl_chains(acl: NetworkAcl, name: str, ingress: bool) -> list[Chain]:
    items = acl.ingress_rules if ingress else acl.egress_rules

    def make() -> list[Chain]:
        return chunked(name, [x for r in items for x in acl_rules(r, ingress)], ["counter drop"])

    return _once(acl, name, make)


def _render_dnat(rule: ForwardRule) -> list[str]:
    proto = rule.protocol.lower()
    pub, priv = rule.public_ports, rule.private_ports
    # configure.py forward_vpc: "-s <source_cidr_list>", so one public port can
    # lead to different VMs for different sources.
    src = f"{family.of(rule.sources[0]).nft} saddr {_set(rule.sources)} " if rule.sources else ""
    head = f"{src}{_match(rule.source_ip_address, 'daddr')} {proto} dport"
    vm = rule.destination_ip_address
    if pub == priv:
        return [f"{head} {_ports(*pub)} {_nat('dnat', vm)}"]
    return [
        f"{head} {pub[0] + i} {_nat('dnat', vm, priv[0] + i)}"
        for i in range(pub[1] - pub[0] + 1)
    ]


# Links by the role they play, in the order openings are rendered.
ROLES = ("vrrp", "sync", "control", "guests", "public", "any")


def _role(topo: Topology, role: str) -> list[str]:
    if role == "vrrp":
        return [topo.vrrp.ifname] if topo.vrrp is not None else []
    if role == "sync":
        return [topo.sync.ifname] if topo.sync is not None else []
    if role == "control":
        # Management reaches the router over its link-local control NIC only.
        return sorted(dev for dev, cidr in topo.control.items() if cidr.startswith("169.254."))
    if role == "guests":
        return topo.guest_names
    if role == "public":
        return topo.public_names
    raise ValueError(f"unknown role {role!r}")


def _proto(proto: str | int, ports: tuple[int, ...] = ()) -> str:
    if isinstance(proto, int):
        return f"meta l4proto {proto}"
    if not ports:
        return f"meta l4proto {proto}"
    return f"{proto} dport {_set([str(p) for p in ports])}"


def _between(b: Between) -> list[str]:
    """The matches of traffic between networks: one per family both sides
    have (a side left empty is any address of the other's family)."""
    l4 = _proto(b.proto, b.ports) if b.proto else ""
    if not b.saddr and not b.daddr:
        # A protocol between any networks; nothing at all is never a rule
        # (it would let everything through).
        return [l4] if l4 else []
    found = []
    for fam in family.FAMILIES:
        src = [c for c in b.saddr if family.of(c) is fam]
        dst = [c for c in b.daddr if family.of(c) is fam]
        if (b.saddr and not src) or (b.daddr and not dst):
            continue
        found.append(_join(f"{fam.nft} saddr {_set(src)}" if src else "",
                           f"{fam.nft} daddr {_set(dst)}" if dst else "", l4))
    return found


def _openings(topo: Topology, openings: list[Opening]) -> list[str]:
    """One accept rule per opening whose links exist, by role (``ROLES``)."""
    rules = []
    for o in sorted(openings, key=lambda o: ROLES.index(o.role)):
        devs = [] if o.role == "any" else _role(topo, o.role)
        if devs or o.role == "any":
            sources = o.saddr.split(",") if o.saddr else []
            rules.append(_join(
                f"iifname {_ifset(devs)}" if devs else "",
                f"{family.of(sources[0]).nft} saddr {_set(sources)}" if sources else "",
                _match(o.daddr, "daddr") if o.daddr else "",
                "meta ipsec exists" if o.ipsec else "",
                f"{_proto(o.proto, o.ports)} accept"))
    return rules


# Counting comes after every filter on its hook (the forward chains end at
# priority 30, input filters at 0): only what was let through is counted.
COUNT_PRIORITY = 100
# A VPN tunnel's side of a packet: decrypted by an IPsec policy of the kernel,
# or through a point-to-point device (PPP, or the TUN device, ARPHRD_NONE,
# of a userspace IPsec data path such as strongSwan's kernel-libipsec).
_TUNNEL = {"": ("",),
           "in": ("meta secpath exists", "meta iiftype { ppp, 65534 }"),
           "out": ("rt ipsec exists", "meta oiftype { ppp, 65534 }")}


def _counts(topo: Topology, counts: tuple[Count, ...]) -> tuple[list[str], dict[str, list[str]]]:
    """The counter objects and, by path, the rules that count into them. A
    counter per link of its role exists as long as the link does, even while
    its rules match nothing (no tier yet): its value never restarts."""
    names: set[str] = set()
    rules: dict[str, list[str]] = {}
    for c in counts:
        for link in (_role(topo, c.per) if c.per else [""]):
            name = c.counter(link)
            names.add(name)
            sides = []
            for key, side in (("iifname", c.iif), ("oifname", c.oif)):
                if side == "link" and not c.per:
                    raise ValueError(f"count {c.name}: 'link' needs per")
                devs = [link] if side == "link" else _role(topo, side) if side else None
                if devs is not None:
                    sides.append(f"{key} {_ifset(devs)}" if devs else "")
                    if not devs:
                        break
            else:
                proto = f"meta l4proto {c.proto}" if c.proto else ""
                rules.setdefault(c.path, []).extend(
                    _join(*sides, proto, t, f"counter name {name}") for t in _TUNNEL[c.tunnel])
    return sorted(names), rules


def render(d: Desired) -> Ruleset:
    with _RENDERING:  # _RECENT is one per process
        _RECENT.start()
        try:
            return _render(d)
        finally:
            _RECENT.finish()


def _render(d: Desired) -> Ruleset:
    topo = d.topo
    guests = topo.guest_names
    publics = topo.public_names
    chains: list[Chain] = []
    base: list[Chain] = []

    # Marks route replies of connections that came in on a public interface
    # back out of that interface (policy routing, see routes.py).
    mangle = [
        f"iifname {_q(p.ifname)} ct state new ct mark set {p.table}" for p in topo.public
    ]
    if mangle:
        mangle.append("ct mark != 0 meta mark set ct mark")
    # FTP through a port forward: the control connection gets the ftp helper,
    # so the data connection it announces is expected and translated
    # (configure.py forward_ftp_helper: "-t raw ... --dport <port> -j CT --helper ftp").
    # nft assigns helpers once conntrack has seen the packet, and before DNAT
    # the destination is still the public one: the mangle priority is both.
    ftp = [line for f in d.forwards for line in _ftp_helper(f)]
    helpers = (FTP_HELPER,) if ftp else ()
    mangle += ftp
    base.append(Chain("mangle_prerouting", tuple(mangle),
                      "type filter hook prerouting priority mangle; policy accept;"))

    # -- NAT ------------------------------------------------------------
    dnat = [f"{_match(s.source_ip_address, 'daddr')} {_nat('dnat', s.destination_ip_address)}"
            for s in d.staticnat]
    for rule in d.forwards:
        dnat.extend(_forward_dnat(rule))
    chains += chunked("port_forward", dnat, [])
    base.append(Chain("nat_prerouting", ("jump port_forward",),
                      "type nat hook prerouting priority dstnat; policy accept;"))

    # What a feature sends from this router's own address keeps it (the
    # pair's adverts: the peer breaks priority ties on the source, and NAT of
    # a portless protocol to the shared address clashes with the tuple the
    # previous master left behind, EPERM on send).
    snat = [f"oifname {_ifset(devs)} {_proto(o.proto)} accept"
            for o in d.traffic.own_source for devs in [_role(topo, o.role)] if devs]
    # What a feature keeps out of source NAT (a tunnel's traffic).
    snat += [f"{match} accept" for b in d.traffic.nat_exempt for match in _between(b)]
    for g in topo.guests:
        if guests:
            # Hairpin: a VM reaching a public IP of its own VPC gets its replies
            # back through the router rather than straight from its neighbour.
            snat.append(f"ct status dnat iifname {_ifset(guests)} oifname {_q(g.ifname)} "
                        f"{_nat('snat', g.ip)}")
    for p in topo.public:
        own = {a.public_ip for a in p.addresses}
        for s in d.staticnat:
            if s.source_ip_address in own:
                snat.append(f"oifname {_q(p.ifname)} ip saddr {s.destination_ip_address} "
                            f"{_nat('snat', s.source_ip_address)}")
        if p.source_nat and not d.routed:
            # Every guest network leaves by the source-NAT IP (CsAddress fw_router /
            # fw_vpcrouter: "-A POSTROUTING -o <public> -j SNAT --to-source <ip>").
            snat.append(f"oifname {_q(p.ifname)} ip saddr != {_set(sorted(own))} "
                        f"{_nat('snat', p.snat_ip)}")
    base.append(Chain("nat_postrouting", tuple(snat),
                      "type nat hook postrouting priority srcnat; policy accept;"))

    # -- firewall on public IPs -------------------------------------------
    # Isolated networks: every public IP has a firewall chain ending in drop
    # (CsAddress.fw_router: FIREWALL_<ip> in mangle PREROUTING, "-j DROP"), so
    # nothing new reaches it, ICMP included, until an ingress rule allows it.
    # A VPC's public IPs get one only when firewall rules name them.
    ingress_fw: dict[str, list[str]] = {}
    for fw in d.firewall:
        if fw.is_ingress and fw.src_ip:
            ingress_fw.setdefault(fw.src_ip, []).extend(_fw_rules(fw, "accept"))
    if topo.router_type == "router":
        for p in topo.public:
            for a in p.addresses:
                ingress_fw.setdefault(a.public_ip, [])
    for ip, rules in sorted(ingress_fw.items()):
        chains += chunked(_fw_chain_name(ip), rules, ["counter drop"])
    # Egress (isolated networks): user rules are the exceptions to the default
    # policy, DROP when the default allows and ACCEPT when it denies; the
    # default itself comes last, carried by the "all" rule without sources
    # (configure.py CsAcl.AclIP.add_rule). With no default rule, nothing passes
    # that no rule allows (the FORWARD policy); with no egress rule, all does.
    egress = [r for r in d.firewall if not r.is_ingress]
    default = next((r for r in egress if r.is_default_egress), None)
    exceptions = [r for r in egress if not r.is_default_egress]
    if egress and guests and publics:
        rules = []
        for r in exceptions:
            rules += _egress_rules(r, "drop" if r.default_egress_policy else "accept")
        if default is not None:
            tail = ["accept" if default.default_egress_policy else "counter drop"]
        else:
            tail = ["counter drop"]
        chains += chunked("fw_egress", rules, tail)

    # -- ACLs per tier ----------------------------------------------------
    for g in topo.guests:
        acl = d.acls.get(g.ifname)
        if acl is None:
            continue
        if acl.egress_rules or d.routed:
            # A routed tier's ACL always judges egress too, ending in drop
            # (configure.py CsAcl.AclDevice.__process_routing_ip4, 4.20: the
            # "<dev>_egress_policy" chain, jumped to by the tier's CIDR, its
            # rules then "counter drop", with or without egress rules).
            # Otherwise egress is open until the ACL has egress rules; then
            # what they do not allow is dropped (CloudStack's documented ACL
            # default; the 4.x CsAcl.AclDevice: "only if one or more egress
            # rules exist we will drop everything else").
            chains += _acl_chains(acl, f"acl_out_{g.ifname}", ingress=False)
        # Ingress always ends in drop (CsAddress fw_vpcrouter: ACL_INBOUND_<dev> -j DROP).
        chains += _acl_chains(acl, f"acl_in_{g.ifname}", ingress=True)

    stateful = ["ct state established,related accept", "ct state invalid drop"]
    fwd_egress = list(stateful)
    fwd_ingress = list(stateful)
    # A dual-stack network's IPv6 firewall decides first for its prefix.
    v6_chains, v6_out, v6_in = _ipv6_firewall(d)
    chains += v6_chains
    fwd_egress += v6_out
    fwd_ingress += v6_in
    # Routed mode: what comes in to a guest without an ACL passes the routing
    # firewall (upstream's fw_chain_ingress: the firewallrules bag's ingress
    # rules that guard no public IP, then drop).
    routed_in = [x for fw in d.firewall if fw.is_ingress and fw.src_ip is None
                 for x in _routed_rules(fw)]
    if d.routed:
        chains += chunked("fw_routed_in", routed_in, ["counter drop"])
    for g in topo.guests:
        acl = d.acls.get(g.ifname)
        if acl is not None:
            if acl.egress_rules or d.routed:
                fwd_egress.append(f"iifname {_q(g.ifname)} jump acl_out_{g.ifname}")
            fwd_ingress.append(f"oifname {_q(g.ifname)} jump acl_in_{g.ifname}")
        elif not g.private_gateway:
            if topo.router_type == "router":
                # Isolated networks have no ACLs: port forwards and static NAT
                # pass here and are gated by the public IP's firewall chain
                # (forward_firewall); a drop here would be final.
                fwd_ingress.append(f"oifname {_q(g.ifname)} ct status dnat accept")
            if d.routed:
                fwd_ingress.append(f"oifname {_q(g.ifname)} jump fw_routed_in")
            # A tier without an ACL may go out but admits nothing new.
            fwd_ingress.append(f"oifname {_q(g.ifname)} counter drop")
    base.append(Chain("forward_egress", tuple(fwd_egress),
                      "type filter hook forward priority filter; policy accept;"))
    base.append(Chain("forward_ingress", tuple(fwd_ingress),
                      "type filter hook forward priority 10; policy accept;"))

    fwd_fw = ["ct state established,related accept"]
    for ip in sorted(ingress_fw):
        fwd_fw.append(f"ct status dnat ct original {_match(ip, 'daddr')} "
                      f"jump {_fw_chain_name(ip)}")
    if egress and guests and publics:
        fwd_fw.append(f"iifname {_ifset(guests)} oifname {_ifset(publics)} jump fw_egress")
    base.append(Chain("forward_firewall", tuple(fwd_fw),
                      "type filter hook forward priority 20; policy accept;"))

    final = ["ct state established,related accept"]
    if guests:
        final += [f"iifname {_ifset(guests)} accept", f"oifname {_ifset(guests)} accept"]
    # What a feature forwards, once nothing before dropped it.
    final += [f"{match} accept" for b in d.traffic.forward for match in _between(b)]
    final.append("counter drop")
    base.append(Chain("forward_final", tuple(final),
                      "type filter hook forward priority 30; policy drop;"))

    # -- the router itself ------------------------------------------------
    inp = [
        'iifname "lo" accept',
        "ct state established,related accept",
        "ct state invalid drop",
    ]
    if V6 in topo.families or d.ipv6_networks:
        inp.append(ND_ACCEPT)
    # The pair's own traffic, on its links only, before any firewall.
    inp += _openings(topo, [o for o in d.traffic.accept if o.pair])
    # A public IP's firewall decides before anything else, ICMP included.
    for ip in sorted(ingress_fw):
        inp.append(f"{_match(ip, 'daddr')} jump {_fw_chain_name(ip)}")
    # Every family the router speaks gets its ICMP (path MTU, errors; for
    # IPv6 also neighbour discovery, without which nothing works).
    inp += [f"meta l4proto {fam.icmp} accept" for fam in topo.families]
    # What the router serves, on the links each service is for.
    inp += _openings(topo, [o for o in d.traffic.accept if not o.pair])
    inp.append("counter drop")
    base.append(Chain("input", tuple(inp),
                      "type filter hook input priority filter; policy drop;"))

    vrrp = topo.vrrp
    if vrrp is not None and vrrp.borrowed_src:
        # CloudStack mode: both routers' public NICs have the same MAC, so the
        # backup must send nothing there (upstream takes the NIC down, which
        # would also silence the adverts the backup listens for). Only the
        # master's adverts and what leaves from a public IP this router holds
        # get out: after source NAT, so "holds" is asked of the kernel (the
        # backup's own traffic is NATed to an address it does not have).
        pub = next(p for p in topo.public if p.ifname == vrrp.ifname)
        shared = sorted(a.public_ip for a in pub.addresses)
        tiers6 = sorted(str(g.network6) for g in topo.guests if g.network6 is not None)
        own_source = [f"oifname {_q(pub.ifname)} {_proto(o.proto)} accept"
                      for o in d.traffic.own_source if o.role == "vrrp"]
        base.append(Chain("public_guard", (
            *own_source,
            f"oifname {_q(pub.ifname)} ip saddr {_set(shared)} fib saddr type local accept",
            # The VPC's public IPv6 (router_ip6) likewise: keepalived's, the
            # master's only. IPv6 is not NATed, so the tiers' own traffic leaves
            # with their addresses: only the master forwards it (the hosts' default
            # router, fe80::1 and the gateway, is keepalived's), and the backup cannot
            # resolve the upstream router, its solicitations dropped here.
            *([f"oifname {_q(pub.ifname)} ip6 saddr {topo.public6.address.split('/')[0]} "
               "fib saddr type local accept"]
              if topo.public6 is not None and topo.public6.ifname == pub.ifname else []),
            # Its neighbour solicitations come from the shared MAC's link-local
            # address (topology.Public6), held by the master alone: a router
            # never sends from an address it does not hold (keepalived's own
            # advertisements leave by a packet socket, before this hook).
            *([f"oifname {_q(pub.ifname)} ip6 saddr {topo.public6.link_local.split('/')[0]} "
               "accept"]
              if topo.public6 is not None and topo.public6.ifname == pub.ifname
              and topo.public6.link_local else []),
            *([f"oifname {_q(pub.ifname)} ip6 saddr {_set(tiers6)} accept"]
              if topo.public6 is not None and topo.public6.ifname == pub.ifname and tiers6
              else []),
            f"oifname {_q(pub.ifname)} drop",
        ), "type filter hook postrouting priority 300; policy accept;"))

    # -- what features count ------------------------------------------------
    counters, counting = _counts(topo, d.traffic.count)
    for path in ("forward", "input", "output"):
        if counting.get(path):
            base.append(Chain(f"count_{path}", tuple(counting[path]),
                              f"type filter hook {path} priority {COUNT_PRIORITY}; "
                              "policy accept;"))

    return Ruleset(d.table, tuple(chains + base), helpers, tuple(counters))


# -- apply ------------------------------------------------------------------


def _delta(old: dict[str, Any], new: Ruleset, table: str) -> str | None:
    """nft script turning the table recorded in ``old`` into ``new``; None: use a full load."""
    if old.get("helpers", []) != list(new.helpers):
        return None  # helper objects are declared with the table: reload it
    old_chains = old["chains"]
    new_by_name = {c.name: c for c in new.chains}
    for c in new.chains:
        if c.hook and old["hooks"].get(c.name) != c.hook:
            return None  # base chain created or re-hooked: reload the table
    for name in old_chains:
        if name not in new_by_name and old["hooks"].get(name):
            return None
    changed = [c for c in new.chains if old_chains.get(c.name) != c.digest()]
    removed = [n for n in old_chains if n not in new_by_name]
    # Counter objects are added and deleted, never declared again: the ones
    # kept keep their values.
    old_counters = set(old.get("counters", []))
    added = [n for n in new.counters if n not in old_counters]
    dropped = sorted(old_counters - set(new.counters))
    if not changed and not removed and not added and not dropped:
        return ""
    # Chains going away are emptied first: a removed chain may still jump to
    # another removed one (an ACL's parent to its chunks), and nft refuses to
    # delete a chain some rule refers to, whatever the order in the script.
    lines = [f"flush chain inet {table} {n}" for n in removed]
    for c in changed:
        if c.name in old_chains:
            lines.append(f"flush chain inet {table} {c.name}")
        else:
            lines.append(f"add chain inet {table} {c.name}")
    lines.append(f"table inet {table} {{")
    lines += [f"\tcounter {n} {{ }}" for n in added]  # before the rules that count into them
    for c in changed:
        lines.append(f"\tchain {c.name} {{")
        lines += [f"\t\t{r}" for r in c.rules]
        lines.append("\t}")
    lines.append("}")
    lines += [f"delete chain inet {table} {n}" for n in removed]
    # Once no rule counts into them (their chains were flushed above).
    lines += [f"delete counter inet {table} {n}" for n in dropped]
    return "\n".join(lines) + "\n"


def _record(rs: Ruleset) -> dict[str, object]:
    return {
        "chains": {c.name: c.digest() for c in rs.chains},
        "hooks": {c.name: c.hook for c in rs.chains if c.hook},
        "helpers": list(rs.helpers),
        "counters": list(rs.counters),
    }


def _trusted_record(table: str, settings: Settings) -> dict[str, Any] | None:
    """The record of the last load, if the live table is still exactly that load.

    Cheap check first: same network namespace and no nftables transaction
    since ours (generation counter). Otherwise compare a listing of the table,
    when the record has one; without it, the caller reloads the whole table.
    """
    from ...system import nft

    try:
        saved: dict[str, Any] = json.loads(settings.applied_netfilter.read_text())
    except (OSError, ValueError):
        return None
    if saved.get("netns") != nft.namespace_id():
        return None
    if saved.get("generation") is not None and saved["generation"] == nft.generation():
        return saved
    live = nft.list_table(table)
    if live is not None and saved.get("listing") == hashlib.sha256(live.encode()).hexdigest():
        return saved
    return None


def applied_in_force(settings: Settings) -> bool:
    """The live table is still exactly what the agent last loaded (the question
    ``apply`` asks before a delta; the health checks ask it too)."""
    return _trusted_record(settings.nft_table, settings) is not None


def apply(d: Desired, rendered: Ruleset, settings: Settings, dry_run: bool = False) -> list[str]:
    rs = rendered
    from ...store import atomic_write
    from ...system import nft

    record = _trusted_record(rs.table, settings)
    script = _delta(record, rs, rs.table) if record is not None else None
    if script == "":
        return []
    full = script is None
    if script is None:
        change = f"netfilter: load table inet {rs.table} ({rs.rule_count} rules)"
    else:
        names = list(dict.fromkeys(ln.split()[-1] for ln in script.splitlines()
                                   if ln.startswith(("flush chain", "add chain",
                                                     "delete chain", "delete counter"))))
        change = f"netfilter: replace {len(names)} chain(s): {', '.join(names[:8])}" + (
            " ..." if len(names) > 8 else "")
    if dry_run:
        return [change]
    with nft.counters_locked(settings.run_dir):
        if full:
            # The whole table goes: its counters are declared again with the
            # values they hold now (what is counted until the commit, a few
            # milliseconds, is lost; a change of chains loses nothing).
            live = (nft.counters(rs.table) or {}) if rs.counters else {}
            script = rs.text({n: v for n, v in live.items() if n in rs.counters})
        assert script is not None
        before = nft.generation()
        nft.load(script)
        after = nft.generation()
    new = _record(rs)
    new["netns"] = nft.namespace_id()
    if before is not None and after == before + 1:
        new["generation"] = after
    else:
        # Another transaction landed around ours: identify the table by content.
        new["listing"] = hashlib.sha256((nft.list_table(rs.table) or "").encode()).hexdigest()
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(settings.applied_netfilter, json.dumps(new).encode())
    return [change]
