"""haproxy's admin socket, its saved state, and the certificates it loads.

The admin socket (``stats socket ... level admin``, root-only) answers
``show stat`` (CSV), ``show info`` and ``show servers state``. Before a
reload the servers' state goes to the server-state file the new worker
loads, and the worker about to retire is followed through the master CLI
(``@!<pid> show stat``) until it exits, its last figures added to those of
the workers before it, so the figures read afterwards (``stats``) carry on
across reloads rather than restarting at zero (upstream #6849).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    master: Path  # the master CLI (-S): reaches every worker, retiring ones too
    hold: Path  # a listener the agent keeps a connection on across a reload (HOLD)


# The listener that keeps a retiring worker until its last figures are read.
HOLD = "vragent-hold"


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


def workers(paths: Paths, timeout: float = TIMEOUT) -> tuple[list[int], list[int]]:
    """(current, retiring) workers' pids, from the master CLI's ``show proc``."""
    current: list[int] = []
    old: list[int] = []
    into = current
    # The master CLI keeps a connection open after a command: "quit" ends it.
    for line in ask(paths.master, "show proc; quit", timeout).splitlines():
        if line.startswith("# old workers"):
            into = old
        elif line.startswith("# "):
            into = current if line.startswith("# workers") else []
        elif line.split()[1:2] == ["worker"] and line.split()[0].isdigit():
            into.append(int(line.split()[0]))
    return current, old


def _counts(rows: list[dict[str, str]]) -> dict[str, dict[str, int]]:
    return {f"{r['pxname']}/{r['svname']}": {n: int(r[n]) for n in COUNTERS
                                              if (r.get(n) or "").isdigit()}
            for r in rows}


def _add(total: dict[str, dict[str, int]], more: dict[str, dict[str, int]]) -> None:
    for key, counts in more.items():
        into = total.setdefault(key, {})
        for name, value in counts.items():
            into[name] = into.get(name, 0) + value


# The counters file: "base", what retired workers counted in all; "following",
# by worker, what a worker retiring now has counted so far (read through the
# master CLI until it exits, then added to the base).
_LOCK = threading.Lock()


def _load(paths: Paths) -> dict[str, Any]:
    try:
        data = json.loads(paths.counters.read_text())
    except (OSError, ValueError):
        return {"base": {}, "following": {}}
    if not isinstance(data, dict) or "base" not in data:
        return {"base": {}, "following": {}}
    return data


def _store(paths: Paths, data: dict[str, Any]) -> None:
    atomic_write(paths.counters, json.dumps(data, sort_keys=True).encode(), 0o600)


def saved(paths: Paths) -> dict[str, dict[str, int]]:
    """Every retired or retiring worker's counters, by ``pxname/svname``."""
    with _LOCK:
        data = _load(paths)
    total: dict[str, dict[str, int]] = {}
    _add(total, data["base"])
    for counts in data["following"].values():
        _add(total, counts)
    return total


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
    """Before a reload: the servers' state for the next worker; the current
    worker's counters, then its last ones (``follow``). Returns what could
    not be saved."""
    problems = []
    try:
        state = ask(paths.socket, "show servers state")
        if state.startswith("1\n") or state.startswith("1\r"):
            atomic_write(paths.server_state, state.encode(), 0o600)
    except OSError as exc:
        problems.append(f"server state not saved: {exc}")
    try:
        current, old = workers(paths)
        rows = parse_stat(ask(paths.socket, "show stat"))
    except (OSError, IndexError) as exc:
        problems.append(f"counters not saved: {exc}")
        return problems
    hold: socket.socket | None = _hold(paths, problems)
    with _LOCK:
        data = _load(paths)
        # Workers followed by an agent that is gone: what it had is what they counted.
        for key in [k for k in data["following"] if int(k.split("-")[0]) not in old]:
            _add(data["base"], data["following"].pop(key))
        keys = []
        for pid in current:
            key = f"{pid}-{time.time_ns()}"
            data["following"][key] = _counts(rows)
            keys.append((pid, key))
        _store(paths, data)
    for pid, key in keys:
        threading.Thread(target=follow, args=(paths, pid, key, hold), daemon=True,
                         name=f"haproxy-worker-{pid}").start()
    if not keys and hold is not None:
        hold.close()
    return problems


def _hold(paths: Paths, problems: list[str]) -> socket.socket | None:
    """A connection on the hold listener (see ``follow``), or None, said in ``problems``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(TIMEOUT)
        sock.connect(str(paths.hold))
    except OSError as exc:
        problems.append(f"the retiring worker's last figures will be missed: {exc}")
        sock.close()
        return None
    return sock


def follow(paths: Paths, pid: int, key: str, hold: socket.socket | None,
           every: float = 0.02, limit: float = 30.0) -> None:
    """A retiring worker's last figures. The connection ``save`` opened on the
    hold listener (owned by this worker: the next one takes the listening
    socket, not the connection) keeps it from exiting, so once the master,
    back from re-executing itself, lists it as old (it accepts nothing
    more) and its other connections are done, what it reports is final.
    Then the connection is closed, the worker leaves, and its figures join
    the base."""
    deadline = time.monotonic() + limit
    try:
        while time.monotonic() < deadline:
            try:
                current, old = workers(paths, timeout=0.5)
            except (OSError, IndexError):
                time.sleep(every)  # the master answers nothing while it re-executes
                continue
            if pid in old or pid not in current:
                break
            time.sleep(every)
        final = None
        while time.monotonic() < deadline:
            try:
                answer = ask(paths.master, f"@!{pid} show stat; quit", timeout=0.5)
            except OSError:
                time.sleep(every)
                continue
            rows = parse_stat(answer)
            if not rows:
                break  # gone (no hold connection kept it): the snapshot stands
            final = rows
            busy = sum(int(r.get("scur") or 0) for r in rows
                       if r.get("svname") == "FRONTEND" and r.get("pxname") != HOLD)
            if busy == 0 or hold is None:
                break
            time.sleep(every)
        if final is not None:
            with _LOCK:
                data = _load(paths)
                if key in data["following"]:
                    data["following"][key] = _counts(final)
                    _store(paths, data)
    finally:
        if hold is not None:
            hold.close()
        with _LOCK:
            data = _load(paths)
            if key in data["following"]:
                _add(data["base"], data["following"].pop(key))
                _store(paths, data)


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
