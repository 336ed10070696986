"""Running the health checks of one kind, as systemvm/debian/root/monitorServices.py does.

``run(settings, "basic")`` is ``monitorServices.py basic``: the supervised
daemons first (its step 2, ``monitProcess``, basic only and whatever
``health_checks_enabled`` says), then, only when the stored ``monitorservice``
bag enables them, every check of the kind not listed in
``excluded_health_checks`` (step 3), each timed; then the result files
(step 4, see ``results``). ``intervals`` says how often CloudStack's cron
would run each kind (cs/CsMonitor.py setupHealthCheckCronJobs).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from ... import box, features
from ...config import RouterConfig
from ...errors import printable
from ...pairstate import HaState
from ...settings import Settings
from ...store import Store
from . import results as files
from .checks import Check, Context, Outcome, failed, service_checks
from .feature import FEATURE, NAME
from .model import MonitorService
from .results import KINDS, Kind, cloudstack_output, results

__all__ = ["cloudstack_output", "intervals", "results", "run"]

# cs/CsMonitor.py setupHealthChecksConfigFile's defaults, in minutes (0: never).
DEFAULT_BASIC_INTERVAL = 3
DEFAULT_ADVANCED_INTERVAL = 0


def _config(settings: Settings) -> RouterConfig:
    """The stored configuration, as every reader reads it: only the boot
    parameters and this feature's bag are loaded."""
    keys = (box.CMDLINE.store_key, *(bt.store_key for bt in FEATURE.bags))
    return RouterConfig.from_docs(Store(settings).load(types=keys))


def context(settings: Settings) -> Context:
    cfg = _config(settings)
    return Context(settings, cfg.part(NAME), cfg.redundant,
                   HaState.load(settings.ha_state).status)


def _timed(check: Check, ctx: Context) -> tuple[Outcome, float, float]:
    start = time.time()
    try:
        outcome = check.run(ctx)
    except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
        outcome = failed(f"check failed: {type(exc).__name__}: {exc}")
    return outcome, start, time.time()


def run(settings: Settings, kind: Kind) -> dict[str, Any]:
    """Run the checks of ``kind``, write its result files, return what was written."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of checks {kind!r} (known: {', '.join(KINDS)})")
    started = time.time()
    ctx = context(settings)
    monitor = ctx.monitor
    selected = service_checks(ctx)
    if monitor is not None and monitor.health_checks_enabled:
        # By name, as a listing of upstream's health_checks directory: the
        # same order whatever the order of the features that declare them.
        selected += sorted(features.checks(), key=lambda c: c.name)
    excluded = set(monitor.excluded()) if monitor is not None else set()
    outcome: dict[str, Any] = {}
    failing: list[str] = []
    for check in selected:
        if check.kind != kind or check.name in excluded:
            continue
        result, start, end = _timed(check, ctx)
        outcome[check.name] = {
            "success": "true" if result.success else "false",
            "lastUpdate": str(int(start * 1000)),
            "lastRunDuration": str((end - start) * 1000),
            # The check's own line breaks stay (upstream's layout); any other
            # control character a value brought is shown escaped.
            "message": printable(result.message, keep="\n"),
        }
        if not result.success:
            failing.append(check.name)
    ended = time.time()
    outcome["lastRun"] = {
        "start": str(datetime.fromtimestamp(started)),
        "end": str(datetime.fromtimestamp(ended)),
        "duration": str(ended - started),
    }
    files.write(settings, kind, outcome, failing)
    return outcome


def intervals(settings: Settings) -> tuple[int, int, bool]:
    """(basic, advanced) minutes between runs (0: never) and health_checks_enabled.

    Upstream's cron runs each kind at its interval whether or not the checks
    are enabled (a basic run then checks the services only). Before any
    monitorservice bag there is no cron at all: (0, 0, False).
    """
    monitor: MonitorService | None = _config(settings).part(NAME)
    if monitor is None:
        return 0, 0, False
    basic = monitor.health_checks_basic_run_interval
    advanced = monitor.advanced_run_interval
    return (DEFAULT_BASIC_INTERVAL if basic is None else basic,
            DEFAULT_ADVANCED_INTERVAL if advanced is None else advanced,
            monitor.health_checks_enabled)
