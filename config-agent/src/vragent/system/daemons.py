"""Installing daemon configuration, and nudging the resident agent.

A generated main file replaces the old one only after the daemon's own
checker accepted it, so a bad render never reaches a running daemon. Reloads
and restarts are not done here: the resident agent owns every daemon's
lifecycle (see ``ha.lifecycle``), so a command only wakes it up.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from ..errors import ApplyError
from ..feature import ConfigFile, Daemon, Files, Rendered
from ..settings import Settings
from ..store.store import atomic_write
from .cmd import spawn

WAKE = b"wake"


def check(daemon: Daemon, f: ConfigFile, text: str) -> str | None:
    """The daemon's checker on ``text`` as ``f``: its complaint, or None if accepted."""
    f.path.parent.mkdir(parents=True, exist_ok=True)
    candidate = f.path.with_name(f".{f.path.name}.candidate.{os.getpid()}")
    atomic_write(candidate, text.encode(), f.mode)
    try:
        proc = spawn(daemon.check_argv(candidate))
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().replace(str(candidate), f.path.name)
            return detail or f"exit {proc.returncode}"
        return None
    finally:
        candidate.unlink(missing_ok=True)


def sync(daemon: Daemon, texts: dict[Path, str], settings: Settings,
         dry_run: bool = False) -> list[str]:
    """Make each of the daemon's files hold its text ("" means no file), then wake the agent.

    Returns one "<file> written|updated|removed" per file that changed. A
    checker's complaint raises ``ApplyError`` before anything is written.
    Files the main one refers to are written first, so a daemon (re)started
    on the new main file finds them.
    """
    changed: list[tuple[ConfigFile, str, str]] = []
    for f in daemon.files:
        text = texts.get(f.path, "")
        current = f.path.read_text() if f.path.exists() else None
        if text == (current or ""):
            continue
        what = "removed" if not text else "updated" if current is not None else "written"
        changed.append((f, text, what))
    if dry_run or not changed:
        return [f"{f.path.name} {what}" for f, _, what in changed]
    for f, text, _ in changed:
        if text and f.checked and daemon.check:
            problem = check(daemon, f, text)
            if problem:
                raise ApplyError(f"{daemon.check[0]} rejected the generated {f.path.name}: "
                                 f"{problem}")
    for f, text, _ in reversed(changed):
        if not text:
            f.path.unlink()
        else:
            f.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(f.path, text.encode(), f.mode)
    wake(settings)
    return [f"{f.path.name} {what}" for f, _, what in changed]


def sync_rendered(daemon: Daemon, rendered: Rendered, settings: Settings,
                  dry_run: bool = False) -> list[str]:
    """Install what the daemon's feature rendered for it: a ``Files`` by file
    name (each one the daemon declares), any other render as the daemon's
    main file.

    Returns one "<feature>: <file> written|updated|removed" per change.
    """
    subsystem = daemon.subsystem
    if isinstance(rendered, Files):
        named = dict(rendered.files)
        declared = {f.path.name for f in daemon.files}
        undeclared = sorted(set(named) - declared)
        if undeclared:
            # A name written in two places that drifted apart: never install
            # the rest as if nothing happened (the undeclared file would be lost).
            raise ApplyError(f"{subsystem}: rendered {', '.join(undeclared)}, which "
                             f"{daemon.name} does not declare")
        texts = {f.path: named.get(f.path.name, "") for f in daemon.files}
    else:
        texts = {daemon.conf: rendered.text()}
    return [f"{subsystem}: {c}" for c in sync(daemon, texts, settings, dry_run)]


def wake(settings: Settings) -> bool:
    """Tell the resident agent that configuration changed. False if it is not running."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        with contextlib.suppress(FileNotFoundError, ConnectionRefusedError, BlockingIOError):
            sock.sendto(WAKE, str(settings.agent_socket))
            return True
    return False
