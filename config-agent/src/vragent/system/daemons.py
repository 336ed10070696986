"""Installing daemon configuration, and nudging the resident agent.

A generated file replaces the old one only after the daemon's own checker
accepted it, so a bad render never reaches a running daemon. Reloads are not
done here: the resident agent owns keepalived's and conntrackd's lifecycle
(and coalesces reloads), so a command only wakes it up.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from ..errors import ApplyError
from ..settings import Settings
from ..store.store import atomic_write
from .cmd import spawn

WAKE = b"wake"


def install_checked(path: Path, text: str, check: list[str]) -> str | None:
    """Check ``text`` with ``check + [candidate]``; install it if accepted.

    Returns the checker's complaint, or None once the file is in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{path.name}.candidate.{os.getpid()}")
    candidate.write_text(text)
    try:
        proc = spawn([*check, str(candidate)])
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().replace(str(candidate), path.name)
            return detail or f"exit {proc.returncode}"
        atomic_write(path, text.encode())
        return None
    finally:
        candidate.unlink(missing_ok=True)


def sync_config(path: Path, text: str, settings: Settings, check: list[str] | None = None,
                dry_run: bool = False, removed: str = "removed") -> str | None:
    """Make ``path`` hold ``text`` ("" means no file) and wake the resident agent.

    Returns what happened ("written", "updated", or ``removed``), or None if the
    file already matched. A checker's complaint raises ``ApplyError`` and changes nothing.
    """
    current = path.read_text() if path.exists() else None
    if text == (current or ""):
        return None
    what = removed if not text else "updated" if current is not None else "written"
    if dry_run:
        return what
    if not text:
        path.unlink()
    elif check is not None:
        problem = install_checked(path, text, check)
        if problem:
            raise ApplyError(f"{check[0]} rejected the generated {path.name}: {problem}")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text.encode())
    wake(settings)
    return what


def wake(settings: Settings) -> bool:
    """Tell the resident agent that configuration changed. False if it is not running."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        with contextlib.suppress(FileNotFoundError, ConnectionRefusedError, BlockingIOError):
            sock.sendto(WAKE, str(settings.agent_socket))
            return True
    return False
