"""The pair state a router reached, and the status line CloudStack's poller reads."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from vragent.pairstate import STATUSES, HaState, agent_alive, status_line


@pytest.fixture
def live_agent(tmp_path: Path) -> Iterator[Path]:
    """A pid file naming a live process whose command line says ``vragent``."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "vragent"])
    try:
        pid_file = tmp_path / "agent.pid"
        pid_file.write_text(f"{proc.pid}\n")
        yield pid_file
    finally:
        proc.kill()
        proc.wait()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: no such process any more (not even a zombie)
    return proc.pid


def test_default_state() -> None:
    state = HaState()
    assert (state.status, state.previous, state.transitions, state.dual_master) == (
        "UNKNOWN", "UNKNOWN", 0, "")
    assert state.status in STATUSES


def test_save_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "var/lib/vragent/ha-state.json"  # parents created on save
    state = HaState(status="PRIMARY", previous="BACKUP", since=1700000000.5,
                    reason="keepalived: MASTER", transitions=3, dual_master="adverts from peer")
    state.save(path)
    assert HaState.load(path) == state
    assert json.loads(path.read_text())["status"] == "PRIMARY"
    # Saved again: replaced whole, no temporary file left behind.
    HaState(status="BACKUP").save(path)
    assert HaState.load(path).status == "BACKUP"
    assert [p.name for p in path.parent.iterdir()] == ["ha-state.json"]


def test_missing_file_loads_the_default(tmp_path: Path) -> None:
    state = HaState.load(tmp_path / "absent.json")
    assert state.status == "UNKNOWN" and state.reason == "not started"


@pytest.mark.parametrize("text", ["", "{", "not json", '{"status": "PRIMARY"', "\x00\x01"])
def test_corrupt_file_loads_the_default(tmp_path: Path, text: str) -> None:
    path = tmp_path / "ha-state.json"
    path.write_text(text)
    assert HaState.load(path).status == "UNKNOWN"


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    # A file written by a newer agent still loads.
    path = tmp_path / "ha-state.json"
    path.write_text(json.dumps({"status": "BACKUP", "transitions": 2, "from_the_future": 1}))
    state = HaState.load(path)
    assert (state.status, state.transitions) == ("BACKUP", 2)


def test_status_line_unknown_without_pid_file(tmp_path: Path) -> None:
    state_file = tmp_path / "ha-state.json"
    HaState(status="PRIMARY").save(state_file)
    assert status_line(state_file, tmp_path / "agent.pid") == "Status: UNKNOWN"


@pytest.mark.parametrize("content", ["", "abc", "-", "12 34"])
def test_status_line_unknown_with_unreadable_pid(tmp_path: Path, content: str) -> None:
    state_file = tmp_path / "ha-state.json"
    HaState(status="PRIMARY").save(state_file)
    pid_file = tmp_path / "agent.pid"
    pid_file.write_text(content)
    assert agent_alive(pid_file) is False
    assert status_line(state_file, pid_file) == "Status: UNKNOWN"


def test_status_line_unknown_when_the_agent_is_dead(tmp_path: Path) -> None:
    state_file = tmp_path / "ha-state.json"
    HaState(status="PRIMARY").save(state_file)
    pid_file = tmp_path / "agent.pid"
    pid_file.write_text(str(_dead_pid()))
    assert agent_alive(pid_file) is False
    assert status_line(state_file, pid_file) == "Status: UNKNOWN"


def test_status_line_unknown_when_the_pid_is_another_program(tmp_path: Path) -> None:
    # A pid reused after the agent died must not vouch for the stale state.
    sleep = shutil.which("sleep")
    assert sleep is not None
    proc = subprocess.Popen([sleep, "30"])
    try:
        state_file = tmp_path / "ha-state.json"
        HaState(status="PRIMARY").save(state_file)
        pid_file = tmp_path / "agent.pid"
        pid_file.write_text(str(proc.pid))
        assert agent_alive(pid_file) is False
        assert status_line(state_file, pid_file) == "Status: UNKNOWN"
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("status", ["PRIMARY", "BACKUP", "FAULT"])
def test_status_line_shows_the_state_of_a_live_agent(tmp_path: Path, live_agent: Path,
                                                     status: str) -> None:
    state_file = tmp_path / "ha-state.json"
    HaState(status=status).save(state_file)
    assert agent_alive(live_agent) is True
    assert status_line(state_file, live_agent) == f"Status: {status}"


def test_status_line_live_agent_without_state_file(tmp_path: Path, live_agent: Path) -> None:
    assert status_line(tmp_path / "absent.json", live_agent) == "Status: UNKNOWN"


@pytest.mark.parametrize("text", ["[]", '"x"', "null", "{not json"])
def test_a_state_file_that_is_not_an_object_reads_as_unknown(tmp_path: Path, text: str) -> None:
    path = tmp_path / "ha-state.json"
    path.write_text(text)
    assert HaState.load(path).status == "UNKNOWN"
