"""The revisioned store: commits, history, pruning, crash leftovers, the lock."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from vragent.errors import StoreError
from vragent.settings import Settings
from vragent.store import Store, atomic_write

from tests.unit.builders import sample_docs


def _store(root: Path, kept: int = 100) -> Store:
    return Store(Settings(root=root, revisions_kept=kept))


def _doc(n: int) -> dict[str, Any]:
    return {"staticroutes": {f"10.{n}.0.0/16": {"network": f"10.{n}.0.0/16",
                                                 "gateway": "172.30.0.254"}}}


def _objects(store: Store) -> set[str]:
    return {p.name for p in store.objects.iterdir()}


def test_empty_store(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.current_rev() == 0
    assert store.load() == {}
    assert store.history() == []
    assert not (tmp_path / "var/lib/vragent").exists()  # reading creates nothing


def test_commit_load_round_trip(tmp_path: Path) -> None:
    store = _store(tmp_path)
    docs = sample_docs()
    rev = store.commit(docs, "apply samples")
    assert rev == 1
    assert store.current_rev() == 1
    assert store.load() == docs
    assert store.load(1) == docs
    # A fresh Store over the same directory sees the same thing.
    assert _store(tmp_path).load() == docs
    # One object per document type, named after the hash of its content.
    assert len(_objects(store)) == len(docs)
    manifest = json.loads((store.revisions / "00000001.json").read_text())
    assert manifest["rev"] == 1 and manifest["cause"] == "apply samples"
    for bag_type, digest in manifest["docs"].items():
        data = (store.objects / f"{digest}.json").read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
        assert json.loads(data) == docs[bag_type]


def test_unchanged_commit_creates_no_revision(tmp_path: Path) -> None:
    store = _store(tmp_path)
    docs = sample_docs()
    assert store.commit(docs, "first") == 1
    # Same content, different dict order: still unchanged.
    reordered = {k: docs[k] for k in reversed(list(docs))}
    assert store.commit(reordered, "again") == 1
    assert [r.rev for r in store.history()] == [1]
    assert store.commit({}, "empty") == 2  # dropping every document is a change
    assert store.load() == {}


def test_history(tmp_path: Path) -> None:
    store = _store(tmp_path)
    t0 = time.time()
    for n in range(1, 4):
        assert store.commit(_doc(n), f"cause {n}") == n
    history = store.history()
    assert [(r.rev, r.cause) for r in history] == [(1, "cause 1"), (2, "cause 2"),
                                                   (3, "cause 3")]
    assert all(t0 - 1 <= r.time <= time.time() + 1 for r in history)
    assert [r.time for r in history] == sorted(r.time for r in history)
    assert history[0].docs != history[1].docs
    assert store.load(2) == _doc(2)
    assert store.revision(3) == history[2]


def test_rollback_is_a_new_revision_reusing_objects(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.commit(_doc(1), "one")
    store.commit(_doc(2), "two")
    before = _objects(store)
    assert store.commit(store.load(1), "rollback to 1") == 3
    assert store.load() == _doc(1)
    assert _objects(store) == before  # nothing new written
    assert store.revision(3).docs == store.revision(1).docs


def test_pruning_keeps_newest_and_collects_objects(tmp_path: Path) -> None:
    store = _store(tmp_path, kept=3)
    shared = {"cmdline": {"config": {"type": "vpcrouter"}}}
    for n in range(1, 7):
        store.commit({**shared, **_doc(n)}, f"rev {n}")
    assert [r.rev for r in store.history()] == [4, 5, 6]
    assert store.current_rev() == 6
    live = {f"{d}.json" for r in store.history() for d in r.docs.values()}
    assert _objects(store) == live
    assert len(live) == 4  # three route documents plus the shared cmdline
    for rev in (4, 5, 6):
        assert store.load_kept(rev) == {**shared, **_doc(rev)}


@pytest.mark.parametrize("rev", [1, 3, 7, 0, -1])
def test_load_kept_of_pruned_or_unknown_revision(tmp_path: Path, rev: int) -> None:
    store = _store(tmp_path, kept=3)
    for n in range(1, 7):
        store.commit(_doc(n), f"rev {n}")
    with pytest.raises(StoreError, match=rf"revision {rev} is not kept \(kept: 4-6\)"):
        store.load_kept(rev)


def test_load_kept_on_empty_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"kept: none"):
        _store(tmp_path).load_kept(1)


def test_load_of_missing_revision_raises(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.commit(_doc(1), "one")
    with pytest.raises(StoreError, match="revision 5: cannot be read"):
        store.load(5)


def test_missing_object_raises(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.commit(_doc(1), "one")
    for p in store.objects.iterdir():
        p.unlink()
    with pytest.raises(StoreError, match="revision 1: document staticroutes unreadable"):
        store.load()


def test_leftover_temp_files_are_ignored(tmp_path: Path) -> None:
    store = _store(tmp_path, kept=2)
    docs = sample_docs()
    store.commit(docs, "one")
    # A crash during the next commit: a torn manifest and a torn object left behind.
    (store.revisions / ".00000002.json.123.tmp").write_text('{"rev": 2, "docs": {')
    (store.revisions / "00000002.json.tmp").write_text("")
    torn = store.objects / f".{'ab' * 32}.json.123.tmp"
    torn.write_text('{"half')
    assert store.current_rev() == 1
    assert store.load() == docs
    assert [r.rev for r in store.history()] == [1]
    # The next commit numbers on from the last real manifest.
    assert store.commit(_doc(2), "two") == 2
    assert store.load() == _doc(2)


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "file.json"
    atomic_write(target, b"old")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]
    assert (target.stat().st_mode & 0o777) == 0o600


# -- the lock ---------------------------------------------------------------------

_HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from vragent.settings import Settings
    from vragent.store import Store

    store = Store(Settings(root=Path(sys.argv[1])))
    with store.locked():
        print("held", flush=True)
        sys.stdin.readline()
""")

