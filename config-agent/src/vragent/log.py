"""The agent's log: one JSON object per line, whichever thread writes it.

Every record of the resident agent (a command, a message of the daemon loop,
a transition of the pair, and whatever a library logs: uvicorn, asyncio,
warnings, an exception nobody caught) goes through the standard ``logging``
module to one handler on stderr. supervisord keeps that in
``var/log/vragent/agent.log`` and rotates it (services/supervisord.conf).

Why a record can be trusted to be one line:

- it is one ``json.dumps`` with ``ensure_ascii``: a newline, a control
  character, a byte that was not UTF-8 (a surrogate escape from a file name or
  a daemon's output) all come out escaped, so the line is plain ASCII;
- the handler writes it and its newline with one ``write`` under its lock,
  then flushes: two threads cannot share a line (``print`` writes the text and
  the newline separately, which is how two records once landed on one line);
- it is at most ``MAX_LINE`` bytes, ``PIPE_BUF``: its one ``write`` into
  supervisord's pipe is atomic, so an agent killed while writing leaves the
  whole record or none of it, never half a line for the next one to continue.
  A longer field is cut (the head of a message is kept, the tail of a
  traceback) and ``truncated`` names it with its full length.

Fields: ``time`` (UTC, to the millisecond), ``level``, ``event`` (``message``
unless the caller names one: ``command``, ``transition`` ...), ``message``,
``logger``, ``thread``, then the caller's own (``log(text, event=..., k=v)``).
``exception`` holds a traceback. Readers take a line at a time with
``json.loads``; ``parse_lines`` does it strictly, for the tests and benches.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
import types
from typing import Any, TextIO

LOGGER = logging.getLogger("vragent")
FIELDS = "vragent_fields"  # the LogRecord attribute carrying a caller's fields
MAX_LINE = 4096  # bytes with the newline: PIPE_BUF on Linux (see above)
CUT = " [...]"
# Fields kept by their end: the last frames and the error are what matters.
KEEP_TAIL = ("exception", "stack")
FIRST = ("time", "level", "event", "message")


def log(message: str, /, *, event: str = "message", level: int = logging.INFO,
        exc_info: bool = False, **fields: Any) -> None:
    """One record: ``log("reloading haproxy")``, or with fields of its own,
    ``log("poll", event="usage", sent=123)``; ``exc_info=True`` in an
    ``except`` adds the traceback. Never a secret: a field's value goes to the
    log as it is."""
    LOGGER.log(level, message, exc_info=exc_info, extra={FIELDS: {"event": event, **fields}})


def stamp(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int(when % 1 * 1000):03d}Z"


def _default(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def _dumps(doc: object) -> str:
    return json.dumps(doc, ensure_ascii=True, allow_nan=False, default=_default)


def _ordered(doc: dict[str, Any]) -> dict[str, Any]:
    """What a person reads first, first; the rest by name (a stable order)."""
    head = {k: doc[k] for k in FIRST if k in doc}
    return head | {k: doc[k] for k in sorted(doc, key=str) if k not in head}


def _plain(value: object) -> object:
    """What a field becomes when json cannot take it as it is (a cycle, a NaN)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return repr(value)


