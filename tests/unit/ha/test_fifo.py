"""keepalived's notify FIFO: parsing lines and reassembling them from reads."""

from __future__ import annotations

import pytest
from vragent.ha.fifo import STATUS, Event, LineBuffer, parse


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('INSTANCE "vpc" MASTER 100', Event("INSTANCE", "vpc", "MASTER", 100)),
        ('INSTANCE "vpc" BACKUP 100\n', Event("INSTANCE", "vpc", "BACKUP", 100)),
        ('INSTANCE "vpc" FAULT 0', Event("INSTANCE", "vpc", "FAULT", 0)),
        ('INSTANCE "vpc" STOP', Event("INSTANCE", "vpc", "STOP", None)),
        ('  INSTANCE  "vpc"  MASTER  254  ', Event("INSTANCE", "vpc", "MASTER", 254)),
        ('INSTANCE "a name" BACKUP 50', Event("INSTANCE", "a name", "BACKUP", 50)),
        ('INSTANCE "" DELETED', Event("INSTANCE", "", "DELETED", None)),
        ('GROUP "pair" MASTER', Event("GROUP", "pair", "MASTER", None)),
        ('MONITOR "vpc" UP', Event("MONITOR", "vpc", "UP", None)),
    ],
)
def test_parse_valid(line: str, expected: Event) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   ",
        "garbage",
        'INSTANCE vpc MASTER 100',  # name not quoted
        'INSTANCE "vpc"',  # no state
        'INSTANCE "vpc MASTER 100',  # unterminated quote
        'INSTANCE "vpc" MASTER high',  # priority not a number
        'INSTANCE "vpc" MASTER 100 extra',
        'FOO "vpc" MASTER 100',  # unknown kind
        'instance "vpc" MASTER 100',  # kinds are upper case
    ],
)
def test_parse_invalid(line: str) -> None:
    assert parse(line) is None


@pytest.mark.parametrize(
    ("state", "status"),
    [("MASTER", "PRIMARY"), ("BACKUP", "BACKUP"), ("FAULT", "FAULT"), ("STOP", "UNKNOWN"),
     ("DELETED", "UNKNOWN")],
)
def test_instance_status(state: str, status: str) -> None:
    event = parse(f'INSTANCE "vpc" {state} 100')
    assert event is not None
    assert event.status == status
    assert STATUS[state] == status


def test_unknown_state_has_no_status() -> None:
    event = parse('INSTANCE "vpc" WEIRD 100')
    assert event is not None and event.status is None


@pytest.mark.parametrize("kind", ["GROUP", "VS", "RS", "MONITOR"])
def test_only_instance_events_are_transitions(kind: str) -> None:
    event = parse(f'{kind} "vpc" MASTER 100')
    assert event is not None and event.kind == kind
    assert event.status is None


def test_line_buffer_one_line_per_feed() -> None:
    buf = LineBuffer()
    assert buf.feed(b'INSTANCE "vpc" BACKUP 100\n') == ['INSTANCE "vpc" BACKUP 100']
    assert buf.feed(b'INSTANCE "vpc" MASTER 100\n') == ['INSTANCE "vpc" MASTER 100']


def test_line_buffer_reassembles_split_lines() -> None:
    buf = LineBuffer()
    assert buf.feed(b'INSTANCE "v') == []
    assert buf.feed(b'pc" MAS') == []
    assert buf.feed(b"TER 100") == []  # no newline yet: not a line
    assert buf.feed(b"\nINSTANCE") == ['INSTANCE "vpc" MASTER 100']
    assert buf.feed(b' "vpc" FAULT 0\n') == ['INSTANCE "vpc" FAULT 0']


def test_line_buffer_several_lines_in_one_feed_in_order() -> None:
    buf = LineBuffer()
    data = b'INSTANCE "vpc" BACKUP 100\nINSTANCE "vpc" MASTER 100\nINSTANCE "vpc" FAULT 0\nINS'
    assert buf.feed(data) == ['INSTANCE "vpc" BACKUP 100', 'INSTANCE "vpc" MASTER 100',
                              'INSTANCE "vpc" FAULT 0']
    assert buf.feed(b'TANCE "vpc" BACKUP 100\n') == ['INSTANCE "vpc" BACKUP 100']


def test_line_buffer_byte_at_a_time() -> None:
    buf = LineBuffer()
    text = b'INSTANCE "vpc" MASTER 100\nINSTANCE "vpc" BACKUP 90\n'
    lines: list[str] = []
    for i in range(len(text)):
        lines += buf.feed(text[i:i + 1])
    assert lines == ['INSTANCE "vpc" MASTER 100', 'INSTANCE "vpc" BACKUP 90']
    assert [parse(line) for line in lines] == [Event("INSTANCE", "vpc", "MASTER", 100),
                                               Event("INSTANCE", "vpc", "BACKUP", 90)]


def test_line_buffer_skips_blank_lines_and_survives_bad_bytes() -> None:
    buf = LineBuffer()
    assert buf.feed(b"\n\n  \n") == []
    lines = buf.feed(b'INSTANCE "vpc\xff" MASTER 100\n')
    assert len(lines) == 1 and "\ufffd" in lines[0]  # replaced, not raised
    assert buf.feed(b"") == []


def test_an_overlong_line_is_dropped_and_never_buffered() -> None:
    from vragent.ha.fifo import MAX_LINE, LineBuffer

    buf = LineBuffer()
    assert buf.feed(b"x" * (MAX_LINE + 10)) == []
    assert len(buf._partial) == 0  # nothing held
    assert buf.feed(b"y" * 100_000) == []
    assert buf.feed(b'tail\nINSTANCE "vpc" MASTER 100\n') == ['INSTANCE "vpc" MASTER 100']
    assert buf.dropped == 1
    assert buf.feed(b"z" * (MAX_LINE + 1) + b'\nINSTANCE "vpc" BACKUP 100\n') == [
        'INSTANCE "vpc" BACKUP 100']
    assert buf.dropped == 2
