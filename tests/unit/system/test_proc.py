"""Kernel state read from /proc and statvfs (vragent.system.proc)."""

from __future__ import annotations

from pathlib import Path

import pytest
from vragent.system import proc


def test_cpu_times_of_this_host_move_forward() -> None:
    idle0, total0 = proc.cpu_times()
    idle1, total1 = proc.cpu_times()
    assert 0 <= idle0 <= total0
    assert total1 >= total0 and idle1 >= idle0


def test_cpu_times_count_iowait_as_busy_and_guest_time_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 5 50 800 20 1 2 3 40 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n")
    monkeypatch.setattr(proc, "STAT", stat)
    assert proc.cpu_times() == (800, 981)


def test_disk_and_read_only_of_a_path_not_made_yet(tmp_path: Path) -> None:
    total, free = proc.disk(tmp_path / "not/yet")
    assert total >= free > 0
    assert proc.read_only(tmp_path / "not/yet") is False
