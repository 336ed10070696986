"""supervisord's watchdog (ha/watchdog.py): the file keepalived tracks, written
only when the verdict changes, with conntrackd given a restart's grace."""

from __future__ import annotations

import os
import time
from pathlib import Path

from vragent.features.conntrack.daemon import CONF as CONNTRACKD_CONF
from vragent.features.conntrack.daemon import FALL as CONNTRACKD_FALL
from vragent.ha.watchdog import Watchdog, write_if_changed
from vragent.settings import Settings


def _heartbeat(root: Path, age: float = 0.0) -> None:
    path = Settings(root=root).agent_heartbeat
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    then = time.time() - age
    os.utime(path, (then, then))


def _conntrackd_configured_but_dead(root: Path) -> None:
    s = Settings(root=root)
    CONNTRACKD_CONF.of(s).parent.mkdir(parents=True, exist_ok=True)
    CONNTRACKD_CONF.of(s).write_text("Sync {}\n")
    s.daemon_loaded("conntrackd").parent.mkdir(parents=True, exist_ok=True)
    s.daemon_loaded("conntrackd").write_text("digest")
    then = time.time() - 60
    os.utime(s.daemon_loaded("conntrackd"), (then, then))


def test_fit_router_writes_zero(tmp_path: Path) -> None:
    _heartbeat(tmp_path)
    w = Watchdog(Settings(root=tmp_path))
    assert w.tick() == ""
    assert Settings(root=tmp_path).vrrp_health_file.read_text() == "0\n"


def test_stale_heartbeat_takes_the_router_out_at_once(tmp_path: Path) -> None:
    _heartbeat(tmp_path, age=30)
    s = Settings(root=tmp_path)
    w = Watchdog(s)
    assert "heartbeat" in w.tick()
    assert s.vrrp_health_file.read_text() == "1\n"
    assert "heartbeat" in s.vrrp_health_reason.read_text()
    _heartbeat(tmp_path)  # the agent is back
    assert w.tick() == ""
    assert s.vrrp_health_file.read_text() == "0\n"
    assert s.vrrp_health_reason.read_text() == ""


def test_no_heartbeat_yet_right_after_supervisord_starts_is_fine(tmp_path: Path) -> None:
    w = Watchdog(Settings(root=tmp_path))
    assert w.check() == ""
    w.started -= 60  # half a minute on, still no agent
    assert "not running" in w.check()


def test_conntrackd_down_counts_only_after_failing_ticks(tmp_path: Path) -> None:
    _heartbeat(tmp_path)
    _conntrackd_configured_but_dead(tmp_path)
    s = Settings(root=tmp_path)
    w = Watchdog(s)
    # A restart's state changes come in a burst: they never count.
    for _ in range(5):
        assert w.check() == ""
    for _ in range(CONNTRACKD_FALL - 1):
        assert w.tick() == ""
    assert "conntrackd" in w.tick()
    assert s.vrrp_health_file.read_text() == "1\n"


def test_unchanged_verdict_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "f"
    assert write_if_changed(path, "0\n")
    inode = path.stat().st_ino
    assert not write_if_changed(path, "0\n")
    assert path.stat().st_ino == inode  # keepalived sees no event
    assert write_if_changed(path, "1\n")
