"""vragent-launch: stale files removed, then the daemon's described command exec'd."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from vragent.ha import launch
from vragent.settings import Settings
from vragent.supervised import registry


@pytest.mark.parametrize("name", ["conntrackd", "keepalived", "dnsmasq", "metadata"])
def test_launch_removes_stale_files_and_execs(name: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    d = registry(Settings(root=tmp_path)).get(name)
    for path in d.stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("stale\n")
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(os, "execvp", lambda f, argv: calls.append((f, argv)))
    launch.main(["--root", str(tmp_path), name])
    assert calls == [(d.argv[0], list(d.argv))]
    assert not any(p.exists() for p in d.stale)


def test_unknown_daemon_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        launch.main(["--root", str(tmp_path), "sshd"])
    assert exc.value.code == 2
