"""A tool diagnostics.py runs is stopped within its time budget and what it
printed is kept: the management server waits 60 s for the answer
(VirtualRoutingResource.execute(DiagnosticsCommand)), so a traceroute into
silence must still answer in time. Real processes, no network."""

from __future__ import annotations

import time

import pytest
from vragent.system.diagnostics import run_tool


def test_a_tool_that_finishes_keeps_its_output_and_exit_code() -> None:
    ran = run_tool(["sh", "-c", "echo out; echo err >&2; exit 3"], 10)
    assert (ran.stdout, ran.stderr, ran.code, ran.stopped) == ("out\n", "err\n", 3, False)


def test_past_the_budget_a_tool_is_interrupted_and_its_output_kept() -> None:
    started = time.monotonic()
    ran = run_tool(["sh", "-c", "echo begun; exec sleep 30"], 0.5)
    assert time.monotonic() - started < 5
    assert ran.stopped and ran.stdout == "begun\n"
    assert ran.code == 130  # SIGINT, as a shell reports it


def test_a_tool_that_ignores_the_interrupt_is_killed() -> None:
    started = time.monotonic()
    ran = run_tool(["sh", "-c", "trap '' INT; echo begun; sleep 30 & wait; sleep 30"], 0.5)
    assert time.monotonic() - started < 8
    assert ran.stopped and ran.stdout.startswith("begun") and ran.code == 137  # SIGKILL


def test_a_missing_tool_is_an_error_the_entry_point_answers() -> None:
    with pytest.raises(FileNotFoundError):
        run_tool(["no-such-diagnostics-tool"], 1)
