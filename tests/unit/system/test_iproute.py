"""Routes, rules and addresses through ``ip`` (vragent.system.iproute): the
argument lists built from data, and the kernel's JSON read back."""

from __future__ import annotations

import json
import subprocess

import pytest
from vragent.family import V6
from vragent.system import cmd, iproute
from vragent.system.iproute import MAIN, Route, Rule


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], str | None]]:
    calls: list[tuple[list[str], str | None]] = []
    routes = [{"dst": "default", "gateway": "100.64.20.1", "dev": "eth1", "table": "101"},
              {"dst": "10.1.1.5", "gateway": "100.64.20.1", "dev": "eth1", "flags": ["onlink"]}]
    rules = [{"priority": 100, "src": "198.51.100.4", "table": "101", "protocol": "196"},
             {"priority": 110, "fwmark": "0x65", "table": "101", "protocol": "196"},
             # ip -N answers tables and protocols as numbers (254: main)
             {"priority": 90, "src": "all", "table": "254", "protocol": "196",
              "suppress_prefixlen": 0},
             {"priority": 0, "src": "all", "table": "255", "protocol": "2"}]

    def spawn(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        calls.append((argv, stdin))
        out = f"{json.dumps(routes)}\n{json.dumps(rules)}\n" if "-batch" in argv else ""
        return subprocess.CompletedProcess(argv, 0, out, "")

    monkeypatch.setattr(cmd, "spawn", spawn)
    return calls


def test_routing_reads_routes_and_rules_of_one_protocol_in_one_process(
        ran: list[tuple[list[str], str | None]]) -> None:
    routes, rules = iproute.routing(196)
    assert ran == [(["ip", "-N", "-json", "-4", "-batch", "-"],
                    "route show table all proto 196\nrule show\n")]
    assert routes == {Route(101, "default", "100.64.20.1", "eth1"),
                      Route(MAIN, "10.1.1.5/32", "100.64.20.1", "eth1", onlink=True)}
    assert rules == {Rule(100, 101, src="198.51.100.4"), Rule(110, 101, fwmark=101),
                     Rule(90, MAIN, suppress_prefixlength=0)}


def test_the_family_is_a_parameter(ran: list[tuple[list[str], str | None]]) -> None:
    routes, _ = iproute.routing(196, family=V6)
    assert ran[0][0][:4] == ["ip", "-N", "-json", "-6"]
    assert Route(MAIN, "10.1.1.5/128", "100.64.20.1", "eth1", onlink=True) in routes
    iproute.replace_route(Route(MAIN, "default", "fe80::1", "eth1"), 196, family=V6)
    assert ran[-1][0][:3] == ["ip", "-6", "route"]


def test_route_and_rule_changes(ran: list[tuple[list[str], str | None]]) -> None:
    route = Route(101, "default", "100.64.20.1", "eth1", onlink=True)
    rule = Rule(100, 101, src="198.51.100.4")
    iproute.replace_route(route, 196)
    iproute.del_route(route, 196)
    iproute.add_rule(rule, 196)
    iproute.del_rule(rule, 196)
    assert [argv for argv, _ in ran] == [
        ["ip", "-4", "route", "replace", "to", "default", "via", "100.64.20.1", "dev", "eth1",
         "table", "101", "onlink", "proto", "196"],
        ["ip", "-4", "route", "del", "to", "default", "via", "100.64.20.1", "dev", "eth1",
         "table", "101", "onlink", "proto", "196"],
        ["ip", "-4", "rule", "add", "priority", "100", "from", "198.51.100.4", "lookup", "101",
         "protocol", "196"],
        ["ip", "-4", "rule", "del", "priority", "100", "from", "198.51.100.4", "lookup", "101",
         "protocol", "196"],
    ]


def test_address_and_link_changes(ran: list[tuple[list[str], str | None]]) -> None:
    iproute.set_mtu("eth1", 1400)
    iproute.set_up("eth1")
    iproute.add_address("eth1", "100.64.20.10/24")
    iproute.add_address("eth1", "100.64.20.11/32", link_scope=True)
    iproute.del_address("eth1", "100.64.20.10/24")
    assert [argv for argv, _ in ran] == [
        ["ip", "link", "set", "dev", "eth1", "mtu", "1400"],
        ["ip", "link", "set", "dev", "eth1", "up"],
        ["ip", "address", "add", "100.64.20.10/24", "dev", "eth1"],
        ["ip", "address", "add", "100.64.20.11/32", "dev", "eth1", "scope", "link"],
        ["ip", "address", "del", "100.64.20.10/24", "dev", "eth1"],
    ]


def test_unresolved_neighbours_of_both_families_are_flushed_and_no_other(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # ha/transitions.py NEIGHBOURS: what a new master forgets (a resolved
    # entry, or a permanent one, is never touched), as ip -s -s lists it.
    calls: list[list[str]] = []

    def spawn(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, (
            "fd64:10::1 dev eth1  ref 1 used 0/60/0probes 4 INCOMPLETE \n"
            "100.64.10.1 dev eth1  used 3/3/3probes 6 FAILED \n\n"
            "*** Round 1, deleting 2 entries ***\n"
            "*** Flush is complete after 1 round ***\n"), "")

    monkeypatch.setattr(cmd, "spawn", spawn)
    assert iproute.flush_unresolved_neighbours("eth1") == ["fd64:10::1 dev eth1",
                                                           "100.64.10.1 dev eth1"]
    assert calls == [["ip", "-s", "-s", "neigh", "flush", "dev", "eth1", "nud", "incomplete",
                      "nud", "failed"]]
