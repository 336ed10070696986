"""What ``vpc_netusage.sh`` and ``netusage.sh`` read from their arguments and
answer (pure), and the usage figures on the metrics endpoint.

Upstream (systemvm/debian/opt/cloud/bin/vpc_netusage.sh, netusage.sh) reads
its options with bash's ``getopts`` (``cgndrl:v:`` and ``cgria:d:l:``), acts
on the first of them in a fixed order, and answers ``-g`` with awk's
``printf "%s:", $2`` over ``iptables -L <chain> -n -v -x``: the bytes of each
counting rule, each followed by a colon, on one line with no line break. The
rules come in (sent, received) pairs, and every hypervisor resource reads the
answer the same way (LibvirtComputingResource.getVPCNetworkStats and
getNetworkStats, CitrixResourceBase.getVPCNetworkStats, VmwareResource's
VPCNetworkUsage, XenServer56NetworkUsageCommandWrapper): ``split(":")`` and
sum the even fields as bytes sent, the odd ones as bytes received, into a
NetworkUsageAnswer(sent, received). The management server
(VirtualNetworkApplianceManagerImpl / RouterNetworkStatsServiceImpl.
collectNetworkStatistics) keeps them per router as running totals: a figure
lower than the last is taken for a reset of the router's counters. Nothing
but the answer may be printed on success: the ssh channel (SshHelper) hands
stdout and stderr to the parser as one text.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ...feature import Metric
from ...settings import Settings
from .feature import FWD_RECEIVED, FWD_SENT, OWN_RECEIVED, OWN_SENT, VPN_RECEIVED, VPN_SENT

VPC = "vpc_netusage.sh"
ISOLATED = "netusage.sh"
# Upstream's getopts strings.
OPTSTRINGS = {VPC: "cgndrl:v:", ISOLATED: "cgria:d:l:"}
# Upstream acts on the first flag set, in this order (the scripts' if-chain).
ORDER = {VPC: "cgndr", ISOLATED: "cgrad"}
USAGE = {
    VPC: "Usage: vpc_netusage.sh -[c|g|r|n|d] [-l <public gateway>] [-v <vpc cidr>]",
    ISOLATED: "Usage: netusage.sh -[c|g|r] [-[a|d] <public interface>] [-l] <public IP>",
}
USAGE_EXIT = 2  # upstream: unlock_exit 2 on a getopts error

if TYPE_CHECKING:
    from ...topology import Topology

Action = Literal["create", "get", "vpn", "remove", "reset", "add_vif", "delete_vif", "none"]
ACTIONS: dict[str, dict[str, Action]] = {
    VPC: {"c": "create", "g": "get", "n": "vpn", "d": "remove", "r": "reset"},
    ISOLATED: {"c": "create", "g": "get", "r": "reset", "a": "add_vif", "d": "delete_vif"},
}


class UsageError(ValueError):
    """Arguments the script refuses: nothing is read or changed."""


@dataclass(frozen=True)
class Request:
    script: str
    action: Action
    ip: str = ""  # -l
    cidr: str = ""  # -v (create)
    interface: str = ""  # -a / -d of netusage.sh (accepted and ignored, as upstream)


def getopts(optstring: str, argv: list[str]) -> list[tuple[str, str]]:
    """bash's getopts: options up to the first argument that is not one (or
    ``--``); flags may be grouped (``-cg``), an option's argument attached
    (``-l10.0.0.1``) or the next word. Raises UsageError as getopts reports
    its '?' (an unknown option, or one missing its argument)."""
    found: list[tuple[str, str]] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            break
        if not word.startswith("-") or word == "-":
            break
        j = 1
        while j < len(word):
            opt = word[j]
            spec = optstring.find(opt)
            if opt == ":" or spec < 0:
                raise UsageError(f"illegal option -- {_shown(opt)}")
            if spec + 1 < len(optstring) and optstring[spec + 1] == ":":
                value = word[j + 1:]
                if not value:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(f"option requires an argument -- {opt}")
                    value = argv[i]
                found.append((opt, value))
                break
            found.append((opt, ""))
            j += 1
        i += 1
    return found


def _shown(text: str) -> str:
    return text if text.isascii() and text.isprintable() else repr(text)


def parse(script: str, argv: list[str]) -> Request:
    """The request in ``argv``, validated: a public IP that is an address and
    a VPC CIDR that is a network, or UsageError naming the option and value."""
    opts = getopts(OPTSTRINGS[script], argv)
    flags = {o for o, _ in opts}
    values = {o: v for o, v in opts if v}  # the last one wins, as in the script
    ip = values.get("l", "")
    if ip:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            raise UsageError(f"-l: {_shown(ip)} is not an IP address") from None
    cidr = values.get("v", "")
    if cidr:
        try:
            cidr = str(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            raise UsageError(f"-v: {_shown(cidr)} is not a CIDR (a.b.c.d/n)") from None
    interface = values.get("a", values.get("d", "")) if script == ISOLATED else ""
    if interface and not re.fullmatch(r"[A-Za-z0-9_.:@-]{1,15}", interface, re.ASCII):
        raise UsageError(f"-a/-d: {_shown(interface)} is not an interface name")
    action: Action = next((ACTIONS[script][f] for f in ORDER[script] if f in flags), "none")
    if script == VPC and action in ("get", "vpn", "reset", "create") and not ip:
        raise UsageError(f"-{next(f for f in ORDER[script] if f in flags)} needs "
                         "-l <public ip>")
    return Request(script, action, ip, cidr, interface)


# -- what the answers are made of -------------------------------------------------


def public_link(topo: Topology, ip: str) -> str | None:
    """The public link that holds ``ip`` in the configuration (upstream's
    getEthByIp, but from the configuration, not the live addresses: on a
    pair the backup does not hold them, and answers from its own counters)."""
    for p in topo.public:
        if any(a.public_ip == ip for a in p.addresses):
            return p.ifname
    return None


def counted(request: Request, topo: Topology) -> list[str] | None:
    """The counters ``request`` answers with (``-g``, ``-n``) or resets
    (``-r``), in (sent, received) pairs; None when there is nothing to answer
    (an address this router does not have: upstream prints nothing)."""
    if request.action == "vpn":
        # CloudStack puts its VPNs on the source-NAT address: the tunnels'
        # traffic is the source-NAT link's, and answered for it only.
        snat = topo.snat_interface()
        if snat is None or public_link(topo, request.ip) != snat.ifname:
            return None
        return [VPN_SENT.counter(), VPN_RECEIVED.counter()]
    if request.ip:
        link = public_link(topo, request.ip)
        links = [link] if link is not None else []
    else:
        links = topo.public_names
    if not links:
        return None
    names = []
    for link in links:
        names += [FWD_SENT.counter(link), FWD_RECEIVED.counter(link)]
        if request.script == ISOLATED:
            # An isolated router's NETWORK_STATS also counts its own TCP on the
            # public link (its load balancer); a VPC router's chain does not.
            names += [OWN_SENT.counter(link), OWN_RECEIVED.counter(link)]
    return names


def answer(byte_counts: list[int]) -> str:
    """awk's ``printf "%s:", $2`` over the rules: each figure and a colon, no
    line break (a parser's ``Long.parseLong`` would choke on one)."""
    return "".join(f"{n}:" for n in byte_counts)


def created_after(created: dict[str, str], request: Request) -> dict[str, str]:
    """The public IPs the management server asked to account (``-c``, with
    the VPC's CIDR), once ``request`` is done: ``-c`` adds, ``-d`` forgets."""
    out = dict(created)
    if request.action == "create" and request.ip:
        out[request.ip] = request.cidr
    elif request.action == "remove":
        out.pop(request.ip, None)
    return dict(sorted(out.items()))


# -- metrics ------------------------------------------------------------------------

_PER_LINK = re.compile(r"usage_(?P<link>.+)_(?P<path>fwd|own)_(?P<dir>tx|rx)", re.ASCII)
_VPN = re.compile(r"vpn_usage_(?P<dir>tx|rx)", re.ASCII)
_PATHS = {"fwd": "forwarded", "own": "router"}
_DIRECTIONS = {"tx": "sent", "rx": "received"}


def samples(counts: dict[str, tuple[int, int]]) -> tuple[list[tuple[tuple[str, ...], float]],
                                                          list[tuple[tuple[str, ...], float]]]:
    """(bytes, packets) samples by (interface, direction, path) from the
    table's counters: "forwarded" between the tiers and a public link,
    "router" the router's own TCP there, "vpn" through tunnels (no link)."""
    octets: list[tuple[tuple[str, ...], float]] = []
    packets: list[tuple[tuple[str, ...], float]] = []
    for name, (p, b) in sorted(counts.items()):
        m = _PER_LINK.fullmatch(name)
        if m is not None:
            labels = (m["link"], _DIRECTIONS[m["dir"]], _PATHS[m["path"]])
        elif (v := _VPN.fullmatch(name)) is not None:
            labels = ("", _DIRECTIONS[v["dir"]], "vpn")
        else:
            continue
        octets.append((labels, float(b)))
        packets.append((labels, float(p)))
    return octets, packets


def metrics(settings: Settings) -> list[Metric]:
    from ...system import nft
    from . import state

    try:
        counts = nft.counters(settings.nft_table) or {}
    except Exception:  # noqa: BLE001 - a scrape shows what it can: no nft, no figures
        counts = {}
    octets, packets = samples(counts)
    labels = ("interface", "direction", "path")
    created: dict[str, Any] = state.load(settings)
    return [
        Metric("vragent_usage_bytes", "Bytes counted for network usage (what vpc_netusage.sh "
               "and netusage.sh answer), since the counters were last reset", "counter",
               labels, tuple(octets)),
        Metric("vragent_usage_packets", "Packets counted for network usage", "counter",
               labels, tuple(packets)),
        Metric("vragent_usage_accounted", "1 for each public IP the management server asked "
               "to account (vpc_netusage.sh -c), with its VPC's CIDR", "gauge",
               ("public_ip", "vpc_cidr"), tuple(((ip, cidr), 1.0)
                                                for ip, cidr in sorted(created.items()))),
    ]
