"""monitor_service.json (``type: monitorservice``): the router's health checks.

Fields as the management server sends them (core/.../virtualnetwork/model/
MonitorService.java, filled by SetMonitorServiceConfigItem.generateConfig):

* ``config``: the services to watch, SetMonitorServiceCommand.getConfiguration's
  ``[svc]:processname=..:servicename=..:pidfile=..:,`` items; only sent at
  router start, so a refresh without it keeps the stored one (cs_monitorservice.merge);
* ``health_checks_enabled``, ``health_checks_basic_run_interval`` and
  ``health_checks_advanced_run_interval`` (minutes; the older @06c53e2 server
  sends ``health_checks_advance_run_interval``), ``excluded_health_checks``
  (a CSV of check names), ``health_checks_config`` (the data the checks
  compare the router with, VirtualNetworkApplianceManagerImpl.getRouterHealthChecksConfig:
  ``;``-separated records of ``,``-separated ``k=v``);
* ``disable_monitoring`` ("false" when router.monitor.enabled is off) and
  ``delete_from_processed_cache``, which the router does not keep.

``config`` and ``excluded_health_checks`` name services and checks: they are
held to plain names. The values of ``health_checks_config`` are opaque text
the management server builds (a 4.20 server's ``routerVersion`` is the output
of a command, ending in a newline): they are kept as sent, parsed as
upstream's utility/sharedFunctions.py getHealthChecksData does (blanks
stripped), compared with what the router has, and never reach a command
line or a configuration file; where a check's message shows one, it shows it
escaped (``errors.printable``), and the runner escapes whatever else a
message might carry.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, StrictStr, field_validator

from ...models.common import Bag, Bool
from ...models.limits import MAX_STRING, escape

# Java's Integer: the server parses the setting with Integer.parseInt.
Minutes = Annotated[int, Field(strict=True, ge=0, le=2**31 - 1)]

_NAME = r"[A-Za-z0-9_.-]{1,64}"
_VALUE = r"[A-Za-z0-9_./+@~-]{0,255}"
_SERVICE = re.compile(rf"\[(?P<service>{_NAME})\]:processname=(?P<process>{_VALUE})"
                      rf":servicename=(?P<servicename>{_VALUE}):pidfile=(?P<pidfile>{_VALUE}):",
                      re.ASCII)
_CHECK = re.compile(r"[A-Za-z0-9_.-]{1,128}", re.ASCII)
_DATA_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_SERVICES = 64
MAX_DATA_KEYS = 64
MAX_EXCLUDED = 4096  # characters


def _plain(value: str, limit: int) -> str:
    if len(value) > limit:
        raise ValueError(f"longer than {limit} characters")
    bad = _CONTROL.search(value)
    if bad:
        raise ValueError(f"control character {bad.group()!r} at {bad.start()}")
    return value


class MonitorService(Bag):
    type: Literal["monitorservice"]
    config: StrictStr | None = None
    health_checks_enabled: Bool
    health_checks_basic_run_interval: Minutes | None = None
    health_checks_advanced_run_interval: Minutes | None = None
    health_checks_advance_run_interval: Minutes | None = None
    excluded_health_checks: StrictStr | None = None
    health_checks_config: dict[StrictStr, StrictStr] | None = None
    disable_monitoring: StrictStr | None = None
    delete_from_processed_cache: Bool | None = None

    @field_validator("config")
    @classmethod
    def _config(cls, value: str | None) -> str | None:
        if value is None:
            return value
        _plain(value, MAX_SERVICES * 1024)
        items = [i for i in value.split(",") if i]
        if len(items) > MAX_SERVICES:
            raise ValueError(f"{len(items)} services (at most {MAX_SERVICES})")
        for item in items:
            if not _SERVICE.fullmatch(item):
                raise ValueError(f"{escape(item, 60)} is not "
                                 f"'[service]:processname=..:servicename=..:pidfile=..:'")
        return value

    @field_validator("excluded_health_checks")
    @classmethod
    def _excluded(cls, value: str | None) -> str | None:
        if value is None:
            return value
        _plain(value, MAX_EXCLUDED)
        for name in (n.strip() for n in value.split(",")):
            if name and not _CHECK.fullmatch(name):
                raise ValueError(f"{escape(name, 60)} is not a check name "
                                 f"(letters, digits, '.', '_' and '-')")
        return value

    @field_validator("health_checks_config")
    @classmethod
    def _data(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return value
        if len(value) > MAX_DATA_KEYS:
            raise ValueError(f"{len(value)} keys (at most {MAX_DATA_KEYS})")
        for key, text in value.items():
            if not _DATA_KEY.fullmatch(key):
                raise ValueError(f"key {escape(key, 60)} is not a name (a letter, then "
                                 f"letters, digits, '.', '_' and '-')")
            if len(text) > MAX_STRING:
                raise ValueError(f"{key}: longer than {MAX_STRING} characters")
        return value

    @field_validator("disable_monitoring")
    @classmethod
    def _disable(cls, value: str | None) -> str | None:
        # Boolean.toString of router.monitor.enabled, sent only when it is off.
        if value is not None and value.lower() not in ("true", "false"):
            raise ValueError("expected 'true' or 'false'")
        return value

    @property
    def advanced_run_interval(self) -> int | None:
        """Either spelling of the advanced interval: the current one wins."""
        if self.health_checks_advanced_run_interval is not None:
            return self.health_checks_advanced_run_interval
        return self.health_checks_advance_run_interval

    def services(self) -> list[tuple[str, str, str, str]]:
        """(service, processname, servicename, pidfile) of each ``config`` item
        (cs/CsMonitor.py setupMonitorConfigFile: split on ',', then ':')."""
        found = []
        for item in (self.config or "").split(","):
            match = _SERVICE.fullmatch(item)
            if match:
                found.append((match["service"], match["process"], match["servicename"],
                              match["pidfile"]))
        return found

    def excluded(self) -> list[str]:
        """The CSV as a stripped list, empty names dropped (cs/CsMonitor.py)."""
        return [n.strip() for n in (self.excluded_health_checks or "").split(",") if n.strip()]
