"""Fit to be master only with a live agent and the daemons that declare a fitness
probe passing it: conntrackd answering (ha/health.py, features/conntrack/daemon.py)."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from vragent.features.conntrack.daemon import STARTUP_GRACE
from vragent.ha import health
from vragent.ha.health import HEARTBEAT_STALE, main
from vragent.settings import Settings
from vragent.system.conntrackd import STATS_RUNTIME


def problems(settings: Settings) -> list[str]:
    return [p.text for p in health.problems(settings)]


def _heartbeat(root: Path, age: float = 0.0) -> Path:
    path = root / "run/vragent/agent.heartbeat"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


def _conntrackd_conf(root: Path, started: bool = True, age: float = 60.0) -> None:
    path = root / "etc/vragent/conntrackd.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("Sync {}\n")
    if started:
        marker = Settings(root=root).daemon_loaded("conntrackd")
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("digest")
        then = time.time() - age
        os.utime(marker, (then, then))


def test_conntrackd_configured_but_not_yet_started_is_not_a_problem(tmp_path: Path) -> None:
    # CloudStack mode: the first tier brings conntrackd's configuration to a
    # running master; the agent starts conntrackd a moment later.
    _heartbeat(tmp_path)
    _conntrackd_conf(tmp_path, started=False)
    assert problems(Settings(root=tmp_path)) == []


def test_conntrackd_just_started_gets_time_to_answer(tmp_path: Path) -> None:
    # Started a moment ago, not answering yet: not a reason to leave mastership.
    _heartbeat(tmp_path)
    _conntrackd_conf(tmp_path, age=1.0)
    assert problems(Settings(root=tmp_path)) == []
    _conntrackd_conf(tmp_path, age=STARTUP_GRACE + 1)
    assert [p for p in problems(Settings(root=tmp_path)) if "conntrackd" in p]


def _listening(tmp_path: Path) -> socket.socket:
    path = tmp_path / "run/vragent/conntrackd.sock"
    path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(4)
    return sock


@pytest.fixture
def conntrackd_socket(tmp_path: Path) -> Iterator[Path]:
    """Where conntrackd's control socket would be, answering as conntrackd
    does (conntrack-tools src/local.c): read the request, write, close."""
    sock = _listening(tmp_path)
    requests: list[bytes] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = sock.accept()
                with conn:
                    requests.append(conn.recv(4))
                    conn.sendall(b"daemon uptime: 1 min\n")

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield sock.getsockname()
    finally:
        sock.close()
    assert all(r == struct.pack("=i", STATS_RUNTIME) for r in requests), requests


def test_conntrackd_that_accepts_but_never_answers_is_a_problem(tmp_path: Path) -> None:
    # Stopped or deadlocked: the kernel still completes the connect.
    _heartbeat(tmp_path)
    _conntrackd_conf(tmp_path)
    with _listening(tmp_path):
        found = problems(Settings(root=tmp_path))
    assert [p for p in found if "conntrackd does not answer (no reply within" in p], found


def test_no_heartbeat_is_a_problem(tmp_path: Path) -> None:
    assert problems(Settings(root=tmp_path)) == ["agent is not running (no heartbeat)"]


def test_fresh_heartbeat_without_conntrackd_configured_is_fit(tmp_path: Path) -> None:
    _heartbeat(tmp_path)
    assert problems(Settings(root=tmp_path)) == []


def test_stale_heartbeat_is_a_problem(tmp_path: Path) -> None:
    _heartbeat(tmp_path, age=HEARTBEAT_STALE + 30)
    found = problems(Settings(root=tmp_path))
    assert len(found) == 1
    assert found[0].startswith("agent heartbeat is ") and found[0].endswith("s old")


def test_heartbeat_just_inside_the_limit_is_fit(tmp_path: Path) -> None:
    _heartbeat(tmp_path, age=HEARTBEAT_STALE - 2)
    assert problems(Settings(root=tmp_path)) == []


def test_conntrackd_configured_but_not_answering_is_a_problem(tmp_path: Path) -> None:
    _heartbeat(tmp_path)
    _conntrackd_conf(tmp_path)
    found = problems(Settings(root=tmp_path))
    assert len(found) == 1 and found[0].startswith("conntrackd does not answer")


def test_conntrackd_socket_file_nobody_listens_on_is_a_problem(tmp_path: Path) -> None:
    # What a killed conntrackd leaves behind.
    _heartbeat(tmp_path)
    _conntrackd_conf(tmp_path)
    path = tmp_path / "run/vragent/conntrackd.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
    assert path.exists()
    assert [p[:26] for p in problems(Settings(root=tmp_path))] == ["conntrackd does not answer"]


def test_conntrackd_answering_is_fit(tmp_path: Path, conntrackd_socket: Path) -> None:
    _heartbeat(tmp_path)
    _conntrackd_conf(tmp_path)
    assert problems(Settings(root=tmp_path)) == []


def test_every_problem_is_listed(tmp_path: Path) -> None:
    _conntrackd_conf(tmp_path)
    found = problems(Settings(root=tmp_path))
    assert len(found) == 2
    assert found[0] == "agent is not running (no heartbeat)"
    assert found[1].startswith("conntrackd does not answer")


def test_main_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(tmp_path)]) == 1
    assert "vragent-health: agent is not running (no heartbeat)" in capsys.readouterr().err
    _heartbeat(tmp_path)
    assert main(["--root", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""


def test_main_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _heartbeat(tmp_path)
    monkeypatch.setenv("VRAGENT_ROOT", str(tmp_path))
    assert main([]) == 0
    monkeypatch.setenv("VRAGENT_ROOT", str(tmp_path / "elsewhere"))
    assert main([]) == 1
