"""What the kernel says about this router, read from /proc and statvfs; and
this process's own scheduling and heap."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

CONNTRACK_COUNT = Path("/proc/sys/net/netfilter/nf_conntrack_count")
CONNTRACK_MAX = Path("/proc/sys/net/netfilter/nf_conntrack_max")
MEMINFO = Path("/proc/meminfo")
STAT = Path("/proc/stat")


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


def _existing(path: Path) -> Path:
    """``path``, or its nearest parent that exists (the filesystem that would hold it)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk(path: Path) -> tuple[int, int]:
    """(total, free) bytes of the filesystem holding ``path``."""
    st = os.statvfs(_existing(path))
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs since boot (the "cpu" line of /proc/stat).

    Idle as top's "id": time waiting on I/O is not idle (cpu_usage_check.py
    reports 100 - id).
    """
    for line in STAT.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            # user nice system idle iowait irq softirq steal [guest guest_nice]:
            # guest time is already counted in user and nice.
            ticks = [int(v) for v in fields[1:9]]
            return ticks[3], sum(ticks)
    raise OSError(f"{STAT}: no cpu line")


def read_only(path: Path) -> bool:
    """The filesystem holding ``path`` (or its nearest existing parent) is mounted read-only."""
    return bool(os.statvfs(_existing(path)).f_flag & os.ST_RDONLY)


def realtime(pid: int, priority: int) -> bool:
    """Run ``pid`` at SCHED_RR ``priority``; False when it is already so.
    Raises PermissionError without CAP_SYS_NICE, ProcessLookupError when gone."""
    if os.sched_getscheduler(pid) == os.SCHED_RR and \
            os.sched_getparam(pid).sched_priority == priority:
        return False
    os.sched_setscheduler(pid, os.SCHED_RR, os.sched_param(priority))
    return True


def pid_in(path: Path) -> int | None:
    """The pid a daemon wrote to ``path``, if any."""
    return _int(path)


def command_name(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def agent_alive(pid_file: Path) -> bool:
    """The resident agent whose pid ``pid_file`` holds is alive (and is one)."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    try:
        return b"vragent" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def trim_heap() -> None:
    """Hand the heap's free memory back to the kernel (glibc's malloc_trim);
    nothing where the C library is not glibc."""
    import ctypes  # only the API's worker trims, after a command

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc


def become(argv: list[str]) -> NoReturn:
    """Replace this process with ``argv`` (looked up in PATH); OSError when it
    cannot be run."""
    os.execvp(argv[0], argv)
