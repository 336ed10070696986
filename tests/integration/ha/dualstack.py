"""The dual-stack VPC on a redundant pair, as the IPv6 pair tests set it up:
the tiers' guestnetwork bags with CloudStack's IPv6 fields, tier 2's ACL open
to the tests' IPv6 ports, the SLAAC hosts, and the probes (an IPv6 and an IPv4
UDP probe, held IPv6 TCP connections) measured across a hard kill.

Used by test_pair_ipv6.py, test_pair_public_ipv6.py and test_pair_bgp.py.
The fields are SetGuestNetworkConfigItem.java's (router_guest_ip6,
router_guest_ip6_gateway, router_guest_ip6_cidr; router_ip6*), read by
upstream's cs/CsVpcGuestNetwork.py.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vragent_lab.netns import in_ns, wait_for
from vragent_lab.pair import Pair, PairRouter
from vragent_lab.traffic import Probe, TcpEcho, TcpHolder, UdpEcho

from .conftest import ADVERT_INT, Sampler, running_pair

TIERS = {  # sample bag, prefix, VM namespace
    "eth2": ("guest_network_tier1.json", "fd00:a:a:1::", "vm1"),
    "eth3": ("guest_network_tier2.json", "fd00:a:a:2::", "vm2"),
}
LINK_LOCAL_GATEWAY = "fe80::1"
ECHO_TCP = 7000
ECHO_UDP = 7001


def dual_stack(r: PairRouter, dev: str) -> dict[str, Any]:
    """The tier's guestnetwork bag with the IPv6 fields CloudStack sends
    (router_guest_ip6, router_guest_ip6_gateway, router_guest_ip6_cidr). In
    CloudStack mode each router has its own address (::2, ::3) beside the
    shared gateway (::1), as it has in IPv4."""
    name, prefix, _vm = TIERS[dev]
    bag = r.sample(name)
    own = f"{prefix}{1 + r.index}" if r.cloudstack else f"{prefix}1"
    bag.update({"router_guest_ip6": own, "router_guest_ip6_gateway": f"{prefix}1",
                "router_guest_ip6_cidr": f"{prefix}/64"})
    return bag


def acl_v6(r: PairRouter) -> dict[str, Any]:
    """Tier 2's ACL: the sample's rules, and the test's IPv6 TCP and UDP echo
    ports open to any IPv6 source (an ACL whose CIDR is IPv6)."""
    acl = r.sample("network_acl_tier2.json")
    acl["ingress_rules"] = [*acl["ingress_rules"], *(
        {"type": proto, "cidr": "::/0", "first_port": port, "last_port": port,
         "allowed": True} for proto, port in (("tcp", ECHO_TCP), ("udp", ECHO_UDP))),
        # The IPv4 baseline probe, measured in the same failover.
        {"type": "udp", "cidr": "10.10.1.0/24", "first_port": ECHO_UDP, "last_port": ECHO_UDP,
         "allowed": True}]
    return acl


def slaac_address(ns: str, prefix: str) -> str | None:
    """The host's global address in the tier's prefix (autoconfigured)."""
    out = in_ns(ns, ["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"],
                check=False)
    network = ipaddress.IPv6Network(f"{prefix}/64")
    # Usable only once duplicate detection is over (a tentative one cannot be bound).
    found = [a for line in out.splitlines() if "tentative" not in line
             for a in re.findall(r"inet6 (\S+)/64", line)
             if ipaddress.IPv6Address(a) in network]
    return found[0] if found else None


def default_routers(ns: str) -> list[str]:
    out = in_ns(ns, ["ip", "-6", "route", "show", "default"], check=False)
    return re.findall(r"via (\S+) dev eth0", out)


def hosts_configured(pair: Pair) -> dict[str, str]:
    """Each VM's SLAAC address, once it has one and its default route."""
    found: dict[str, str] = {}
    for _dev, (_name, prefix, vm) in TIERS.items():
        ns = pair.ns(vm)

        def ready(ns: str = ns, prefix: str = prefix) -> bool:
            return slaac_address(ns, prefix) is not None and \
                LINK_LOCAL_GATEWAY in default_routers(ns)

        wait_for(ready, 40, f"{vm} to configure itself by SLAAC", interval=0.2)
        address = slaac_address(ns, prefix)
        assert address is not None
        found[vm] = address
    return found


@contextmanager
def dual_stack_pair(base: Path, cloudstack: bool, bags: Callable[[PairRouter], list[Any]],
                    loading: str) -> Iterator[tuple[Pair, Sampler]]:
    """The sampled pair with the sample VPC (conftest.running_pair), then each
    router's ``bags`` applied and loaded by its keepalived (``loading``: what
    the wait is for, in its message)."""
    with running_pair(base, ADVERT_INT, cloudstack=cloudstack) as (pair, sampler):
        for r in pair.routers:
            r.apply(*bags(r))
        for r in pair.routers:
            wait_for(r.config_loaded, 15, f"{r.name}'s keepalived to load {loading}")
        yield pair, sampler


@contextmanager
def probed(client: str, server: str, target6: str, target4: str, tcp: int, udp: int,
           held: int) -> Iterator[tuple[TcpHolder, Probe, Probe]]:
    """From ``client`` to ``server``: ``held`` IPv6 TCP connections to an echo
    server at ``target6``, and a UDP probe every 10 ms to each of ``target6``
    and ``target4`` (the IPv4 baseline of the same failover), all answering."""
    with TcpEcho(server, target6, tcp), UdpEcho(server, target6, udp), \
            UdpEcho(server, target4, udp), \
            TcpHolder(client, target6, tcp, held) as holder, \
            Probe(client, target6, udp, interval=0.01) as probe, \
            Probe(client, target4, udp, interval=0.01) as probe4:
        assert holder.check()["ok"] == held
        wait_for(lambda: probe.stats()["received"] >= 20 and probe4.stats()["received"] >= 20,
                 10, "the IPv6 and IPv4 probes to get replies")
        yield holder, probe, probe4


def hard_kill(sampler: Sampler, master: PairRouter, survivor: PairRouter, probe: Probe,
              probe4: Probe) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """Power the master off (every process killed, every link dark) and wait
    for the survivor to take over and for replies to both probes through it.
    Returns the takeover's delay and both probes' figures from the kill on."""
    probe.reset()
    probe4.reset()
    sampler.healthy(False)
    before, before4 = probe.stats()["received"], probe4.stats()["received"]
    killed = time.monotonic()
    master.power_off()
    wait_for(lambda: survivor.status() == "PRIMARY", 15, "the backup to take over")
    took_over = time.monotonic() - killed
    # Replies through the new master, not the ones that came before the kill.
    wait_for(lambda: probe.stats()["received"] > before + 20
             and probe4.stats()["received"] > before4 + 20, 15,
             "probe replies through the new master")
    return took_over, probe.stop(), probe4.stop()
