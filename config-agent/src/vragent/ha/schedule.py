"""CloudStack's health checks, run at the intervals its monitorservice bag sets
(cs/CsMonitor.py's cron lines, in minutes; 0: never), in a thread of the
resident agent: they read the router, they never queue behind commands."""

from __future__ import annotations

import threading
import time

from ..api.metrics import Metrics
from ..errors import VragentError
from ..features.monitor import runner
from ..settings import Settings
from .log import log

# How often the scheduler looks at its intervals (seconds).
POLL = 10.0


def health_loop(settings: Settings, metrics: Metrics, stopping: threading.Event) -> None:
    last: dict[str, float] = {}
    while not stopping.wait(POLL):
        try:
            basic, advanced, _ = runner.intervals(settings)
        except (OSError, VragentError) as exc:
            log(f"health checks: {exc}")
            continue
        now = time.monotonic()
        for kind, minutes in (("basic", basic), ("advanced", advanced)):
            if minutes <= 0 or now - last.get(kind, -1e9) < minutes * 60:
                continue
            last[kind] = now
            try:
                outcome = runner.run(settings, kind)  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - the next run may do better
                log(f"health checks ({kind}): {exc!r}")
                continue
            failing = sorted(k for k, v in outcome.items()
                             if isinstance(v, dict) and v.get("success") == "false")
            metrics.health(kind, outcome)
            if failing:
                log(f"health checks ({kind}) failing: {', '.join(failing)}")
