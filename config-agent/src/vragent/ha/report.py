"""Transition reports to the management server: a persistent spool, an ordered pusher.

A VRRP transition must never wait on the network, so ``Spool.put`` only writes one
file (temp, fsync, rename, directory fsync) and returns; once it has returned the
report survives a crash at any instant. ``Pusher`` delivers spooled reports on its
own thread, strictly in ``seq`` order: report N+1 is not sent before N was
acknowledged with a 2xx, so the server never sees a later state overtaken by an
earlier one. A report is retried until acknowledged, never dropped.

Delivery is at least once: an acknowledgement lost on the wire, or a crash between
the acknowledgement and the removal of the file, sends a report again. ``seq`` is
what lets the server recognise such repeats, which is why it never goes back, not
even after every report was delivered and the router restarted.

One process owns a spool directory (the resident agent): ``seq`` is allocated in
memory, and temp files found when the spool is opened are taken as torn writes.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import socket
import threading
import urllib.parse
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..store.store import atomic_write, fsync_dir

log = logging.getLogger(__name__)

# Keys of the pushed document that ``detail`` may not overwrite.
_CORE = frozenset({"router", "state", "previous", "timestamp", "unix", "reason", "seq"})
_SEQ_DIGITS = 12
_SUFFIX = ".json"
# Highest seq ever delivered: the only trace of it once its file is gone.
_HIGH_WATER = "last-seq"


@dataclass(frozen=True)
class Report:
    router: str
    state: str
    previous: str
    timestamp: float
    reason: str
    seq: int = 0
    detail: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clash = sorted(_CORE & set(self.detail))
        if clash:
            raise ValueError(f"report detail may not replace {', '.join(clash)}")

    def to_json(self) -> dict[str, Any]:
        """The document POSTed to the management server."""
        when = datetime.fromtimestamp(self.timestamp, tz=UTC)
        return {
            "router": self.router,
            "state": self.state,
            "previous": self.previous,
            "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "unix": self.timestamp,
            "reason": self.reason,
            "seq": self.seq,
            **self.detail,
        }


def _encode(report: Report) -> bytes:
    return json.dumps(asdict(report), sort_keys=True, separators=(",", ":")).encode()


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _decode(data: bytes, seq: int) -> Report:
    raw = json.loads(data)
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    timestamp = raw.get("timestamp")
    detail = raw.get("detail", {})
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise ValueError("timestamp must be a number")
    if not isinstance(detail, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in detail.items()
    ):
        raise ValueError("detail must map strings to strings")
    # The file name is what orders delivery, so it is the seq that counts.
    return Report(router=_text(raw, "router"), state=_text(raw, "state"),
                  previous=_text(raw, "previous"), timestamp=float(timestamp),
                  reason=_text(raw, "reason"), seq=seq, detail=detail)



class Spool:
    """Reports not yet acknowledged, one file each, named by their seq."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        created = not directory.is_dir()
        directory.mkdir(parents=True, exist_ok=True)
        if created:
            # Otherwise a crash could lose the new directory with every report in it.
            fsync_dir(directory.parent)
        self._remove_torn_writes()
        self._recorded = self._read_high_water()
        self._last = max([self._recorded, *self._seqs()])
        # Held across the write so that files appear in seq order: the pusher must
        # never see N+1 while N is still being written.
        self._put_lock = threading.Lock()
        self._done_lock = threading.Lock()

    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:0{_SEQ_DIGITS}d}{_SUFFIX}"

    def _remove_torn_writes(self) -> None:
        for name in os.listdir(self.directory):
            if name.startswith(".") and name.endswith(".tmp"):
                (self.directory / name).unlink(missing_ok=True)

    def _read_high_water(self) -> int:
        try:
            text = (self.directory / _HIGH_WATER).read_text()
        except FileNotFoundError:
            return 0
        return int(text) if text.strip().isdigit() else 0

    def _seqs(self) -> list[int]:
        seqs = []
        for name in os.listdir(self.directory):
            stem = name.removesuffix(_SUFFIX)
            if stem != name and len(stem) == _SEQ_DIGITS and stem.isdigit():
                seqs.append(int(stem))
        return sorted(seqs)

    def _read(self, seq: int) -> Report | None:
        path = self._path(seq)
        try:
            return _decode(path.read_bytes(), seq)
        except FileNotFoundError:
            return None  # delivered since the directory was listed
        except ValueError as exc:
            # Only damage below the file system gets here (writes are atomic). Held
            # back, it would stop every later report forever; set aside, not deleted.
            log.error("transition report %s unreadable (%s): set aside as .corrupt", path, exc)
            with contextlib.suppress(FileNotFoundError):
                path.rename(path.with_name(path.name + ".corrupt"))
            return None

    def put(self, report: Report) -> Report:
        """Persist ``report`` under the next seq; returns it with that seq.

        Once this returns the report survives a crash. Raises ``OSError`` when it
        could not be made durable.
        """
        with self._put_lock:
            self._last += 1
            stored = replace(report, seq=self._last)
            atomic_write(self._path(stored.seq), _encode(stored))
        return stored

    def pending(self) -> list[Report]:
        """Every report not yet acknowledged, in seq order."""
        return [r for r in map(self._read, self._seqs()) if r is not None]

    def head(self) -> Report | None:
        """The next report to deliver, without reading the whole backlog."""
        for seq in self._seqs():
            report = self._read(seq)
            if report is not None:
                return report
        return None

    def done(self, seq: int) -> None:
        """``seq`` was acknowledged: forget it."""
        with self._done_lock:
            if seq > self._recorded:
                atomic_write(self.directory / _HIGH_WATER, f"{seq}\n".encode())
                self._recorded = seq
            self._path(seq).unlink(missing_ok=True)


