"""haproxy's admin socket, its saved state, and the certificates it loads.

The admin socket (``stats socket ... level admin``, root-only) answers
``show stat`` (CSV), ``show info`` and ``show servers state``. Before a
reload the servers' state goes to the server-state file the new worker
loads, and the counters of the worker about to retire are added to those
already saved, so the figures read afterwards (``stats``) carry on across
reloads rather than restarting at zero (upstream #6849).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from ..store.store import atomic_write

TIMEOUT = 2.0
# ``show stat`` columns that only grow: what a retired worker had is added
# to the live worker's (haproxy's management.txt, "9.1. CSV format").
COUNTERS = ("stot", "bin", "bout", "dreq", "dresp", "ereq", "econ", "eresp", "wretr",
            "wredis", "chkfail", "chkdown", "downtime", "lbtot", "hrsp_1xx", "hrsp_2xx",
            "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other", "req_tot", "cli_abrt",
            "srv_abrt", "comp_in", "comp_out", "connect", "reuse")


@dataclass(frozen=True)
class Paths:
    socket: Path
    server_state: Path
    counters: Path


def ask(path: Path, command: str, timeout: float = TIMEOUT) -> str:
    """One command on the admin socket, its whole answer. OSError if it does not answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def parse_stat(text: str) -> list[dict[str, str]]:
    """``show stat``'s CSV: one dict per proxy row (``pxname``, ``svname``...)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        return []
    reader = csv.DictReader(io.StringIO("\n".join([lines[0][2:], *lines[1:]])))
    return [{k: v for k, v in row.items() if k} for row in reader if row.get("pxname")]


def saved(paths: Paths) -> dict[str, dict[str, int]]:
    """The retired workers' counters, by ``pxname/svname``."""
    try:
        data = json.loads(paths.counters.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def stats(paths: Paths) -> list[dict[str, str]]:
    """The live worker's rows with the retired workers' counters added.
    OSError if haproxy does not answer."""
    rows = parse_stat(ask(paths.socket, "show stat"))
    base = saved(paths)
    for row in rows:
        before = base.get(f"{row['pxname']}/{row['svname']}", {})
        for name in COUNTERS:
            if name in before and (row.get(name) or "0").isdigit():
                row[name] = str(int(row.get(name) or 0) + int(before[name]))
    return rows


def save(paths: Paths) -> list[str]:
    """Before a reload: the servers' state for the next worker, the counters
    for the figures. Returns what could not be saved."""
    problems = []
    try:
        state = ask(paths.socket, "show servers state")
        if state.startswith("1\n") or state.startswith("1\r"):
            atomic_write(paths.server_state, state.encode(), 0o600)
    except OSError as exc:
        problems.append(f"server state not saved: {exc}")
    try:
        rows = stats(paths)
    except OSError as exc:
        problems.append(f"counters not saved: {exc}")
        return problems
    total = {f"{r['pxname']}/{r['svname']}": {n: int(r[n]) for n in COUNTERS
                                               if (r.get(n) or "").isdigit()}
             for r in rows}
    atomic_write(paths.counters, json.dumps(total, sort_keys=True).encode(), 0o600)
    return problems


def sync_certs(directory: Path, files: dict[str, str], dry_run: bool = False) -> list[str]:
    """Make ``directory`` (root-only) hold these PEM files, by name, before
    the configuration naming them is checked. Returns what was written.
    Files no longer named are removed by ``prune_certs`` once the new
    configuration is in place."""
    changed = []
    for name, text in sorted(files.items()):
        path = directory / name
        if path.exists():
            continue  # named by digest: the same name is the same content
        changed.append(f"{name} written")
        if dry_run:
            continue
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        atomic_write(path, text.encode(), 0o600)
    return changed


def prune_certs(directory: Path, keep: set[str], dry_run: bool = False) -> list[str]:
    if not directory.is_dir():
        return []
    gone = sorted(p.name for p in directory.iterdir() if p.name not in keep)
    if not dry_run:
        for name in gone:
            with contextlib.suppress(FileNotFoundError):
                (directory / name).unlink()
    return [f"{name} removed" for name in gone]
