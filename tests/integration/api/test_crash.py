"""The resident agent SIGKILLed at random instants while it serves API
requests from several clients (VRAGENT_API_KILLS times, supervisord
restarting it): nothing acknowledged is lost, and after the restart nothing
is half-applied — the system matches the store."""

from __future__ import annotations

import os
import random
import signal
import time

from vragent.settings import Settings
from vragent.store import Store
from vragent_lab.netns import wait_for

from .conftest import ApiRouter
from .test_api import setup
from .workload import run_clients, stored_seq

KILLS = int(os.environ.get("VRAGENT_API_KILLS", "12"))
SEED = int(os.environ.get("VRAGENT_API_KILLS_SEED", str(random.randrange(1 << 30))))
CLIENTS = 6


def test_killing_the_agent_while_it_serves_loses_nothing_acknowledged(
        api_router: ApiRouter) -> None:
    r = api_router
    setup(r)
    rng = random.Random(SEED)
    print(f"\nseed {SEED} (VRAGENT_API_KILLS_SEED)")
    pids: list[int] = []

    def serving() -> bool:
        try:
            return r.local.json("GET", "/v1/state")[0] == 200
        except (OSError, ConnectionError, Exception):  # noqa: BLE001 - restarting
            return False

    def kill_once() -> bool:
        wait_for(serving, 30, "the agent to serve again")
        # A random instant in the stream of commands.
        deadline = time.monotonic() + rng.uniform(0.05, 1.5)
        wait_for(lambda: time.monotonic() >= deadline, 5, "the kill instant")
        pid = r.appliance.pid("agent")
        assert pid and pid not in pids
        os.kill(pid, signal.SIGKILL)
        pids.append(pid)
        return len(pids) < KILLS

    senders = run_clients(r.local, CLIENTS, KILLS * 10.0, during=kill_once)
    assert len(pids) == KILLS
    wait_for(serving, 30, "the agent to serve after the last kill")

    docs = Store(Settings(root=r.router.root)).load()
    for s in senders:
        assert not s.errors, s.errors[:5]
        assert s.acks
        held = stored_seq(docs, s.client)
        # The store holds the last acknowledged command, or one sent after it
        # whose answer the kill cut off; never a rejected one.
        allowed = {s.acks[-1].seq} | {u for u in s.unanswered if u > s.acks[-1].seq}
        assert held in allowed, (s.client, held, s.acks[-1], s.unanswered)
        assert held not in s.rejected

    # Nothing half-applied: once restarted, the system matches the store.
    diff = r.router.run("diff")
    assert diff.stdout.strip().endswith("system already matches"), diff.stdout
    hosts = (r.router.root / "etc/vragent/dnsmasq.hosts").read_text()
    table = r.nft()
    for s in senders:
        held = stored_seq(docs, s.client)
        if s.client % 2 == 0:
            assert f"c{s.client}-{held}" in hosts
        else:
            assert f"tcp dport {30000 + s.client} dnat ip to 10.10.1.10:{1000 + held}" in table
    cut = sum(len(s.unanswered) for s in senders)
    print(f"{KILLS} kills, {sum(len(s.acks) for s in senders)} acknowledged, {cut} cut off")