# The management server's answer is not used: at most this much is read.
MAX_RESPONSE = 64 * 1024


class _Rejected(Exception):
    """A non-2xx answer (a redirect included: it is no acknowledgement)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}")


class _Unreachable(Exception):
    pass


def _describe(exc: Exception) -> str:
    if isinstance(exc, _Rejected):
        return str(exc)
    if isinstance(exc, _Unreachable):
        return f"cannot reach: {exc}"
    return f"{type(exc).__name__}: {exc}"


class Pusher:
    """Deliver the spool to ``url`` on a daemon thread, in order, retrying forever.

    With ``url`` None nothing is sent: reports stay spooled until a pusher with a
    URL runs. ``delivered`` counts acknowledged POSTs (a repeat counts again);
    ``last_error`` describes the latest failure and is cleared by the next success.
    """

    def __init__(self, spool: Spool, url: str | None, timeout: float = 2.0,
                 backoff: float = 0.2, backoff_max: float = 5.0) -> None:
        self.spool = spool
        self.url = url
        self.timeout = timeout
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.delivered = 0
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        # Each POST, from connecting to the end of the answer, within this.
        self.deadline = max(self.timeout * 2, 1.0)
        self._thread = threading.Thread(target=self._run, name="vragent-reports", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """New reports were put in the spool."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread, waiting up to ``timeout``; a POST in flight takes ``self.timeout``."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = self.backoff
        while not self._stopping.is_set():
            report: Report | None = None
            try:
                report = self.spool.head() if self.url is not None else None
                if report is None or self.url is None:
                    self._wake.wait()
                    self._wake.clear()
                    continue
                self._send(self.url, report)
                # Out of the spool before it is counted: whoever waits on the
                # count must find the spool without it.
                self.spool.done(report.seq)
                self.delivered += 1
            # Anything at all: a dead thread would stop delivery without a trace.
            except Exception as exc:
                where = f"report {report.seq}: " if report is not None else ""
                self.last_error = where + _describe(exc)
                self._stopping.wait(delay)
                delay = min(delay * 2, self.backoff_max)
            else:
                self.last_error = None
                delay = self.backoff

    def _send(self, url: str, report: Report) -> None:
        """POST one report; a 2xx is the acknowledgement, anything else an error.

        http.client rather than urllib: nothing is followed (a 3xx is not an
        acknowledgement), no proxy is used (proxy variables the agent inherits
        are meant for other traffic), at most ``MAX_RESPONSE`` bytes are read,
        and the whole exchange has a deadline: a server that trickles bytes
        cannot hold the reports behind it.
        """
        body = json.dumps(report.to_json(), separators=(",", ":")).encode()
        parts = urllib.parse.urlsplit(url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else \
            http.client.HTTPConnection
        conn = cls(parts.hostname or "", parts.port, timeout=self.timeout)
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            sock = conn.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(self.deadline, expire)
        timer.daemon = True
        timer.start()
        try:
            path = parts.path or "/"
            conn.request("POST", f"{path}?{parts.query}" if parts.query else path, body,
                         {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read(MAX_RESPONSE)
            if expired.is_set():
                # Cut off mid-answer: what was parsed may be a truncated one.
                raise TimeoutError(f"no answer within {self.deadline:g} s")
            if not 200 <= response.status < 300:
                raise _Rejected(response.status, response.reason)
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set():
                raise TimeoutError(f"no answer within {self.deadline:g} s") from None
            if isinstance(exc, http.client.HTTPException):
                raise
            raise _Unreachable(str(exc.strerror or exc)) from None
        finally:
            timer.cancel()
            conn.close()
