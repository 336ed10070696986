"""The router's alerts to the management server: daemons that died and came back.

Upstream (apache/cloudstack): systemvm/debian/root/monitorServices.py restarts
a service it finds down and writes each event with ``raisealert`` to
/var/log/routerServiceMonitor.log (``logging`` with ``%(asctime)s
%(message)s``: ``2024-01-31 12:00:00,123 [ALERT] [dnsmasq] ...``).
systemvm/debian/opt/cloud/bin/getRouterAlerts.sh answers the management
server's GetRouterAlertsCommand with the lines newer than the date and time
it is given; VirtualRoutingResource splits its answer on a literal ``\\n`` and
takes the last alert's text before its first ``,`` as the timestamp it sends
next time (RouterAlertsServiceImpl parses it as ``yyyy-MM-dd HH:mm:ss``, and
raises one ALERT_TYPE_DOMAIN_ROUTER alert per line).

Here supervisord restarts the daemons, so supervisord says when: its process
state events (an unexpected exit, the return to RUNNING, a FATAL give-up)
become the same lines, written inside supervisord's process by the RPC
interface that also runs the watchdog (services/supervisord.conf). A planned
stop is STOPPING/STOPPED, never an alert. Loaded into supervisord: keep the
imports light.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from .settings import Settings

# getRouterAlerts.sh's argument and the answer's timestamps (RouterAlertsServiceImpl).
STAMP = "%Y-%m-%d %H:%M:%S"
# The log is read whole by every poll: past this size its older half goes.
MAX_BYTES = 1 << 20


def line(severity: str, process: str, message: str, now: datetime) -> str:
    """One record as monitorServices.py's raisealert writes it."""
    return (f"{now.strftime(STAMP)},{now.microsecond // 1000:03d} "
            f"[{severity}] [{process}] {message}\n")


def _bounded(path: Path) -> None:
    try:
        if path.stat().st_size <= MAX_BYTES:
            return
        keep = path.read_bytes()[-MAX_BYTES // 2:]
    except OSError:
        return
    keep = keep[keep.find(b"\n") + 1:]  # from a whole line
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(keep)
    os.replace(tmp, path)


def raise_alert(settings: Settings, severity: str, process: str, message: str,
                now: datetime | None = None) -> None:
    """Append one record: one write of one whole line (readers see whole lines)."""
    path = settings.router_alerts_log
    path.parent.mkdir(parents=True, exist_ok=True)
    _bounded(path)
    data = line(severity, process, message, now or datetime.now()).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _stamp(text: str) -> datetime | None:
    # getRouterAlerts.sh: the first two words, up to the first ',' (milliseconds).
    words = text.split()
    if len(words) < 2:
        return None
    try:
        return datetime.strptime(" ".join(words[:2]).split(",")[0], STAMP)
    except ValueError:
        return None


def newer(lines: Iterable[str], since: datetime | None) -> list[str]:
    """getRouterAlerts.sh's loop: from the newest line back, every line newer
    than ``since``, stopping at the first that is not (or whose date does not
    parse); oldest first."""
    found: list[str] = []
    for text in reversed(list(lines)):
        if not text.strip():
            continue
        when = _stamp(text)
        if when is None or (since is not None and when <= since):
            break
        found.append(text)
    return found[::-1]


def answer(log_text: str, since: datetime | None) -> str:
    """What getRouterAlerts.sh prints: ``No Alerts``, or each line followed by a
    literal ``\\n``, as its unquoted ``echo $alerts`` of ``"$line\\n$alerts"``
    does (runs of blanks become one space)."""
    found = newer(log_text.splitlines(), since)
    if not found:
        return "No Alerts"
    return "".join(" ".join(text.split()) + "\\n" for text in found)


def parse_since(argv: list[str]) -> datetime | None:
    """The date and time the management server sends (``1970-01-01 00:00:00``
    at first), as two words; none: every alert. ValueError names a bad one."""
    if len(argv) < 2 or not argv[0] or not argv[1]:
        return None
    text = f"{argv[0]} {argv[1]}"
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", text):
            raise ValueError(text)
        return datetime.strptime(text, STAMP)
    except ValueError:
        raise ValueError(f"{text!r}: not a date and time (yyyy-MM-dd HH:mm:ss)") from None


class Supervision:
    """supervisord's process state events as alerts (see the module's doc)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.down: set[str] = set()  # died unexpectedly, not yet back

    def on_state(self, event: object) -> None:
        kind = type(event).__name__
        process = getattr(event, "process", None)
        name = str(getattr(getattr(process, "config", None), "name", "") or "")
        if not name:
            return
        try:
            if kind == "ProcessStateExitedEvent" and not getattr(event, "expected", True):
                self.down.add(name)
                status = getattr(process, "exitstatus", None)
                why = f" (exit status {status})" if isinstance(status, int) else ""
                raise_alert(self.settings, "ALERT", name,
                            f"The process {name} is not running{why}: supervisord restarts it")
            elif kind == "ProcessStateRunningEvent" and name in self.down:
                self.down.discard(name)
                raise_alert(self.settings, "INFO", name,
                            f"The process {name} is recovered successfully")
            elif kind == "ProcessStateFatalEvent":
                self.down.discard(name)
                raise_alert(self.settings, "ALERT", name,
                            f"The process {name} recover failed: supervisord gave up")
        except OSError:
            pass  # supervisord must go on: an alert lost is better than a router stopped