def encode(doc: dict[str, Any], limit: int = MAX_LINE - 1) -> str:
    """``doc`` as one line of at most ``limit`` ASCII characters."""
    doc = _ordered(doc)
    try:
        line = _dumps(doc)
    except (TypeError, ValueError, RecursionError):
        doc = _ordered({str(k): _plain(v) for k, v in doc.items()})
        line = _dumps(doc)
    if len(line) <= limit:
        return line
    doc = dict(doc)
    cut: dict[str, int] = {}
    doc["truncated"] = cut
    while True:
        line = _dumps(doc)
        if len(line) <= limit:
            return line
        key = max((k for k in doc if k != "truncated"), key=lambda k: len(_dumps(doc[k])))
        value = doc[key]
        text = value if isinstance(value, str) else _dumps(value)
        if len(_dumps(text)) <= 2 * len(CUT) + 16:
            break  # only small fields left: see below
        cut.setdefault(key, len(text))
        # Each character dropped shortens the line by at least one (more when
        # it was escaped): dropping the excess, and the mark's room, fits it
        # or leaves less to cut on the next round.
        keep = max(0, len(text) - (len(line) - limit) - len(CUT) - 24)
        doc[key] = CUT + text[len(text) - keep:] if key in KEEP_TAIL else text[:keep] + CUT
    # Thousands of small fields: only the core of the record is kept.
    core: dict[str, Any] = {k: doc[k] for k in ("time", "level", "event", "logger", "thread")
                            if k in doc}
    core["message"] = str(doc.get("message", ""))[:limit // 2]
    core["truncated"] = {"fields": len(doc)}
    return encode(core, limit)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception as exc:  # noqa: BLE001 - a bad format string still gives a record
            message = f"{record.msg!r} % {record.args!r} (cannot be formatted: {exc!r})"
        doc: dict[str, Any] = {
            "time": stamp(record.created),
            "level": record.levelname.lower(),
            "event": "message",
            "message": message,
            "logger": record.name,
            "thread": record.threadName,
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return encode(doc)


class JsonHandler(logging.Handler):
    """JSON lines on ``stream``, or on whatever ``sys.stderr`` is when a record
    comes (a test's capture replaces it; the agent's is supervisord's pipe).
    ``Handler.handle`` holds the handler's lock around ``emit``, which writes
    the record and its newline in one call and flushes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            stream = self.stream if self.stream is not None else sys.stderr
            stream.write(line)
            stream.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's contract: never raise into the caller
            self.handleError(record)


def _crash(kind: str, exc_type: type[BaseException], exc: BaseException | None,
           tb: types.TracebackType | None, where: str = "") -> None:
    LOGGER.error(f"{kind}{where}: {exc_type.__name__}: {exc}",
                 exc_info=(exc_type, exc, tb),  # type: ignore[arg-type]
                 extra={FIELDS: {"event": kind}})


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    _crash("uncaught", args.exc_type, args.exc_value, args.exc_traceback, f" in thread {name}")


def _main_hook(exc_type: type[BaseException], exc: BaseException,
               tb: types.TracebackType | None) -> None:
    _crash("uncaught", exc_type, exc, tb)


def _unraisable_hook(u: Any) -> None:
    what = u.err_msg or "Exception ignored"
    _crash("unraisable", u.exc_type, u.exc_value, u.exc_traceback, f" ({what}: {u.object!r})")


def setup(stream: TextIO | None = None, hooks: bool = True) -> JsonHandler:
    """Make every record of this process a JSON line on ``stream`` (stderr).

    One handler on the root logger, so libraries' records come out the same
    way; with ``hooks``, an exception no one caught (in any thread) and a
    warning become records too, instead of lines of text in the log."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, JsonHandler)]:
        root.removeHandler(old)
    handler = JsonHandler(stream)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # A record that cannot be written (supervisord gone) must not print a
    # traceback of its own onto the same stream.
    logging.raiseExceptions = False
    if hooks:
        logging.captureWarnings(True)
        threading.excepthook = _thread_hook
        sys.excepthook = _main_hook
        sys.unraisablehook = _unraisable_hook
    return handler


def parse_lines(text: str, unfinished_ok: bool = False) -> list[dict[str, Any]]:
    """Every line of a log, each one JSON object; the first line that is not
    raises ValueError naming it (a reader that skips bad lines hides the bug
    this log exists to avoid). With ``unfinished_ok``, text after the last
    newline is a record still being written (a reader of a running agent's
    log), not a line yet: left for the next reading."""
    lines = text.split("\n")
    last = lines.pop()  # "" when the text ends with a newline, as a whole log does
    if last and not unfinished_ok:
        lines.append(last)
    out = []
    for number, line in enumerate(lines, 1):
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"log line {number} is not one JSON object ({exc}): "
                             f"{line[:300]!r}") from None
        if not isinstance(doc, dict):
            raise ValueError(f"log line {number} is not a JSON object: {line[:300]!r}")
        out.append(doc)
    return out
