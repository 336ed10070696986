"""The traffic tools with real packets: two hosts on one veth.

``a`` (10.78.0.1) probes and holds connections, ``b`` (10.78.0.2) echoes. Cutting
``b``'s link must show up as loss and as a gap in the replies; killing the TCP
echo server must fail every held connection.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from vragent_lab.netns import Lab, in_ns, sh, wait_for
from vragent_lab.traffic import Probe, TcpEcho, TcpHolder, UdpEcho

A_IP, B_IP = "10.78.0.1", "10.78.0.2"
UDP_PORT, TCP_PORT = 7007, 7008


@dataclass
class Pair:
    a: str
    b: str


@pytest.fixture
def pair() -> Iterator[Pair]:
    lab = Lab(f"tr{os.getpid() % 10000}-")
    try:
        lab.link("a", "eth0", "b", "eth0")
        lab.host("a", "eth0", f"{A_IP}/24", None)
        lab.host("b", "eth0", f"{B_IP}/24", None)
        yield Pair(lab.ns("a"), lab.ns("b"))
    finally:
        lab.destroy()


def _no_process_in(ns: str) -> bool:
    return not sh(["ip", "netns", "pids", ns], check=False).split()


def test_probe_on_a_healthy_link_loses_nothing(pair: Pair) -> None:
    with UdpEcho(pair.b, B_IP, UDP_PORT) as echo:
        with Probe(pair.a, B_IP, UDP_PORT, interval=0.01) as probe:
            wait_for(lambda: probe.stats()["sent"] >= 50, 5, "50 probes sent")
            report = probe.stop()
        assert report["sent"] >= 50
        assert report["lost"] == 0, report
        assert report["received"] == report["sent"]
        assert report["first_loss_seq"] is None and report["gaps"] == []
        assert report["max_gap_ms"] < 100
        assert probe.proc is not None and probe.proc.returncode == 0
    assert echo.proc is not None and echo.proc.returncode is not None
    assert _no_process_in(pair.a) and _no_process_in(pair.b)


def test_probe_sees_a_cut_link_as_loss_and_a_gap(pair: Pair) -> None:
    with UdpEcho(pair.b, B_IP, UDP_PORT), Probe(pair.a, B_IP, UDP_PORT) as probe:
        wait_for(lambda: probe.stats()["received"] >= 20, 5, "replies before the cut")
        probe.reset()
        assert probe.stats()["lost"] == 0
        wait_for(lambda: probe.stats()["received"] >= 10, 5, "replies in the new window")
        in_ns(pair.b, ["ip", "link", "set", "eth0", "down"])
        at_cut = probe.stats()["sent"]
        # The outage lasts as long as 30 probes take: at least 300 ms.
        wait_for(lambda: probe.stats()["sent"] >= at_cut + 30, 5, "probes into the cut")
        in_ns(pair.b, ["ip", "link", "set", "eth0", "up"])
        at_up = probe.stats()["received"]
        wait_for(lambda: probe.stats()["received"] >= at_up + 20, 10, "replies after the cut")
        report = probe.stop()
    # Not all 30: probes held in the sender's ARP queue during the cut may still
    # be answered, late, once the link is back.
    assert report["lost"] > 0, report
    assert report["received"] + report["lost"] == report["sent"]
    assert 250 < report["max_gap_ms"] < 5000, report
    assert report["first_loss_seq"] >= 10
    assert report["last_loss_seq"] >= report["first_loss_seq"]
    assert any(end - start == pytest.approx(report["max_gap_ms"], abs=0.01)
               for start, end in report["gaps"])


def test_held_connections_echo_until_the_server_dies(pair: Pair) -> None:
    echo = TcpEcho(pair.b, B_IP, TCP_PORT).start()
    try:
        with TcpHolder(pair.a, B_IP, TCP_PORT, 200, source_ip=A_IP) as holder:
            assert (holder.opened, holder.failed) == (200, 0)
            established = in_ns(pair.b, ["ss", "-Htn", "state", "established",
                                         "sport", "=", f":{TCP_PORT}"])
            assert len(established.splitlines()) == 200
            assert all(f"{A_IP}:" in line for line in established.splitlines())
            first = holder.check(5)
            assert (first["ok"], first["failed"], first["failed_ids"]) == (200, 0, [])
            assert holder.check(5)["ok"] == 200  # and again: the echoes stay in step
            echo.stop()
            after = holder.check(2)
            assert (after["ok"], after["failed"], after["open"]) == (0, 200, 0), after
            assert after["failed_ids"] == list(range(200))
    finally:
        echo.stop()
    assert holder.proc is not None and holder.proc.returncode == 0
    assert _no_process_in(pair.a) and _no_process_in(pair.b)


def test_holder_reports_connections_that_cannot_open(pair: Pair) -> None:
    # Nothing listens: every connect is refused.
    with pytest.raises(RuntimeError, match="opened 0 of 3"):
        TcpHolder(pair.a, B_IP, TCP_PORT, 3).start()
    holder = TcpHolder(pair.a, B_IP, TCP_PORT, 3).start(require_all=False)
    try:
        assert (holder.opened, holder.failed) == (0, 3)
        assert holder.check(1)["failed_ids"] == [0, 1, 2]
    finally:
        holder.stop()
    assert _no_process_in(pair.a)
