"""Kernel parameters, read and written under /proc/sys.

Keys are /proc/sys paths ("net/ipv4/conf/eth0/rp_filter"), not sysctl's dotted
names: interface names may contain dots.
"""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc/sys")


def read(key: str) -> str | None:
    """The parameter's value, or None when there is no such parameter (an
    interface that went away)."""
    try:
        return (PROC / key).read_text().strip()
    except FileNotFoundError:
        return None


def write(key: str, value: str) -> None:
    """Set the parameter; OSError when it cannot be (a container's /proc/sys
    is read-only)."""
    (PROC / key).write_text(value)
