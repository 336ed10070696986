"""Merging monitorservice bags: systemvm/debian/opt/cloud/bin/cs_monitorservice.py merge."""

from __future__ import annotations

from tests.conftest import SAMPLE
from tests.unit.builders import apply_bags, load

LAB = load(SAMPLE / "monitor_service.json")


def test_listed_keys_are_stored_and_the_rest_dropped() -> None:
    docs = apply_bags([{**LAB, "disable_monitoring": "false"}])
    assert docs["monitorservice"] == {k: v for k, v in LAB.items() if k not in (
        "type", "delete_from_processed_cache")}


def test_refresh_without_config_keeps_it() -> None:
    # updateRouterHealthChecksConfig sends no services: the start's config stays.
    refresh = {"type": "monitorservice", "health_checks_enabled": False,
               "health_checks_basic_run_interval": 5,
               "health_checks_config": {"gateways": "gatewaysIps=10.0.0.1 "},
               "delete_from_processed_cache": True}
    docs = apply_bags([LAB, refresh])
    stored = docs["monitorservice"]
    assert stored["config"] == LAB["config"]
    assert stored["health_checks_enabled"] is False
    assert stored["health_checks_basic_run_interval"] == 5
    # Not in the refresh: kept from before.
    assert stored["health_checks_advanced_run_interval"] == 10
    assert stored["excluded_health_checks"] == ""
    # A map is replaced whole, never merged key by key.
    assert stored["health_checks_config"] == {"gateways": "gatewaysIps=10.0.0.1 "}


def test_older_advance_key_is_stored_under_the_current_one() -> None:
    docs = apply_bags([{"type": "monitorservice", "health_checks_enabled": True,
                        "health_checks_advance_run_interval": 4}])
    assert docs["monitorservice"] == {"health_checks_enabled": True,
                                      "health_checks_advanced_run_interval": 4}


def test_other_types_untouched() -> None:
    before = apply_bags([load(SAMPLE / "static_routes.json")])
    after = apply_bags([LAB], before)
    assert after["staticroutes"] is before["staticroutes"]
