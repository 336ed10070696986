"""Is this router fit to be master?

It is not when the resident agent is dead or stuck (its heartbeat is stale),
or when a daemon that declares a fitness probe (``feature.Fitness``: one a
takeover needs) does not pass it, once it has had its grace time since the
agent started it. supervisord's watchdog (``watchdog``) asks on its tick,
inside supervisord: keep the imports light (only the features' daemon
modules are imported). ``vragent-health`` prints the same verdict for an
operator.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from ..settings import Settings
from ..supervised import registry

HEARTBEAT_STALE = 5.0
AGENT = "agent"


@dataclass(frozen=True)
class Problem:
    who: str  # AGENT, or the daemon's name
    text: str
    # Failing ticks in a row before it counts (a daemon's own restart by
    # supervisord takes a moment, and must not move mastership).
    fall: int = 1


def problems(settings: Settings) -> list[Problem]:
    found = []
    try:
        age = time.time() - settings.agent_heartbeat.stat().st_mtime
        if age > HEARTBEAT_STALE:
            found.append(Problem(AGENT, f"agent heartbeat is {age:.1f}s old"))
    except OSError:
        found.append(Problem(AGENT, "agent is not running (no heartbeat)"))
    for daemon in registry(settings):
        fitness = daemon.fitness
        if fitness is None or not daemon.conf.exists():
            continue
        # Only once the agent has started it, and given it time to come up.
        try:
            started_age = time.time() - settings.daemon_loaded(daemon.name).stat().st_mtime
        except OSError:
            continue
        if started_age <= fitness.grace:
            continue
        why = fitness.probe(settings)
        if why:
            found.append(Problem(daemon.name, why, fitness.fall))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vragent-health")
    parser.add_argument("--root", default=None)
    args = parser.parse_args(argv)
    found = problems(Settings.from_env(args.root))
    for problem in found:
        print(f"vragent-health: {problem.text}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
