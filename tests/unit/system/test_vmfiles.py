"""The files the metadata service reads: only changed VMs rewritten, secrets root-only."""

from __future__ import annotations

import json
from pathlib import Path

from vragent.features.vmdata.daemon import PASSWORDS as PASSWORDS_FILE
from vragent.features.vmdata.daemon import VMDATA as VMDATA_DIR
from vragent.features.vmdata.daemon import VMDATA_INDEX
from vragent.settings import Settings
from vragent.system import vmfiles


def test_only_changed_vms_are_written(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    where, index = VMDATA_DIR.of(s), VMDATA_INDEX.of(s)
    vms = {f"10.1.{i // 250}.{i % 250 + 1}": json.dumps({"metadata": {"n": str(i)}})
           for i in range(500)}
    assert len(vmfiles.sync_vms(where, index, vms)) == 500
    assert vmfiles.sync_vms(where, index, vms) == []
    changed = dict(vms, **{"10.1.0.1": json.dumps({"metadata": {"n": "x"}})})
    del changed["10.1.0.2"]
    assert vmfiles.sync_vms(where, index, changed) == ["vm 10.1.0.2 data removed",
                                          "vm 10.1.0.1 data written"]
    assert not vmfiles.vm_file(where, "10.1.0.2").exists()
    assert json.loads(vmfiles.vm_file(where, "10.1.0.1").read_text())["metadata"]["n"] == "x"
    # A file changed behind our back is not noticed by digest, but one deleted is.
    vmfiles.vm_file(where, "10.1.0.3").unlink()
    assert vmfiles.sync_vms(where, index, changed) == ["vm 10.1.0.3 data written"]


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    where, index = VMDATA_DIR.of(s), VMDATA_INDEX.of(s)
    assert vmfiles.sync_vms(where, index, {"10.0.0.5": "{}"}, dry_run=True) == [
        "vm 10.0.0.5 data written"]
    assert not VMDATA_DIR.of(s).exists()
    assert vmfiles.sync_passwords(PASSWORDS_FILE.of(s), {"10.0.0.5": "pw"}, dry_run=True)
    assert not PASSWORDS_FILE.of(s).exists()


def test_password_file_is_root_only_from_the_first_byte(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    assert vmfiles.sync_passwords(PASSWORDS_FILE.of(s), {"10.0.0.5": "pw"})
    assert PASSWORDS_FILE.of(s).stat().st_mode & 0o777 == 0o600
    assert not vmfiles.sync_passwords(PASSWORDS_FILE.of(s), {"10.0.0.5": "pw"})
    assert vmfiles.sync_passwords(PASSWORDS_FILE.of(s), {})
    assert not PASSWORDS_FILE.of(s).exists()
