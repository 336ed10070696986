"""The resident agent's log line: UTC, to the millisecond, on stderr (supervisord keeps it)."""

from __future__ import annotations

import sys
import time


def log(message: str) -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    print(f"{stamp} vragent-daemon: {message}", file=sys.stderr, flush=True)
