"""What the kernel says about this router, read from /proc and statvfs."""

from __future__ import annotations

import os
from pathlib import Path

CONNTRACK_COUNT = Path("/proc/sys/net/netfilter/nf_conntrack_count")
CONNTRACK_MAX = Path("/proc/sys/net/netfilter/nf_conntrack_max")
MEMINFO = Path("/proc/meminfo")


def _int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def conntrack_count() -> int | None:
    """Connections in this network namespace's table (None: no conntrack)."""
    return _int(CONNTRACK_COUNT)


def conntrack_max() -> int | None:
    return _int(CONNTRACK_MAX)


def memory() -> tuple[int, int]:
    """(total, available) bytes."""
    values: dict[str, int] = {}
    for line in MEMINFO.read_text().splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0]) * 1024
    return values.get("MemTotal", 0), values.get("MemAvailable", 0)


def disk(path: Path) -> tuple[int, int]:
    """(total, free) bytes of the filesystem holding ``path``."""
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
