"""The resident agent's log line: UTC, to the millisecond, on stderr (supervisord keeps it)."""

from __future__ import annotations

import sys
import time


def log(message: str) -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    # One write per line: print() writes the text and its newline separately,
    # and the API's worker logs from another thread (two records on a line).
    sys.stderr.write(f"{stamp} vragent-daemon: {message}\n")
    sys.stderr.flush()
