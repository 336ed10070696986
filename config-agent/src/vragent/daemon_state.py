"""What a supervised daemon should be doing, and what it last loaded.

Shared by the resident agent, which starts, reloads and stops the daemons and
records what each loaded, and by the health checks, which compare that with
the router as it is now. Kept free of heavy imports: the checks run from a
console script.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .feature import Daemon

MISSING = "-"  # the digest of a file that does not exist


def file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def digests(daemon: Daemon) -> dict[str, str]:
    """What the daemon's files hold now, by file name (``MISSING``: no such file)."""
    return {f.path.name: file_digest(f.path) or MISSING for f in daemon.files}


def write_loaded(path: Path, loaded: dict[str, str]) -> None:
    # sha256sum's format: an operator can compare it with the files by hand.
    # Replaced whole (readers never see it half-written); the run directory
    # does not outlive a boot, so no fsync.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(f"{d}  {name}\n" for name, d in loaded.items()))
    os.replace(tmp, path)


def read_loaded(path: Path) -> dict[str, str]:
    """The digests ``write_loaded`` recorded; empty when there is no record."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    return {name: d for d, _, name in (ln.partition("  ") for ln in lines)}


def wanted(daemon: Daemon, redundant: bool, status: str) -> bool:
    """The daemon should run: it has a configuration and, if only a pair's
    master runs it, this router is not one of a pair or is its master."""
    if not daemon.conf.exists():
        return False  # nothing to do: not a pair, no tier yet...
    return not daemon.master_only or not redundant or status == "PRIMARY"
