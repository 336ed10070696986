"""The pair at run time: its state, and the transitions the elector reports.

Transitions are read in order from the elector's notify FIFO by one reader;
each runs its steps (``transitions``: what the daemons declare plus the
pair's own), saving and reporting the new state after the critical ones,
with every report pushed to the management server without ever holding the
transition up. While master, a probe looks for the peer holding the same
addresses (dual master). Nothing here names a daemon: the elector's part
comes from its feature's ``Election``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Callable

from ..config import HaParams
from ..feature import Election
from ..pairstate import HaState
from ..settings import Settings
from ..supervised import registry
from ..system import arp, iproute
from ..system.cmd import spawn
from . import fifo, transitions
from .lifecycle import Lifecycle
from .log import log
from .report import Pusher, Report, Spool


class Pair:
    def __init__(self, settings: Settings, lifecycle: Lifecycle) -> None:
        self.settings = settings
        self.lifecycle = lifecycle
        self.spool = Spool(settings.report_spool)
        self.pusher: Pusher | None = None
        self.state = HaState.load(settings.ha_state)
        self.lock = threading.RLock()  # state, its file and its reports
        self.changed = threading.Condition(self.lock)  # notified on every transition
        self.ha: HaParams | None = None
        self.router = "router"
        self.election: Election | None = None
        self.buffer = fifo.LineBuffer()
        # The elector's priority changed (fast takeover listens).
        self.on_priority: Callable[[int], None] = lambda priority: None
        # Any transition but to backup (fast takeover lowers its boost).
        self.on_transition: Callable[[str], None] = lambda status: None

    @property
    def announce(self) -> tuple[tuple[str, str], ...]:
        return self.election.announce if self.election is not None else ()

    @property
    def elector(self) -> str:
        d = registry(self.settings).elector
        return d.name if d is not None else "elector"

    # -- transitions -----------------------------------------------------------
    def read_fifo(self, fd: int) -> int:
        """Handle every complete event line waiting; returns how many transitions ran."""
        count = 0
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return count
            if not data:
                return count
            for line in self.buffer.feed(data):
                event = fifo.parse(line)
                if event is None:
                    log(f"fifo: ignoring {line!r}")
                elif event.state.endswith("_PRIORITY") and event.priority is not None:
                    self.on_priority(event.priority)
                elif event.status is None:
                    log(f"fifo: {line}")
                else:
                    self.transition(event.status, f"{self.elector}: {event.state}")
                    count += 1

    def transition(self, status: str, reason: str) -> None:
        self.on_transition(status)
        if status == self.state.status:
            return
        started = time.monotonic()
        todo = transitions.steps(status, registry(self.settings))
        timings = [self._timed_step(step) for step in todo if step.critical]
        announced = time.monotonic()
        with self.lock:
            previous = self.state.status
            self.state.previous = previous
            self.state.status = status
            self.state.since = time.time()
            self.state.reason = reason
            self.state.transitions += 1
            self.state.dual_master = ""
            self.state.save(self.settings.ha_state)
            self.report(status, previous, reason)
            self.changed.notify_all()
        timings.append("announced")
        timings += [self._timed_step(step) for step in todo if not step.critical]
        announced_ms = round(1000 * (announced - started))
        done_ms = round(1000 * (time.monotonic() - started))
        log(f"{previous} -> {status} ({reason}): announced in {announced_ms} ms, done in "
            f"{done_ms} ms ({', '.join(timings)})", event="transition", previous=previous,
            state=status, reason=reason, announced_ms=announced_ms, done_ms=done_ms,
            steps=timings)

    def _timed_step(self, step: transitions.Step) -> str:
        """Run one step of a transition; what it was and how long it took."""
        t0 = time.monotonic()
        try:
            self._run_step(step)
        except Exception as exc:  # noqa: BLE001 - a failed step must not stop the rest
            log(f"{step.describe()} failed: {exc!r}")
        return f"{step.describe()} {1000 * (time.monotonic() - t0):.0f} ms"

    def _run_step(self, step: transitions.Step) -> None:
        if step.action == transitions.COMMAND:
            if registry(self.settings).get(step.daemon).conf.exists():
                done = spawn(list(step.args))
                if done.returncode != 0:
                    log(f"{step.describe()}: {done.stderr.strip()}")
        elif step.action == transitions.SERVICES:
            self.lifecycle.master_services(step.args[0] == "start")
        elif step.action == transitions.NEIGHBOURS:
            unsourced = self.election.unsourced if self.election is not None else ()
            forgotten = [x for dev in unsourced for x in iproute.flush_unresolved_neighbours(dev)]
            if forgotten:
                log(f"unresolved neighbours forgotten: {', '.join(forgotten)}")
        elif step.action == transitions.GARP:
            self._announce_addresses()

    def _announce_addresses(self) -> None:
        for ip, dev in self.announce:
            with contextlib.suppress(OSError, ValueError):
                arp.gratuitous(dev, ip)

    def report(self, status: str, previous: str, reason: str, **detail: str) -> None:
        try:
            self.spool.put(Report(self.router, status, previous, time.time(), reason,
                                  detail=detail))
        except OSError as exc:
            log(f"could not spool the report: {exc}")
            return
        if self.pusher:
            self.pusher.wake()

    def save(self, **fields: str) -> None:
        """Persist fields of the state that are not a transition (bfd, dual_master)."""
        with self.lock:
            if all(getattr(self.state, k) == v for k, v in fields.items()):
                return
            for k, v in fields.items():
                setattr(self.state, k, v)
            self.state.save(self.settings.ha_state)

    def observe_at_start(self) -> None:
        """After an agent restart, learn the elector's state from the kernel.

        The elector only reports changes; if it went on running while this
        process was away, the advert address tells whether it is master.
        """
        elector = registry(self.settings).elector
        if self.election is None or elector is None:
            return
        if not self.lifecycle.running(elector.name):
            if self.state.status == "PRIMARY":
                # The whole router was killed and started again without a
                # reboot: the PRIMARY on disk is from its previous life. Kept,
                # it would start the master's services and probe for a dual
                # master (announcing the shared addresses) before the elector
                # has said anything.
                self.transition("UNKNOWN", "the elector is not running at agent start")
            return
        link = iproute.links().get(self.election.interface)
        holds = link is not None and any(a.split("/")[0] == self.election.vip
                                         for a in link.ipv4)
        self.transition("PRIMARY" if holds else "BACKUP", "observed at agent start")

    # -- dual master -----------------------------------------------------------
    def dual_master_loop(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            period = max(1.0, 2 * (self.ha.advert_int if self.ha else 1.0))
            if stopping.wait(period):
                return
            if self.state.status != "PRIMARY":
                continue
            found = self._peer_holders()
            with self.lock:
                if self.state.status != "PRIMARY" or found == self.state.dual_master:
                    continue
                self.state.dual_master = found
                self.state.save(self.settings.ha_state)
                if found:
                    log(f"DUAL MASTER: {found}")
                    self.report("PRIMARY", "PRIMARY", f"dual master: {found}",
                                dual_master="true")
                else:
                    log("dual master condition cleared")
                    # While both were master, the peer's gratuitous ARP may have
                    # pointed the hosts at it; it has stepped down and holds
                    # nothing now, so this master announces its addresses again
                    # (else they would follow only once their ARP entries aged:
                    # a port forward dark for up to ~35 s, seen in the e2e suite).
                    self._announce_addresses()
                    self.report("PRIMARY", "PRIMARY", "dual master cleared",
                                dual_master="false")

    def _peer_holders(self) -> str:
        """Another host answering for one of our addresses means the peer is master too."""
        probed: set[str] = set()
        for ip, dev in list(self.announce):
            if dev in probed:
                continue
            probed.add(dev)
            try:
                holders = arp.duplicate_holders(dev, ip, timeout=0.2)
            except OSError as exc:
                if exc.errno not in (errno.ENODEV, errno.ENXIO, errno.ENETDOWN):
                    log(f"probing {ip} on {dev}: {exc}")
                continue
            except ValueError:
                continue
            if holders:
                return f"{ip} on {dev} is also held by {', '.join(sorted(holders))}"
        return ""
