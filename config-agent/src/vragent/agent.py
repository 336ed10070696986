"""The agent's commands: merge bags into the store and reconcile the box.

A command runs under the store lock from start to end: it reads the current
revision, validates and merges every bag, plans the whole box, and only when
all of that succeeded commits one new revision and applies it. If applying
fails the previous revision is restored and re-applied, so a failed command
leaves both the store and the system as they were.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .bags import merge, parse_bag, stored_model_part
from .config import Memo, RouterConfig
from .errors import ApplyError, BagError, VerifyError, VragentError
from .log import log
from .models.limits import escape, load_json
from .reconcile import Plan, execute, plan
from .settings import Settings
from .store import Store
from .store.batch import Command, read_limited
from .system import iproute
from .system.cmd import children_hold


@dataclass
class Outcome:
    rev: int
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: VragentError | None = None
    text: str = ""  # what a read-only command produced (a render)


Docs = dict[str, dict[str, object]]


class Agent:
    """Commands on one router. A long-lived Agent (the resident agent's) keeps
    the current revision's documents and models in memory between commands,
    so a command validates only what it brings; it still re-reads the store
    whenever another process committed a revision in between."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings)
        self.memo = Memo()
        self._current: tuple[int, Docs] | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The store's lock, held by every program a command runs meanwhile
        too: if the agent is killed mid-command, the lock stays held until
        its last ``ip`` or ``nft`` has finished, so the next command cannot
        overtake them."""
        with self.store.locked() as fd, children_hold(fd):
            yield

    def _plan(self, docs: Docs) -> Plan:
        return plan(RouterConfig.from_docs(docs, self.memo), self.settings, iproute.links())

    def _load(self) -> Docs:
        """The current revision's documents (under the store lock)."""
        rev = self.store.current_rev()
        if self._current is None or self._current[0] != rev:
            self._current = (rev, self.store.load(rev))
        return self._current[1]

    def _commit(self, docs: Docs, cause: str) -> int:
        rev = self.store.commit(docs, cause)
        self._current = (rev, docs)
        return rev

    def apply(self, commands: Iterable[Command], dry_run: bool = False) -> Outcome:
        """Apply bags in order, stopping at the first one that fails.

        Bags before the failing one are applied (as CloudStack's batches are);
        the failing one and those after it change nothing.
        """
        with self._locked():
            docs = self._load()
            merged = [docs]
            accepted: list[str] = []
            error: VragentError | None = None
            for cmd in commands:
                try:
                    bag = parse_bag(cmd.bag)
                except BagError as exc:
                    error = BagError(exc.bag_type, exc.problems, cmd.source)
                    break
                merged.append(merge(merged[-1], bag.type, bag, cmd.bag))  # type: ignore[attr-defined]
                part = stored_model_part(merged[-1], bag)
                if part is not None:
                    self.memo.remember(part, bag)
                accepted.append(cmd.source)
            # Plan once for the whole batch; only when that fails, find the
            # first bag whose result cannot be realised and keep those before it.
            p = self._plan(merged[-1]) if accepted else None
            while p is not None and p.problems:
                error = VerifyError([f"{accepted[-1]}: {x}" for x in p.problems])
                merged.pop()
                accepted.pop()
                p = self._plan(merged[-1]) if accepted else None
            if p is None:
                return Outcome(self.store.current_rev(), error=error)
            outcome = self._commit_and_apply(merged[-1], p, "apply " + " ".join(accepted),
                                             dry_run)
            outcome.error = error
            return outcome

    def _commit_and_apply(self, docs: dict[str, dict[str, object]], p: Plan, cause: str,
                          dry_run: bool) -> Outcome:
        if dry_run:
            return Outcome(self.store.current_rev(), execute(p, self.settings, dry_run=True),
                           p.warnings)
        previous = self.store.current_rev()
        rev = self._commit(docs, cause)
        try:
            changes = execute(p, self.settings)
        except ApplyError as exc:
            if rev != previous:
                old = self.store.load(previous)
                self._commit(old, f"revert to {previous}: applying {rev} failed")
                try:
                    execute(self._plan(old), self.settings)
                except VragentError as again:
                    # The resident agent's log; in a CLI without one, logging's
                    # last resort prints an error to stderr.
                    log(f"restoring revision {previous} also failed: {again}",
                        level=logging.ERROR)
            raise ApplyError(f"{exc}\nrevision {previous} restored") from None
        return Outcome(rev, changes, p.warnings)

    def reconcile(self, dry_run: bool = False, strict: bool = False) -> Outcome:
        """Re-apply the stored configuration; problems become warnings unless strict."""
        with self._locked():
            docs = self._load()
            p = self._plan(docs)
            if strict and p.problems:
                raise VerifyError(p.problems)
            skipped: list[str] = []
            changes = execute(p, self.settings, dry_run=dry_run, skipped=skipped)
            return Outcome(self.store.current_rev(), changes,
                           _unskipped(p.problems, skipped) + skipped + p.warnings)

    def boot(self) -> Outcome:
        """Boot parameters into the store, then the whole stored configuration onto the box."""
        path = self.settings.cmdline_file
        with self._locked():
            docs = self._load()
            if path.exists():
                raw = load_json(read_limited(path), str(path), duplicates_allowed=True)
                bag = parse_bag(raw, "cmdline")
                docs = merge(docs, "cmdline", bag)
                self._commit(docs, "boot parameters")
            p = self._plan(docs)
            skipped: list[str] = []
            changes = execute(p, self.settings, skipped=skipped)
            return Outcome(self.store.current_rev(), changes,
                           _unskipped(p.problems, skipped) + skipped + p.warnings)

    def render(self, subsystem: str) -> Outcome:
        """What the stored configuration renders to for one subsystem."""
        with self._locked():
            p = self._plan(self._load())
            names = [s.subsystem.NAME for s in p.steps]
            if subsystem not in names:
                raise VragentError(f"render: no feature renders {escape(subsystem)} "
                                   f"(known: {', '.join(names)})")
            text = "".join(s.rendered.text() for s in p.steps if s.subsystem.NAME == subsystem)
            return Outcome(self.store.current_rev(), text=text)

    def rollback(self, rev: int | None) -> Outcome:
        """Make an earlier revision current again (as a new revision) and apply it."""
        with self._locked():
            target = rev if rev is not None else self.store.current_rev() - 1
            docs = self.store.load_kept(target)
            p = self._plan(docs)
            if p.problems:
                raise VerifyError(p.problems)
            return self._commit_and_apply(docs, p, f"rollback to {target}", dry_run=False)


def _unskipped(problems: list[str], skipped: list[str]) -> list[str]:
    """Problems not already named by a skipped step's message."""
    return [x for x in problems if not any(x in s for s in skipped)]
