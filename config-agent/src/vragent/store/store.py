"""The persistent central configuration, with numbered revisions.

Layout under ``settings.state_dir``::

    objects/<sha256>.json      one document (all of one bag type), immutable
    revisions/<00000042>.json  manifest: {rev, time, cause, docs: {type: sha256}}
    lock                       held for the whole of a command

The highest-numbered manifest is the current configuration. A commit writes
the changed documents, then one new manifest; each file goes to a temp name, is
fsynced, renamed into place, and its directory fsynced. A SIGKILL at any instant
therefore leaves either the previous manifest or the new one, never a torn
configuration spread over several types. Rollback is a new revision that points
at old documents, so history only ever grows at the end.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RevisionNotKept, StoreError
from ..settings import Settings

Docs = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Revision:
    rev: int
    time: float
    cause: str
    docs: dict[str, str]


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(path: Path) -> None:
    """``path`` exists and only root enters it: the state and run directories
    hold secrets and the files daemons trust (a planted link needs write access)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` so a crash leaves the old file or the new one.

    The file has ``mode`` from its first byte (umask aside: it is set explicitly).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # A leftover of a killed writer with our pid, or a planted symlink: removed
    # (unlink never follows), then created afresh, never opened through a link.
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        if mode != 0o600:
            os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class Store:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.objects = settings.state_dir / "objects"
        self.revisions = settings.state_dir / "revisions"
        # (doc, digest) by id(doc): a long-lived Store (the resident agent's)
        # does not re-encode the documents a command did not change.
        self._digests: dict[int, tuple[dict[str, Any], str]] = {}

    def ensure(self) -> None:
        private_dir(self.settings.state_dir)
        for path in (self.objects, self.revisions):
            path.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[int]:
        """Serialise commands: a second one waits here, it never interleaves.

        Gives the lock's descriptor: a command that runs programs meanwhile
        hands it to them (``system.cmd.children_hold``, as ``Agent`` does), so
        the lock outlives a killed agent until they have finished."""
        self.ensure()
        fd = os.open(self.settings.lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._remove_torn_writes()
            yield fd
        finally:
            os.close(fd)

    def _remove_torn_writes(self) -> None:
        """Temp files of a command killed mid-write: never referenced, safe to drop."""
        for folder in (self.objects, self.revisions):
            for name in os.listdir(folder):
                if name.startswith(".") and name.endswith(".tmp"):
                    (folder / name).unlink(missing_ok=True)

    # -- reading -----------------------------------------------------------

    def _revision_numbers(self) -> list[int]:
        if not self.revisions.is_dir():
            return []
        numbers = []
        for name in os.listdir(self.revisions):
            stem, dot, ext = name.partition(".")
            if dot and ext == "json" and stem.isdigit():
                numbers.append(int(stem))
        return sorted(numbers)

    def _manifest_path(self, rev: int) -> Path:
        return self.revisions / f"{rev:08d}.json"

    def revision(self, rev: int) -> Revision:
        try:
            data = json.loads(self._manifest_path(rev).read_bytes())
        except (OSError, ValueError) as exc:
            raise StoreError(f"revision {rev}: cannot be read ({exc})") from None
        return Revision(rev=data["rev"], time=data["time"], cause=data["cause"], docs=data["docs"])

    def history(self) -> list[Revision]:
        return [self.revision(n) for n in self._revision_numbers()]

    def current_rev(self) -> int:
        numbers = self._revision_numbers()
        return numbers[-1] if numbers else 0

    def load(self, rev: int | None = None, types: tuple[str, ...] | None = None) -> Docs:
        """All documents of a revision (the current one by default); only
        ``types`` when given."""
        number = self.current_rev() if rev is None else rev
        if number == 0:
            return {}
        manifest = self.revision(number)
        docs: Docs = {}
        for bag_type, digest in manifest.docs.items():
            if types is not None and bag_type not in types:
                continue
            try:
                docs[bag_type] = json.loads((self.objects / f"{digest}.json").read_bytes())
            except (OSError, ValueError) as exc:
                raise StoreError(
                    f"revision {number}: document {bag_type} unreadable: {exc}"
                ) from None
        return docs

    # -- writing -----------------------------------------------------------

    def commit(self, docs: Docs, cause: str) -> int:
        """Persist ``docs`` as a new revision; returns its number (unchanged: no revision)."""
        self.ensure()
        current = self.current_rev()
        old = self.revision(current).docs if current else {}
        refs: dict[str, str] = {}
        seen: dict[int, tuple[dict[str, Any], str]] = {}
        for bag_type, doc in sorted(docs.items()):
            hit = self._digests.get(id(doc))
            data = None
            if hit is not None and hit[0] is doc:
                digest = hit[1]
            else:
                data = _encode(doc)
                digest = hashlib.sha256(data).hexdigest()
            seen[id(doc)] = (doc, digest)
            path = self.objects / f"{digest}.json"
            if not path.exists():
                atomic_write(path, data if data is not None else _encode(doc))
            refs[bag_type] = digest
        self._digests = seen
        if refs == old:
            return current
        rev = current + 1
        manifest = {"rev": rev, "time": time.time(), "cause": cause, "docs": refs}
        atomic_write(self._manifest_path(rev), _encode(manifest))
        self._prune()
        return rev

    def load_kept(self, rev: int) -> Docs:
        numbers = self._revision_numbers()
        if rev not in numbers:
            raise RevisionNotKept(f"revision {rev} is not kept (kept: {_span(numbers)})")
        return self.load(rev)

    def _prune(self) -> None:
        numbers = self._revision_numbers()
        doomed = numbers[: -self.settings.revisions_kept]
        if not doomed:
            return
        for rev in doomed:
            self._manifest_path(rev).unlink(missing_ok=True)
        live = {d for n in self._revision_numbers() for d in self.revision(n).docs.values()}
        for name in os.listdir(self.objects):
            if name.endswith(".json") and name[:-5] not in live:
                (self.objects / name).unlink(missing_ok=True)


def _span(numbers: list[int]) -> str:
    return f"{numbers[0]}-{numbers[-1]}" if numbers else "none"
