"""getRouterAlerts.sh and the alerts supervisord's events write (vragent/alerts.py).

Upstream (apache/cloudstack): systemvm/debian/opt/cloud/bin/getRouterAlerts.sh,
systemvm/debian/root/monitorServices.py (raisealert), and how the answer is
read: core/.../virtualnetwork/VirtualRoutingResource.java
(execute(GetRouterAlertsCommand): split on a literal ``\\n``, the last alert's
text before ``,`` is the timestamp) and server/.../router/RouterAlertsServiceImpl.java
(that timestamp parsed as ``yyyy-MM-dd HH:mm:ss``, non-lenient).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from vragent import alerts, cloudstack
from vragent.settings import Settings

T0 = datetime(2026, 12, 6, 10, 0, 0, 250000)
T1 = datetime(2026, 12, 6, 10, 5, 1, 7000)
T2 = datetime(2026, 12, 6, 11, 0, 0)


def java_parse(answer: str) -> tuple[list[str] | None, str | None]:
    """VirtualRoutingResource.execute(GetRouterAlertsCommand), in Python."""
    if not answer or answer.strip() == "No Alerts":
        return None, None
    found = [a for a in answer.strip().split("\\n") if a]  # Java's split drops trailing ""
    return found, found[-1].split(",")[0]


def test_a_record_is_monitorservices_line() -> None:
    assert alerts.line("ALERT", "dnsmasq", "The process dnsmasq is not running", T0) == \
        "2026-12-06 10:00:00,250 [ALERT] [dnsmasq] The process dnsmasq is not running\n"


def test_the_answer_is_what_the_management_server_parses() -> None:
    log = (alerts.line("ALERT", "dnsmasq", "down", T0) + "\n"  # raisealert's blank line
           + alerts.line("INFO", "dnsmasq", "The process  dnsmasq is recovered", T1) + "\n")
    out = alerts.answer(log, datetime(1970, 1, 1))
    assert out == ("2026-12-06 10:00:00,250 [ALERT] [dnsmasq] down\\n"
                   "2026-12-06 10:05:01,007 [INFO] [dnsmasq] The process dnsmasq is recovered\\n")
    found, stamp = java_parse(out)
    assert found is not None and len(found) == 2
    assert stamp == "2026-12-06 10:05:01"
    assert datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S") == T1.replace(microsecond=0)
    # The next poll sends that stamp: only what came after it.
    assert alerts.answer(log, datetime(2026, 12, 6, 10, 5, 1)) == "No Alerts"
    assert alerts.answer(log, datetime(2026, 12, 6, 10, 0, 0)).count("\\n") == 1
    # No argument: every alert; an empty log: none.
    assert alerts.answer(log, None).count("\\n") == 2
    assert alerts.answer("", None) == "No Alerts"


def test_reading_stops_at_the_first_older_or_unreadable_line_from_the_end() -> None:
    # As getRouterAlerts.sh's loop over `tac`: it breaks, it does not skip.
    log = (alerts.line("INFO", "a", "new", T2) + "garbage line\n"
           + alerts.line("INFO", "b", "newer", T2))
    assert alerts.answer(log, datetime(1970, 1, 1)).count("\\n") == 1
    assert alerts.newer([alerts.line("INFO", "a", "x", T2), alerts.line("INFO", "b", "y", T0)],
                        datetime(2026, 12, 6, 10, 30)) == []


@pytest.mark.parametrize("argv", [["2026-12-06"], [], ["", ""]])
def test_without_a_whole_date_and_time_every_alert_is_given(argv: list[str]) -> None:
    assert alerts.parse_since(argv) is None


@pytest.mark.parametrize("argv", [["2026-13-06", "10:00:00"], ["$(id)", "10:00:00"],
                                  ["2026-12-06", "10:00"], ["2026-12-06;", "10:00:00"]])
def test_a_bad_date_is_refused_naming_it(argv: list[str], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VRAGENT_ROOT", str(tmp_path))
    assert cloudstack.get_router_alerts(argv) == 1
    err = capsys.readouterr().err
    assert re.search(r"getRouterAlerts\.sh: '.*': not a date and time", err), err
    assert "Traceback" not in err


def test_the_entry_point_reads_the_routers_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VRAGENT_ROOT", str(tmp_path))
    settings = Settings.from_env()
    assert cloudstack.get_router_alerts(["1970-01-01", "00:00:00"]) == 0
    assert capsys.readouterr().out == "No Alerts\n"
    alerts.raise_alert(settings, "ALERT", "haproxy", "The process haproxy is not running", T0)
    assert cloudstack.get_router_alerts(["1970-01-01", "00:00:00"]) == 0
    assert capsys.readouterr().out == \
        "2026-12-06 10:00:00,250 [ALERT] [haproxy] The process haproxy is not running\\n\n"


def _event(kind: str, name: str, **extra: object) -> object:
    process = SimpleNamespace(config=SimpleNamespace(name=name), exitstatus=extra.pop("status", 0))
    return type(kind, (), {})() if not name else \
        type(kind, (), {"process": process, **extra})()


def test_supervisords_events_become_alerts(tmp_path: Path) -> None:
    settings = Settings.from_env(str(tmp_path))
    watch = alerts.Supervision(settings)
    # A planned stop and an expected exit: nothing.
    watch.on_state(_event("ProcessStateStoppedEvent", "dnsmasq"))
    watch.on_state(_event("ProcessStateExitedEvent", "dnsmasq", expected=True))
    watch.on_state(_event("ProcessStateRunningEvent", "dnsmasq"))
    assert not settings.router_alerts_log.exists()
    # Died, restarted by supervisord, running again; another gave up.
    watch.on_state(_event("ProcessStateExitedEvent", "dnsmasq", expected=False, status=-1))
    watch.on_state(_event("ProcessStateStartingEvent", "dnsmasq"))
    watch.on_state(_event("ProcessStateRunningEvent", "dnsmasq"))
    watch.on_state(_event("ProcessStateRunningEvent", "dnsmasq"))  # once only
    watch.on_state(_event("ProcessStateFatalEvent", "conntrackd"))
    got = [re.sub(r"^\S+ \S+ ", "", x) for x in
           settings.router_alerts_log.read_text().splitlines()]
    assert got == [
        "[ALERT] [dnsmasq] The process dnsmasq is not running (exit status -1): "
        "supervisord restarts it",
        "[INFO] [dnsmasq] The process dnsmasq is recovered successfully",
        "[ALERT] [conntrackd] The process conntrackd recover failed: supervisord gave up",
    ]


def test_the_log_keeps_its_newest_half_past_its_bound(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alerts, "MAX_BYTES", 4000)
    settings = Settings.from_env(str(tmp_path))
    for i in range(200):
        alerts.raise_alert(settings, "INFO", "p", f"record {i}", T0)
    text = settings.router_alerts_log.read_text()
    assert len(text) <= 4000
    assert text.endswith("record 199\n")
    assert all(x.startswith("2026-12-06 10:00:00,250 [INFO] [p] record ")
               for x in text.splitlines())
