"""Running one kind of checks (systemvm/debian/root/monitorServices.py main) from
the stored monitorservice bag, and cs/CsMonitor.py's schedule."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from vragent import __version__
from vragent.features.dhcp.daemon import CONF as DNSMASQ_CONF
from vragent.features.monitor import runner
from vragent.features.monitor.checks import Check, Context, failed
from vragent.features.monitor.results import failing_file, results_file
from vragent.settings import Settings
from vragent.store import Store

from tests.conftest import SAMPLE
from tests.unit.builders import apply_bags, load, sample_bag

LAB = load(SAMPLE / "monitor_service.json")
# What a run on the unit-test host can check: no gateways to ping, no nft table.
DATA = {
    "virtualMachines": LAB["health_checks_config"]["virtualMachines"],
    "systemThresholds": "minDiskNeeded=1,maxCpuUsage=100,maxMemoryUsage=100;",
    "routerVersion": f"scriptsVersion={__version__}",
}


def _store(root: Path, *bags: dict[str, Any]) -> Settings:
    s = Settings(root=root)
    Store(s).commit(apply_bags([sample_bag("cmd_line.json"), *bags]), "test")
    return s


def _bag(**fields: Any) -> dict[str, Any]:
    return {**LAB, "health_checks_config": DATA, "excluded_health_checks": "cpu_usage_check.py",
            **fields}


def test_basic_run_writes_upstreams_result_file(tmp_path: Path) -> None:
    s = _store(tmp_path, _bag())
    written = runner.run(s, "basic")
    on_disk = json.loads(results_file(s, "basic").read_text())
    assert on_disk == written
    # Excluded: not run at all. Advanced checks: not in a basic run.
    assert sorted(written) == ["disk_space_check.py", "gateways_check.py", "lastRun",
                               "memory_usage_check.py", "router_version_check.py"]
    for name, result in written.items():
        if name == "lastRun":
            continue
        assert set(result) == {"success", "lastUpdate", "lastRunDuration", "message"}
        assert all(isinstance(v, str) for v in result.values())
        assert result["success"] == "true", (name, result)
        assert re.fullmatch(r"\d{13}", result["lastUpdate"])
        float(result["lastRunDuration"])
    assert written["gateways_check.py"]["message"] == "No gateways data available, skipping"
    last = written["lastRun"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?", last["start"])
    assert float(last["duration"]) >= 0
    assert not failing_file(s, "basic").exists()


def test_advanced_run_lists_the_failing_checks(tmp_path: Path) -> None:
    # No dnsmasq files and no netfilter applied on this host: those fail.
    s = _store(tmp_path, _bag())
    written = runner.run(s, "advanced")
    assert failing_file(s, "advanced").read_text() == (
        "dhcp_check.py,dns_check.py,netfilter_check")
    assert written["dhcp_check.py"]["success"] == "false"
    assert written["haproxy_check.py"] == {**written["haproxy_check.py"], "success": "true",
                                           "message": "No data provided to check, skipping"}


def test_disabled_checks_do_not_run_but_services_do(tmp_path: Path) -> None:
    s = _store(tmp_path, _bag(health_checks_enabled=False))
    dnsmasq_conf = DNSMASQ_CONF.of(s)
    dnsmasq_conf.parent.mkdir(parents=True)
    dnsmasq_conf.write_text("configured\n")
    written = runner.run(s, "basic")
    # monitorServices.py: monitProcess always, the health_checks/ scripts only when enabled.
    assert sorted(written) == ["dhcp.service", "lastRun"]
    assert written["dhcp.service"]["success"] == "false"  # no supervisord here
    assert failing_file(s, "basic").read_text() == "dhcp.service"
    assert sorted(runner.run(s, "advanced")) == ["lastRun"]


def test_without_a_bag_only_the_last_run_is_written(tmp_path: Path) -> None:
    s = _store(tmp_path)
    assert sorted(runner.run(s, "basic")) == ["lastRun"]
    assert runner.results(s)["basic"]["lastRun"]


def test_excluded_checks_are_not_run(tmp_path: Path) -> None:
    s = _store(tmp_path, _bag(excluded_health_checks="dhcp_check.py, dns_check.py,netfilter_check"))
    written = runner.run(s, "advanced")
    assert not {"dhcp_check.py", "dns_check.py", "netfilter_check"} & set(written)
    assert not failing_file(s, "advanced").exists()


def test_a_check_that_breaks_is_a_failure_not_the_end_of_the_run(tmp_path: Path) -> None:
    def broken(ctx: Context) -> Any:
        raise OSError(5, "Input/output error")

    result, start, end = runner._timed(Check("x.py", "basic", broken),
                                       Context(Settings(root=tmp_path), None, False, "UNKNOWN"))
    assert result == failed("check failed: OSError: [Errno 5] Input/output error")
    assert end >= start


def test_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown kind of checks 'advance'"):
        runner.run(Settings(root=tmp_path), "advance")  # type: ignore[arg-type]


def test_intervals(tmp_path: Path) -> None:
    # No bag yet: CsMonitor never ran, no cron.
    assert runner.intervals(_store(tmp_path / "a")) == (0, 0, False)
    assert runner.intervals(_store(tmp_path / "b", LAB)) == (3, 10, True)
    # cs/CsMonitor.py's defaults: basic 3, advanced 0 (never).
    bare = {"type": "monitorservice", "health_checks_enabled": False}
    assert runner.intervals(_store(tmp_path / "c", bare)) == (3, 0, False)
    old = {**bare, "health_checks_advance_run_interval": 15,
           "health_checks_basic_run_interval": 0}
    assert runner.intervals(_store(tmp_path / "d", old)) == (0, 15, False)
