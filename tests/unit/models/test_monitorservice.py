"""monitor_service.json (type monitorservice): core/.../virtualnetwork/model/MonitorService.java
as SetMonitorServiceConfigItem fills it."""

from __future__ import annotations

from typing import Any

import pytest
from vragent.bags import parse_bag
from vragent.features.monitor.model import MonitorService
from vragent.models.limits import MAX_STRING

from tests.conftest import REFERENCE, SAMPLE
from tests.unit.builders import load

from .checks import assert_rejected

REF = load(REFERENCE / "monitorservice-1.json")
LAB = load(SAMPLE / "monitor_service.json")


def _bag(**fields: Any) -> dict[str, Any]:
    return {"type": "monitorservice", "health_checks_enabled": True, **fields}


def test_reference_accepted_with_its_services() -> None:
    # SetMonitorServiceCommandTest's expected configuration string.
    bag = parse_bag(REF)
    assert isinstance(bag, MonitorService)
    assert bag.services() == [("service", "process", "name", "file"),
                              ("service_2", "process_2", "name_2", "file_2")]
    assert bag.health_checks_enabled is False


def test_upstream_shaped_sample_accepted_unchanged() -> None:
    bag = parse_bag(LAB)
    assert isinstance(bag, MonitorService)
    assert bag.model_dump(exclude_unset=True) == LAB
    assert [s[0] for s in bag.services()] == ["ssh", "dhcp"]
    assert bag.advanced_run_interval == 10
    assert bag.excluded() == []


def test_refresh_variant_without_config() -> None:
    # updateRouterHealthChecksConfig: services null, so no "config" key.
    bag = parse_bag(_bag(health_checks_basic_run_interval=3,
                         health_checks_advanced_run_interval=10,
                         delete_from_processed_cache=True))
    assert isinstance(bag, MonitorService)
    assert bag.config is None and bag.services() == []


def test_older_advance_key_is_read() -> None:
    # @06c53e2: healthChecksAdvanceRunInterval.
    bag = parse_bag(_bag(health_checks_advance_run_interval=7))
    assert isinstance(bag, MonitorService)
    assert bag.advanced_run_interval == 7
    both = parse_bag(_bag(health_checks_advance_run_interval=7,
                          health_checks_advanced_run_interval=9))
    assert isinstance(both, MonitorService) and both.advanced_run_interval == 9


def test_excluded_checks_are_a_stripped_csv() -> None:
    bag = parse_bag(_bag(excluded_health_checks=" dns_check.py,,gateways_check.py "))
    assert isinstance(bag, MonitorService)
    assert bag.excluded() == ["dns_check.py", "gateways_check.py"]


def test_disable_monitoring_is_kept_as_sent() -> None:
    bag = parse_bag(_bag(disable_monitoring="false"))
    assert isinstance(bag, MonitorService) and bag.disable_monitoring == "false"


def test_health_checks_enabled_is_required() -> None:
    # MonitorService(config, disableMonitoring, healthChecksEnabled) always sets it.
    assert_rejected({"type": "monitorservice"}, "health_checks_enabled", "required")


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("health_checks_enabled", "true", "true or false"),
    ("health_checks_basic_run_interval", -1, "greater than or equal to 0"),
    ("health_checks_basic_run_interval", "3", "whole number"),
    ("health_checks_basic_run_interval", True, "whole number"),
    ("health_checks_advanced_run_interval", 2**31, "less than or equal"),
    ("health_checks_advance_run_interval", 1.5, "whole number"),
    ("config", "[ssh]:processname=sshd:servicename=ssh:,", "is not"),
    ("config", "[ssh]:processname=sshd;reboot:servicename=ssh:pidfile=/p:,", "is not"),
    ("config", "[ssh]:processname=sshd:servicename=ssh:pidfile=/p\n:,", "control character"),
    ("excluded_health_checks", "dns_check.py,rm -rf", "not a check name"),
    ("health_checks_config", {"virtualMachines": "x" * (MAX_STRING + 1)}, "longer than"),
    ("health_checks_config", {"bad key": "x"}, "not a name"),
    ("health_checks_config.gateways", {"gateways": 5}, "must be a string"),
    ("disable_monitoring", "no", "'true' or 'false'"),
    ("delete_from_processed_cache", "yes", "true or false"),
])
def test_bad_values_rejected(field: str, value: Any, fragment: str) -> None:
    assert_rejected(_bag(**{field.split(".")[0]: value}), field, fragment)


def test_the_servers_opaque_values_are_kept_as_sent() -> None:
    """A 4.20 server's routerVersion is a command's output, newline included
    (VirtualNetworkApplianceManagerImpl.getRouterVersionHealthChecksData):
    kept as sent; the checks strip it as getHealthChecksData does."""
    sent = {"routerVersion": "templateVersion=Cloudstack Release 4.20.0 Thu Aug  8 10:11:12 "
                             "UTC 2024,scriptsVersion=0123456789abcdef0123456789abcdef\n",
            "virtualMachines": "vmName=a\x1b,ip=1.2.3.4;"}
    bag = parse_bag(_bag(health_checks_config=sent))
    assert isinstance(bag, MonitorService) and bag.health_checks_config == sent


def test_too_many_services_rejected() -> None:
    config = "".join(f"[s{i}]:processname=p:servicename=s:pidfile=f:," for i in range(65))
    assert_rejected(_bag(config=config), "config", "at most 64")
