"""A daemon's change reaches it as its feature declares: by signal, or by its
own command (strongSwan's swanctl --load-all, FRR's frr-reload), never both
(ha/lifecycle.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from vragent.errors import VragentError
from vragent.feature import ConfigFile, Daemon
from vragent.ha.lifecycle import Lifecycle
from vragent.settings import Settings


class Supervisor:
    """Records what the lifecycle asks of supervisord."""

    def __init__(self) -> None:
        self.signals: list[tuple[str, str]] = []

    def signal(self, name: str, sig: str) -> None:
        self.signals.append((name, sig))

    def state(self, name: str) -> str:
        return "RUNNING"


def _lifecycle(tmp_path: Path) -> tuple[Lifecycle, Supervisor]:
    sup = Supervisor()
    life = Lifecycle(Settings(root=tmp_path), sup,  # type: ignore[arg-type]
                     lambda: (None, "UNKNOWN"), lambda why: None, lambda d, e: None)
    return life, sup


def _daemon(tmp_path: Path, **kw: Any) -> Daemon:
    return Daemon(name="toyd", subsystem="toy", argv=("toyd",),
                  files=(ConfigFile(tmp_path / "toyd.conf"),), start_order=50, **kw)


def test_reload_by_signal(tmp_path: Path) -> None:
    life, sup = _lifecycle(tmp_path)
    life.reload(_daemon(tmp_path, reload_signal="USR1"))
    assert sup.signals == [("toyd", "USR1")]


def test_reload_by_command_runs_it_and_sends_no_signal(tmp_path: Path) -> None:
    life, sup = _lifecycle(tmp_path)
    marker = tmp_path / "reloaded"
    life.reload(_daemon(tmp_path, reload_command=("touch", str(marker))))
    assert marker.exists() and sup.signals == []


def test_a_failing_reload_command_is_an_error_naming_it(tmp_path: Path) -> None:
    life, _ = _lifecycle(tmp_path)
    with pytest.raises(VragentError, match=r"^false: exit 1"):
        life.reload(_daemon(tmp_path, reload_command=("false",)))


def test_a_changed_file_is_reloaded_once_and_recorded(tmp_path: Path) -> None:
    life, sup = _lifecycle(tmp_path)
    d = _daemon(tmp_path)
    d.conf.write_text("one\n")
    Settings(root=tmp_path).run_dir.mkdir(parents=True)
    life.last_reload[d.name] = -1e9
    life.ensure(d)  # running, nothing recorded: the change is reloaded
    assert sup.signals == [("toyd", "HUP")]
    life.ensure(d)  # recorded: nothing more to do
    assert sup.signals == [("toyd", "HUP")]
