"""How a CloudStack management server reads what a router prints, for the tests."""

from __future__ import annotations

import json
from typing import Any


def parse_monitor_output(output: str) -> tuple[list[str], Any]:
    """core/.../VirtualRoutingResource.parseLinesForHealthChecks on
    getRouterMonitorResults.sh's output: the failing check names, and the
    result lines concatenated without separator, read as JSON (the server
    reads Map<String, Map<String, Map<String, String>>>)."""
    failing: list[str] = []
    monitor: list[str] = []
    mode = ""
    for line in output.strip().split("\n"):
        line = line.strip()
        if "FAILING CHECKS" in line:
            mode = "failing"
        elif "MONITOR RESULTS" in line:
            mode = "results"
        elif mode == "failing":
            failing += [n.strip() for n in line.split(",") if n.strip()]
        else:
            # The server logs such a line and skips it: here it is a test failure.
            assert mode == "results", f"unexpected line {line!r}"
            monitor.append(line)
    return failing, json.loads("".join(monitor))