_INCREMENT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from vragent.settings import Settings
    from vragent.store import Store

    store = Store(Settings(root=Path(sys.argv[1])))
    for _ in range(int(sys.argv[2])):
        with store.locked():
            docs = store.load()
            n = docs.get("counter", {}).get("n", 0)
            store.commit({"counter": {"n": n + 1}}, f"pid {sys.argv[3]}")
""")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    return env


def test_lock_makes_a_second_process_wait(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=_env())
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "held"
        acquired = threading.Event()

        def waiter() -> None:
            with _store(tmp_path).locked():
                acquired.set()

        thread = threading.Thread(target=waiter, daemon=True)
        thread.start()
        assert not acquired.wait(0.5), "lock taken while another process held it"
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert acquired.wait(10), "lock not taken after the holder released it"
        thread.join(10)
    finally:
        holder.kill()
        holder.wait()


def test_lock_serialises_read_modify_write(tmp_path: Path) -> None:
    rounds = 15
    procs = [subprocess.Popen([sys.executable, "-c", _INCREMENT, str(tmp_path), str(rounds),
                               str(i)], env=_env()) for i in range(2)]
    for p in procs:
        assert p.wait(60) == 0
    store = _store(tmp_path)
    # No update lost, no revision number reused.
    assert store.load() == {"counter": {"n": 2 * rounds}}
    assert [r.rev for r in store.history()] == list(range(1, 2 * rounds + 1))


def test_lock_released_on_exit_and_on_error(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(RuntimeError), store.locked():
        raise RuntimeError("boom")
    with store.locked():  # released: can be taken again
        store.commit(_doc(1), "x")
    assert store.settings.lock_file.exists()
    assert store.load() == _doc(1)


def test_atomic_write_never_writes_through_a_planted_symlink(tmp_path: Path) -> None:
    import os

    from vragent.store.store import atomic_write

    victim = tmp_path / "victim"
    victim.write_text("keep")
    target = tmp_path / "doc.json"
    (tmp_path / f".doc.json.{os.getpid()}.tmp").symlink_to(victim)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new" and victim.read_text() == "keep"
    assert target.stat().st_mode & 0o777 == 0o600


def test_state_directory_is_root_only(tmp_path: Path) -> None:
    from vragent.settings import Settings
    from vragent.store import Store

    s = Settings(root=tmp_path)
    s.state_dir.mkdir(parents=True, mode=0o755)
    s.state_dir.chmod(0o755)
    Store(s).ensure()
    assert s.state_dir.stat().st_mode & 0o777 == 0o700
