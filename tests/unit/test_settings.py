"""Settings: every path hangs off one root."""

from __future__ import annotations

from pathlib import Path

import pytest
from vragent.settings import Settings


def test_paths_under_root(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    for path in (s.state_dir, s.run_dir, s.conf_dir, s.cmdline_file, s.lock_file,
                 s.applied_netfilter):
        assert path.is_relative_to(tmp_path)
    assert s.lock_file.parent == s.state_dir
    assert s.cmdline_file == tmp_path / "var/cache/cloud/cmd_line.json"
    assert Settings().state_dir == Path("/var/lib/vragent")


def test_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VRAGENT_ROOT", raising=False)
    assert Settings.from_env().root == Path("/")
    monkeypatch.setenv("VRAGENT_ROOT", str(tmp_path))
    assert Settings.from_env().root == tmp_path
    assert Settings.from_env("/other").root == Path("/other")  # explicit wins
