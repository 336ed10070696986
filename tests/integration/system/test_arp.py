"""Raw ARP between two real namespaces on a veth.

A (10.77.0.1) and B (10.77.0.2) share one link; the functions run in a Python
process inside B's namespace, as they run inside a router's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from vragent_lab.netns import Lab, in_ns, sh, wait_for

A_IP, B_IP, UNUSED_IP = "10.77.0.1", "10.77.0.2", "10.77.0.50"
WRONG_MAC = "02:00:00:00:00:99"


@dataclass
class Pair:
    a: str
    b: str


@pytest.fixture
def pair() -> Iterator[Pair]:
    # pid and a clock tick keep concurrent runs apart; short because the veth's
    # temporary names (prefix + "peth0") must fit in 15 characters.
    lab = Lab(f"arp{os.getpid() % 1000}{time.monotonic_ns() % 100:02d}-")
    try:
        lab.link("a", "eth0", "b", "eth0")
        lab.host("a", "eth0", f"{A_IP}/24", None)
        lab.host("b", "eth0", f"{B_IP}/24", None)
        yield Pair(lab.ns("a"), lab.ns("b"))
    finally:
        created = list(lab.namespaces)  # destroy() forgets them
        lab.destroy()
    assert not set(created) & set(sh(["ip", "netns", "list"]).split())


def mac_of(ns: str, ifname: str = "eth0") -> str:
    [link] = json.loads(sh(["ip", "-n", ns, "-j", "link", "show", ifname]))
    return str(link["address"]).lower()


def call(ns: str, func: str, *args: str) -> object:
    """``vragent.system.arp.<func>(*args)`` in a process inside ``ns``; its result as JSON."""
    code = (
        "import json, sys\n"
        "from vragent.system import arp\n"
        "res = getattr(arp, sys.argv[1])(*sys.argv[2:])\n"
        "print(json.dumps(sorted(res) if isinstance(res, set) else res))\n"
    )
    proc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code, func, *args],
                          capture_output=True, text=True, check=False, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_probe_finds_the_holder_of_an_address(pair: Pair) -> None:
    assert call(pair.b, "duplicate_holders", "eth0", A_IP) == [mac_of(pair.a)]


def test_probe_for_an_unused_address_finds_nobody(pair: Pair) -> None:
    assert call(pair.b, "duplicate_holders", "eth0", UNUSED_IP) == []


def test_probe_for_our_own_address_does_not_count_us(pair: Pair) -> None:
    assert call(pair.b, "duplicate_holders", "eth0", B_IP) == []


def test_probe_finds_a_second_holder_of_the_same_address(pair: Pair) -> None:
    # The dual-master case: the peer also holds the address we hold.
    in_ns(pair.a, ["ip", "addr", "add", f"{B_IP}/32", "dev", "eth0"])
    assert call(pair.b, "duplicate_holders", "eth0", B_IP) == [mac_of(pair.a)]


def test_gratuitous_arp_repoints_a_stale_neighbour_entry(pair: Pair) -> None:
    in_ns(pair.a, ["ip", "neigh", "replace", B_IP, "lladdr", WRONG_MAC, "dev", "eth0",
                   "nud", "stale"])
    assert WRONG_MAC in in_ns(pair.a, ["ip", "neigh", "show", B_IP, "dev", "eth0"])
    b_mac = mac_of(pair.b)

    assert call(pair.b, "gratuitous", "eth0", B_IP) is None

    def repointed() -> bool:
        return f"lladdr {b_mac} " in sh(["ip", "-n", pair.a, "neigh", "show", B_IP])

    wait_for(repointed, timeout=5.0, what=f"A's neighbour entry for {B_IP} to show {b_mac}")
