"""The traffic tools' pure accounting: gaps between replies, loss, windows."""

from __future__ import annotations

import pytest
from vragent_lab.traffic import (
    PROBE_PACKET,
    ProbeWindow,
    gaps,
    in_flight_grace,
    max_gap,
    parse_command,
)


def test_max_gap_is_the_longest_interval_between_consecutive_arrivals() -> None:
    assert max_gap([0.0, 0.01, 0.02, 0.5, 0.51]) == pytest.approx(0.48)


def test_max_gap_needs_two_arrivals() -> None:
    assert max_gap([]) == 0.0
    assert max_gap([1.0]) == 0.0


def test_gaps_keeps_only_intervals_longer_than_the_threshold() -> None:
    arrivals = [0.0, 0.01, 0.05, 0.06, 0.3, 0.31]
    assert gaps(arrivals, 0.05) == [(0.06, 0.3)]
    # Exactly the threshold is not a gap: the spec says longer than.
    assert gaps([0.0, 0.05], 0.05) == []
    assert gaps([], 0.05) == []


def _window_with_outage() -> ProbeWindow:
    """Probes every 10 ms from t=100 s; replies 0-9 come back, 10-29 are lost, 30-39 return."""
    w = ProbeWindow(0.01, start=100.0)
    for seq in range(40):
        sent = 100.0 + seq * 0.01
        w.sent_one(seq, sent)
        if not 10 <= seq < 30:
            w.replied(seq, sent + 0.001)
    return w


def test_report_counts_loss_and_the_outage() -> None:
    report = _window_with_outage().report(now=101.0, grace=0.0)
    assert report["sent"] == 40
    assert report["received"] == 20
    assert report["lost"] == 20
    assert report["in_flight"] == 0
    assert (report["first_loss_seq"], report["last_loss_seq"]) == (10, 29)
    assert report["max_gap_ms"] == pytest.approx(210.0)
    [(start, end)] = report["gaps"]
    assert start == pytest.approx(91.0)
    assert end == pytest.approx(301.0)


def test_recent_unanswered_probes_are_in_flight_not_lost() -> None:
    w = ProbeWindow(0.01, start=0.0)
    w.sent_one(0, 0.0)
    w.replied(0, 0.001)
    w.sent_one(1, 0.01)
    w.sent_one(2, 0.02)
    grace = in_flight_grace(0.01)
    report = w.report(now=0.02 + grace / 2, grace=grace)
    assert (report["lost"], report["in_flight"]) == (0, 2)
    assert report["first_loss_seq"] is None
    later = w.report(now=0.015 + grace, grace=grace)
    assert (later["lost"], later["in_flight"], later["first_loss_seq"]) == (1, 1, 1)


def test_duplicate_and_foreign_replies_are_ignored() -> None:
    w = ProbeWindow(0.01, start=0.0)
    w.sent_one(0, 0.0)
    assert w.replied(0, 0.001)
    assert not w.replied(0, 0.002)
    assert not w.replied(7, 0.003)
    assert w.report(now=1.0, grace=0.0)["received"] == 1


def test_a_new_window_numbers_losses_from_its_first_probe() -> None:
    w = ProbeWindow(0.01, start=5.0, first_seq=500)
    w.sent_one(500, 5.0)
    w.sent_one(501, 5.01)
    w.replied(501, 5.011)
    report = w.report(now=6.0, grace=0.0)
    assert (report["first_loss_seq"], report["last_loss_seq"]) == (0, 0)


def test_no_replies_means_no_gap_but_full_loss() -> None:
    w = ProbeWindow(0.01, start=0.0)
    for seq in range(5):
        w.sent_one(seq, seq * 0.01)
    report = w.report(now=1.0, grace=0.0)
    assert (report["received"], report["lost"], report["max_gap_ms"], report["gaps"]) == (
        0, 5, 0.0, [])


def test_probe_packet_round_trips() -> None:
    token = b"12345678"
    assert PROBE_PACKET.unpack(PROBE_PACKET.pack(token, 42, 1.5)) == (token, 42, 1.5)


def test_parse_command() -> None:
    assert parse_command("check 2.5\n") == ("check", ["2.5"])
    assert parse_command("  STATS ") == ("stats", [])
    assert parse_command("\n") == ("", [])
