"""How a CloudStack management server reads what a router prints, for the tests."""

from __future__ import annotations

import json
import re
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


def network_usage(detail: str) -> tuple[int, int]:
    """NetworkUsageAnswer's (bytesSent, bytesReceived) from vpc_netusage.sh's or
    netusage.sh's output, as every hypervisor resource parses it
    (LibvirtComputingResource.getVPCNetworkStats/getNetworkStats,
    CitrixResourceBase.getVPCNetworkStats, VmwareResource.VPCNetworkUsage,
    XenServer56NetworkUsageCommandWrapper): Java's ``split(":")`` (trailing
    empty strings dropped), then fields summed in pairs while
    ``i < splitResult.length - 1``; ``Long.parseLong`` takes nothing but digits
    (the ssh channel joins stdout and stderr, so a stray line fails here)."""
    fields = detail.split(":")
    while len(fields) > 1 and fields[-1] == "":
        fields.pop()
    stats = [0, 0]
    i = 0
    while i < len(fields) - 1:
        for k in (0, 1):
            if not re.fullmatch(r"[+-]?[0-9]+", fields[i]):
                raise ValueError(f"NumberFormatException: For input string: {fields[i]!r}")
            stats[k] += int(fields[i])
            i += 1
    return stats[0], stats[1]
