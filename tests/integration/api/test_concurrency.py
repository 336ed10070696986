"""20 clients sending interleaved commands to one router's API for a minute
(VRAGENT_CONCURRENCY_SECONDS): every acknowledged command is in the store
exactly once and in its client's order, nothing rejected is, and at the end
the system matches the store."""

from __future__ import annotations

import os
from collections import Counter

from vragent.settings import Settings
from vragent.store import Store

from .conftest import ApiRouter
from .test_api import setup
from .workload import run_clients, stored_seq

CLIENTS = 20
SECONDS = float(os.environ.get("VRAGENT_CONCURRENCY_SECONDS", "60"))


def test_twenty_clients_interleaving_commands_for_a_minute(api_router: ApiRouter) -> None:
    r = api_router
    setup(r)
    first = r.rev()
    senders = run_clients(r.local, CLIENTS, SECONDS)
    for s in senders:
        assert not s.errors, s.errors[:5]
        assert not s.unanswered
        assert s.acks, f"client {s.client} got nothing acknowledged"

    changed = [a.revision for s in senders for a in s.acks if a.changed]
    # Each command that changed something is its own revision: none shared, none lost.
    assert max(Counter(changed).values()) == 1
    for s in senders:
        revisions = [a.revision for a in s.acks]
        assert revisions == sorted(revisions), f"client {s.client}: acknowledged out of order"
        assert [a.seq for a in s.acks] == sorted(a.seq for a in s.acks)

    store = Store(Settings(root=r.router.root))
    docs = store.load()
    for s in senders:
        assert stored_seq(docs, s.client) == s.acks[-1].seq, f"client {s.client}"
    # The revisions still kept name the very command each client was told about.
    kept = {rev.rev: rev.cause for rev in store.history()}
    acked = {a.revision: f"apply c{s.client}-{a.seq}" for s in senders for a in s.acks
             if a.changed}
    checked = [rev for rev in acked if rev in kept]
    assert checked and all(kept[rev] == acked[rev] for rev in checked)
    assert r.rev() == first + len(changed)

    # The system matches the store: nothing left to do, and the live daemons' files say so.
    diff = r.router.run("diff")
    assert diff.stdout.strip().endswith("system already matches"), diff.stdout
    hosts = (r.router.root / "etc/vragent/dnsmasq.hosts").read_text()
    table = r.nft()
    for s in senders:
        last = s.acks[-1].seq
        if s.client % 2 == 0:
            assert f"c{s.client}-{last}" in hosts
        else:
            assert f"tcp dport {30000 + s.client} dnat ip to 10.10.1.10:{1000 + last}" in table
    total = sum(len(s.acks) + len(s.rejected) for s in senders)
    print(f"\n{total} commands from {CLIENTS} clients in {SECONDS:.0f} s "
          f"({total / SECONDS:.0f}/s), {len(changed)} revisions")
