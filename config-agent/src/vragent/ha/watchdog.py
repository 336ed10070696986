"""This router's fitness for mastership, kept by supervisord itself.

keepalived used to run a track script every second, a Python interpreter
each time: about 9 % of a core per idle router. Now supervisord, which wakes
every second anyway, checks ``health.problems`` inside its own process on its
5-second tick and whenever one of its programs changes state, and writes the
verdict to the file keepalived tracks (``track_file`` with weight 0: a
non-zero value puts the instance in FAULT, so a master resigns at once).
keepalived reads the file only when it changes (inotify); nothing runs per check.

Bound: a dead or stuck agent (heartbeat older than ``HEARTBEAT_STALE``, 5 s)
is out of mastership at the next tick, within 10 s; a daemon whose fitness
probe fails, after its ``fall`` failing ticks in a row (conntrackd: 2, within
15 s). A restart by supervisord inside those windows costs no failover.

Loaded by supervisord as an RPC interface factory (see services/supervisord.conf)
so it runs in supervisord's process: keep its imports light.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..alerts import Supervision
from ..settings import Settings
from .health import AGENT, problems


def verdict(settings: Settings, failing: dict[str, int], started: float,
            tick: bool = True) -> tuple[str, dict[str, int]]:
    """(why this router is unfit, "" when fit; consecutive failing ticks of
    each daemon whose probe falls after several). Only ticks count towards a
    fall: a restart's own state changes (EXITED, STARTING, RUNNING) come in a
    burst."""
    found = problems(settings)
    if not settings.agent_heartbeat.exists() and time.monotonic() - started < 30:
        # supervisord just started the agent: it has not touched its heartbeat yet.
        found = [p for p in found if p.who != AGENT]
    reasons = []
    counts: dict[str, int] = {}
    for p in found:
        if p.fall <= 1:
            reasons.append(p.text)
            continue
        counts[p.who] = failing.get(p.who, 0) + (1 if tick else 0)
        if counts[p.who] >= p.fall:
            reasons.append(p.text)
    return "; ".join(reasons), counts


def write_if_changed(path: Path, text: str) -> bool:
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True


class Watchdog:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.failing: dict[str, int] = {}
        self.started = time.monotonic()

    def tick(self, event: object = None) -> str:
        return self.check(event, tick=True)

    def check(self, event: object = None, tick: bool = False) -> str:
        why, self.failing = verdict(self.settings, self.failing, self.started, tick)
        s = self.settings
        try:
            s.run_dir.mkdir(parents=True, exist_ok=True)
            # The reason first: whoever sees the router leave mastership finds it.
            write_if_changed(s.vrrp_health_reason, f"{why}\n" if why else "")
            write_if_changed(s.vrrp_health_file, "1\n" if why else "0\n")
        except OSError:
            pass  # supervisord must go on; the next tick tries again
        return why


class Interface:
    """What the watchdog answers over supervisord's XML-RPC (``vragent.fitness``)."""

    def __init__(self, watchdog: Watchdog) -> None:
        self.watchdog = watchdog

    def fitness(self) -> str:
        return self.watchdog.check()


def make_rpcinterface(supervisord: Any, **config: str) -> Interface:
    """supervisord's factory hook: subscribe the watchdog to supervisord's events."""
    from supervisor import events  # type: ignore[import-untyped]  # inside supervisord only

    settings = Settings.from_env(config.get("root") or None)
    watchdog = Watchdog(settings)
    subscribe: Callable[[Any, Callable[[object], object]], None] = events.subscribe
    subscribe(events.Tick5Event, watchdog.tick)
    subscribe(events.ProcessStateEvent, watchdog.check)
    # The same events tell the management server which daemons died and came
    # back (getRouterAlerts.sh): supervisord is what restarts them here.
    subscribe(events.ProcessStateEvent, Supervision(settings).on_state)
    watchdog.check()
    return Interface(watchdog)
