"""The console scripts the management server calls: getRouterMonitorResults.sh and
filesystem_writable_check.py (systemvm/debian/opt/cloud/bin/), run as installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from vragent.features.monitor.results import results_file, write
from vragent.settings import Settings
from vragent.store import Store

from tests.conftest import SAMPLE
from tests.unit.builders import apply_bags, load

BIN = Path(sys.executable).parent


def _run(root: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / script), *args], capture_output=True, text=True,
                          env={**os.environ, "VRAGENT_ROOT": str(root)}, timeout=60,
                          check=False)


def test_false_prints_the_saved_results(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    saved = {"dhcp.service": {"success": "true", "lastUpdate": "1", "lastRunDuration": "2",
                              "message": "service is running"}}
    write(s, "basic", saved, [])
    for args in (("false",), ()):
        proc = _run(tmp_path, "getRouterMonitorResults.sh", *args)
        assert proc.returncode == 0
        assert proc.stdout == ('FAILING CHECKS:\nMONITOR RESULTS:\n{"basic":\n'
                               f'{json.dumps(saved)}\n,"advanced":\n{{}}\n}}\n')


def test_true_runs_basic_then_advanced_first(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    bag = {**load(SAMPLE / "monitor_service.json"), "excluded_health_checks": (
        "cpu_usage_check.py,gateways_check.py,iptables_check.py")}
    Store(s).commit(apply_bags([bag]), "test")
    s.scripts_signature.parent.mkdir(parents=True)
    s.scripts_signature.write_text("ffffffffffffffffffffffffffffffff\n")  # as an image records it
    proc = _run(tmp_path, "getRouterMonitorResults.sh", "true")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "FAILING CHECKS:"
    # Basic first: the sample's scriptsVersion is not what this router records.
    assert lines[1] == "router_version_check.py"
    # This host has no router: the advanced checks of its files fail.
    assert lines[2].startswith("dhcp_check.py,dns_check.py")
    assert lines[3] == "MONITOR RESULTS:"
    basic = json.loads(results_file(s, "basic").read_text())
    advanced = json.loads(results_file(s, "advanced").read_text())
    assert "memory_usage_check.py" in basic and "dhcp_check.py" in advanced
    assert f"{json.dumps(basic)}" in lines and f"{json.dumps(advanced)}" in lines


def test_a_broken_store_still_prints_and_exits_0(tmp_path: Path) -> None:
    revisions = Settings(root=tmp_path).state_dir / "revisions"
    revisions.mkdir(parents=True)
    (revisions / "00000001.json").write_text("{torn")
    proc = _run(tmp_path, "getRouterMonitorResults.sh", "true")
    assert proc.returncode == 0
    assert "basic checks: revision 1: cannot be read" in proc.stderr
    assert proc.stdout.startswith("FAILING CHECKS:\nMONITOR RESULTS:\n")


def test_filesystem_writable(tmp_path: Path) -> None:
    proc = _run(tmp_path, "filesystem_writable_check.py")
    assert (proc.returncode, proc.stdout) == (0, "file system is writable\n")
