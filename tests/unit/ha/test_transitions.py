"""What a router does on each keepalived transition: conntrack-tools' sequence,
as conntrackd's feature declares it, and the pair's own steps."""

from __future__ import annotations

from pathlib import Path

import pytest
from vragent.ha import transitions
from vragent.ha.transitions import Step
from vragent.settings import Settings
from vragent.supervised import registry

CONF = "/srv/r1/etc/vragent/conntrackd.conf"


def steps(status: str) -> list[Step]:
    return transitions.steps(status, registry(Settings(root=Path("/srv/r1"))))


def _described(status: str) -> list[str]:
    return [s.describe() for s in steps(status)]


def test_primary_commits_resyncs_forgets_unresolved_neighbours_starts_services_announces(
        ) -> None:
    def ctl(arg: str, critical: bool = False) -> Step:
        return Step("command", ("conntrackd", "-C", CONF, arg), critical, "conntrackd",
                    f"conntrackd {arg}")

    assert steps("PRIMARY") == [
        Step("unresolved-neighbours", ("flush",)),
        ctl("-c", critical=True),
        ctl("-f"),
        ctl("-R"),
        ctl("-B"),
        Step("primary-services", ("start",)),
        Step("garp"),
    ]


def test_no_daemon_declares_steps_then_only_the_pairs_own() -> None:
    assert [s.describe() for s in transitions.steps("PRIMARY")] == [
        "unresolved-neighbours flush", "primary-services start", "garp"]
    assert [s.describe() for s in transitions.steps("BACKUP")] == ["primary-services stop"]


def test_backup_stops_services_then_ages_out_then_asks_for_a_resync() -> None:
    assert _described("BACKUP") == [
        "primary-services stop",
        "conntrackd -t",
        "conntrackd -n",
    ]


def test_fault_stops_services_and_ages_out_without_a_resync() -> None:
    assert _described("FAULT") == ["primary-services stop", "conntrackd -t"]


@pytest.mark.parametrize("status", ["UNKNOWN", "", "MASTER"])
def test_anything_else_only_stops_services(status: str) -> None:
    assert _described(status) == ["primary-services stop"]


def test_only_a_primary_commits_starts_services_or_announces() -> None:
    for status in ("BACKUP", "FAULT", "UNKNOWN"):
        done = _described(status)
        assert "conntrackd -c" not in done
        assert "primary-services start" not in done
        assert "garp" not in done


def test_describe() -> None:
    assert Step("command", ("conntrackd", "-C", CONF, "-c"), label="conntrackd -c").describe() \
        == "conntrackd -c"
    assert Step("garp").describe() == "garp"
    assert Step("primary-services", ("start", "dnsmasq")).describe() == (
        "primary-services start dnsmasq")


def test_only_what_the_new_state_needs_at_once_comes_before_announcing_it() -> None:
    # The commit (the peer's connections) before PRIMARY is reported, and
    # nothing before it (a neighbour flush there delayed it by up to 54 ms
    # under load: a planned switchover lost packets); the services of
    # addresses no longer held stopped before BACKUP or FAULT is.
    assert [s.describe() for s in steps("PRIMARY") if s.critical] == ["conntrackd -c"]
    for status in ("BACKUP", "FAULT", "UNKNOWN"):
        assert [s.describe() for s in steps(status) if s.critical] == ["primary-services stop"]
