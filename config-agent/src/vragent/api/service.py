"""The command queue: every command the router takes, applied one at a time.

The HTTP API (over TCP on the control address and over the unix socket the
CLI uses) and the CloudStack entry points all end here. One worker thread
applies commands strictly in the order they were queued; a request joins the
queue only once its whole body has arrived, so a slow client delays nobody
but itself. The worker's ``Agent`` is long-lived: it keeps the current
revision's documents and models in memory between commands. Each command is
still committed to the store (crash-safe) before its result is returned, so
an acknowledged command survives a crash at any instant.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..agent import Agent, Outcome
from ..errors import (
    ApplyError,
    BagError,
    RevisionNotKept,
    StoreError,
    VerifyError,
    VragentError,
)
from ..log import log
from ..models.limits import escape
from ..settings import Settings
from ..store.batch import Command, commands_from_bytes
from ..system.proc import trim_heap
from .metrics import Metrics

# Outcomes as the API reports them, by the error class (None: no error).
OUTCOMES: dict[type[VragentError] | None, tuple[str, int]] = {
    None: ("applied", 200),
    BagError: ("rejected", 422),
    VerifyError: ("unrealisable", 409),
    ApplyError: ("failed", 500),
    RevisionNotKept: ("not-kept", 404),
    StoreError: ("store-unreadable", 500),
    VragentError: ("failed", 500),
}


@dataclass
class Result:
    """What a command did; the same for the CLI, the API and the entry points."""

    kind: str
    revision: int
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: VragentError | None = None
    duration_s: float = 0.0
    text: str = ""  # what a render produced
    # The command ran to its end (its report is meaningful: in a batch, the
    # bags before a rejected one were applied); False: it stopped on an error.
    completed: bool = True

    @property
    def outcome(self) -> str:
        return OUTCOMES[_error_class(self.error)][0]

    @property
    def http_status(self) -> int:
        return OUTCOMES[_error_class(self.error)][1]

    @property
    def exit_code(self) -> int:
        return self.error.exit_code if self.error is not None else 0

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "outcome": self.outcome,
            "revision": self.revision,
            "changes": self.changes,
            "warnings": self.warnings,
            "exit_code": self.exit_code,
            "completed": self.completed,
        }
        if self.error is not None:
            body["error"] = {"message": str(self.error),
                             "problems": list(getattr(self.error, "problems", []))}
        return body


def _error_class(error: VragentError | None) -> type[VragentError] | None:
    if error is None:
        return None
    for cls in type(error).__mro__:
        if cls in OUTCOMES:
            return cls
    return VragentError


@dataclass
class Job:
    kind: str  # apply, diff, reconcile, rollback, boot
    run: Callable[[Agent], Outcome]
    describe: dict[str, Any]  # for the log line: never a bag's content
    future: Future[Result] = field(default_factory=Future)
    size: int = 0  # bytes it brought


# After a command this big, the heap its parsing left behind is handed back.
TRIM_AFTER = 256 * 1024


class CommandService:
    """One queue, one worker, one long-lived Agent."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.agent = Agent(settings)
        self.metrics = metrics or Metrics()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._trim_due = False
        self._thread = threading.Thread(target=self._work, name="vragent-commands", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    # -- submitting --------------------------------------------------------
    def submit(self, job: Job) -> Future[Result]:
        self._queue.put(job)
        return job.future

    def apply(self, payloads: list[tuple[str, bytes]], dry_run: bool = False,
              bag_type: str = "", names: list[str] | None = None) -> Job:
        """A job applying ``payloads`` ((source, bytes) of a bag, a JSON list of
        bags or an aggregated batch), in order, as one command.

        ``bag_type``: each payload must be one bag of that type (its ``type``
        may be left out). ``names``: the sources of a JSON list's items.
        """
        def run(agent: Agent) -> Outcome:
            commands: list[Command] = []
            for source, data in payloads:
                commands += commands_from_bytes(data, source, names)
            if bag_type:
                commands = [_typed(c, bag_type) for c in commands]
                if len(commands) != 1:
                    raise BagError(bag_type, [f"expected one {bag_type} bag, got a batch"])
            if dry_run and not commands:
                return agent.reconcile(dry_run=True)
            return agent.apply(commands, dry_run=dry_run)

        kind = "diff" if dry_run else "apply"
        return Job(kind, run, {"sources": [s for s, _ in payloads]},
                   size=sum(len(d) for _, d in payloads))

    def reconcile(self) -> Job:
        return Job("reconcile", lambda agent: agent.reconcile(), {})

    def rollback(self, rev: int | None) -> Job:
        return Job("rollback", lambda agent: agent.rollback(rev), {"target": rev})

    def boot(self) -> Job:
        return Job("boot", lambda agent: agent.boot(), {})

    def render(self, subsystem: str) -> Job:
        return Job("render", lambda agent: agent.render(subsystem), {"subsystem": subsystem})

    def run(self, job: Job, timeout: float | None = None) -> Result:
        """Queue ``job`` and wait for it (for callers that are threads)."""
        return self.submit(job).result(timeout)

    # -- the worker --------------------------------------------------------
    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if not job.future.set_running_or_notify_cancel():
                continue
            result = self._execute(job)
            job.future.set_result(result)
            del job
            # Off the command's path (it is answered): what it left behind is
            # collected, and what lives on (the configuration: hundreds of
            # thousands of objects with 10,000 rules) is frozen out of the
            # cyclic collector, which would otherwise walk it again and again,
            # 25-50 ms each time, in the middle of later commands.
            gc.collect()
            gc.freeze()
            if self._trim_due:
                self._trim_due = False
                # glibc keeps the arenas a 2 MB bag's parsing and validation
                # filled (tens of MB); a resident process would hold them for ever.
                trim_heap()

    def _execute(self, job: Job) -> Result:
        started = time.monotonic()
        try:
            outcome = job.run(self.agent)
            result = Result(job.kind, outcome.rev, outcome.changes, outcome.warnings,
                            outcome.error, text=outcome.text)
        except VragentError as exc:
            result = Result(job.kind, self._rev(), error=exc, completed=False)
        except Exception as exc:  # noqa: BLE001 - one bad command must not end the queue
            result = Result(job.kind, self._rev(), completed=False,
                            error=VragentError(f"internal error: {type(exc).__name__}: {exc}"))
        result.duration_s = time.monotonic() - started
        self._trim_due = job.size >= TRIM_AFTER or job.kind in ("boot", "rollback")
        if job.kind != "render":
            self.metrics.command(job.kind, result.outcome, result.duration_s)
            log_command(job, result, sorted({c.split(":", 1)[0] for c in result.changes}))
        return result

    def _rev(self) -> int:
        try:
            return self.agent.store.current_rev()
        except OSError:
            return 0


def _typed(cmd: Command, bag_type: str) -> Command:
    bag = cmd.bag
    if isinstance(bag, dict):
        sent = bag.get("type", bag_type)
        if sent != bag_type:
            raise BagError(bag_type, [f"type: this is the {bag_type} endpoint (got "
                                      f"{escape(str(sent), 40)})"], cmd.source)
        if "type" not in bag:
            bag = {"type": bag_type, **bag}
    return Command(cmd.source, bag)


def log_command(job: Job, result: Result, subsystems: list[str]) -> None:
    """One structured record per command. Names and numbers only: a bag's
    content (and so a secret) never reaches the log."""
    fields = {"kind": job.kind, **job.describe, "revision": result.revision,
              "outcome": result.outcome, "exit_code": result.exit_code,
              "duration_ms": round(result.duration_s * 1000, 1), "changed": subsystems}
    log(f"{job.kind}: {result.outcome}", event="command", **fields)
