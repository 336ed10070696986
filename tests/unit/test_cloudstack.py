"""CloudStack's entry points, the parts that touch no router: arguments and
archiving (merge.py QueueFile.__moveFile)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from vragent import cloudstack


def test_a_processed_file_is_gzipped_and_a_name_with_one_dot_gets_a_uuid(
        tmp_path: Path) -> None:
    processed = tmp_path / "processed"
    for name in ("monitor_service.json.3f0c", "cmd_line.json"):
        path = tmp_path / name
        path.write_text("{}")
        cloudstack._archive(path, processed, compress=True)
        assert not path.exists()
    names = sorted(p.name for p in processed.iterdir())
    assert names[1] == "monitor_service.json.3f0c.gz"
    assert re.fullmatch(r"cmd_line\.json\.[0-9a-f-]{36}\.gz", names[0])
    assert gzip.decompress((processed / names[1]).read_bytes()) == b"{}"


def test_a_batch_is_archived_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "VR-1.cfg"
    path.write_text("#x\n")
    cloudstack._archive(path, tmp_path / "processed", compress=False)
    assert (tmp_path / "processed/VR-1.cfg").read_text() == "#x\n"


@pytest.mark.parametrize("args", [[], ["a", "b", "c"], ["../x"], ["a/b"], [".."], [""]])
def test_update_config_refuses_what_is_not_one_file_name(
        args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VRAGENT_ROOT", str(tmp_path))
    assert cloudstack.update_config(args) == 1
    assert "[ERROR]" in capsys.readouterr().err


def test_a_missing_file_already_processed_is_a_success(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRAGENT_ROOT", str(tmp_path))
    processed = tmp_path / "var/cache/cloud/processed"
    processed.mkdir(parents=True)
    (processed / "ips.json.1.gz").write_bytes(b"")
    assert cloudstack.update_config(["ips.json.1"]) == 0
    assert cloudstack.update_config(["ips.json.2"]) == 1


def test_vr_cfg_wants_dash_c_and_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRAGENT_ROOT", str(tmp_path))
    assert cloudstack.vr_cfg([]) == 1
    assert cloudstack.vr_cfg(["-x", "f"]) == 1
    assert cloudstack.vr_cfg(["-c", str(tmp_path / "missing.cfg")]) == 1
