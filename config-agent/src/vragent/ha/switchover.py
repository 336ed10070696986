"""Planned switchover: mastership moves to the peer on purpose, losing nothing.

Killing keepalived, or making it resign (priority 0), gives the addresses up
before the peer has them: a gap of the peer's skew time in which nothing is
forwarded. Here the master goes on forwarding until the peer is master:

1. this router's adverts are silenced (a rule of their own in nftables), so
   the peer, which never preempts, sees a dead master and takes over after
   its master-down interval (3 x advert_int + skew), addresses, gratuitous
   ARP and conntrackd commit included;
2. this router's priority is dropped to the floor (keepalived's track_file,
   weight -253), so the peer's first advert makes it backup at once: there is
   no instant at which neither router holds the addresses, and the overlap is
   one advert's flight time, while conntrackd keeps both tables in step;
3. once backup (or when the peer never took over: the deadline) the rule goes
   and the priority comes back; with ``nopreempt`` this router stays backup.

Used by ``vragent switchover`` (POST /v1/switchover) and by the resident
agent when supervisord shuts down (container stop, system halt).
"""

from __future__ import annotations

import selectors
import threading
import time
from typing import Any

from ..errors import ApplyError, VragentError
from ..settings import Settings
from ..store.store import private_dir
from ..system import nft
from ..system.supervisor import Supervisor
from .log import log
from .pair import Pair
from .watchdog import write_if_changed

# Beyond the peer's master-down interval: its reaction, under load.
MARGIN = 2.0


def deadline(advert_int: float, peer_priority: int = 1) -> float:
    """Seconds to wait for the peer: its master-down interval, worst case, plus a margin."""
    skew = (256 - peer_priority) * advert_int / 256
    return 3 * advert_int + skew + MARGIN


def begin(settings: Settings, ifname: str) -> None:
    nft.block_vrrp_out(settings.switchover_table, ifname)
    set_yield(settings, True)


def end(settings: Settings) -> None:
    # Priority back first: adverts sent once the rule goes carry the real one.
    set_yield(settings, False)
    nft.unblock_vrrp_out(settings.switchover_table)


def set_yield(settings: Settings, on: bool) -> None:
    private_dir(settings.run_dir)
    write_if_changed(settings.vrrp_yield_file, "1\n" if on else "0\n")


def set_boost(settings: Settings, on: bool) -> None:
    """The fast takeover's raised priority (fast.py)."""
    private_dir(settings.run_dir)
    write_if_changed(settings.vrrp_boost_file, "1\n" if on else "0\n")


def clear_yield(settings: Settings) -> None:
    """At the agent's start: a switchover or takeover cut short by a crash is over."""
    set_yield(settings, False)
    set_boost(settings, False)
    try:
        nft.unblock_vrrp_out(settings.switchover_table)
    except ApplyError:
        pass  # nft missing or refusing: there is no rule to remove either


# The longest a shutdown waits for the peer to take over: supervisord gives
# the agent 10 s (stopwaitsecs) before it kills it.
SHUTDOWN_HANDOVER = 8.0


class Switchover:
    """``vragent switchover`` and the handover at shutdown, for the resident agent."""

    def __init__(self, settings: Settings, pair: Pair, supervisor: Supervisor) -> None:
        self.settings = settings
        self.pair = pair
        self.supervisor = supervisor
        self.switching = threading.Lock()  # one switchover at a time

    def run(self, timeout: float | None = None) -> dict[str, Any]:
        """Hand mastership to the peer; what happened."""
        if not self.switching.acquire(blocking=False):
            return {"outcome": "busy", "message": "a switchover is already under way"}
        try:
            return self._switchover(timeout)
        finally:
            self.switching.release()

    def _switchover(self, timeout: float | None) -> dict[str, Any]:
        pair = self.pair
        if pair.ha is None or pair.election is None:
            return {"outcome": "not-redundant",
                    "message": "this router is not one of a running redundant pair"}
        status = pair.state.status
        if status != "PRIMARY":
            return {"outcome": "not-master", "state": status,
                    "message": f"this router is {status}: it has no mastership to hand over"}
        wait = timeout if timeout is not None else deadline(pair.ha.advert_int)
        started = time.monotonic()
        log(f"switchover: handing mastership to the peer (waiting up to {wait:.1f} s)")
        try:
            begin(self.settings, pair.election.interface)
            with pair.changed:
                pair.changed.wait_for(lambda: pair.state.status != "PRIMARY", wait)
        finally:
            try:
                end(self.settings)
            except (VragentError, OSError) as exc:
                log(f"switchover: restoring adverts: {exc}")
        seconds = round(time.monotonic() - started, 3)
        status = pair.state.status
        if status == "PRIMARY":
            log(f"switchover: the peer did not take over in {seconds} s; still master")
            return {"outcome": "peer-did-not-take-over", "state": status, "seconds": seconds,
                    "message": f"the peer did not take over within {wait:.1f} s (is it "
                               f"running and healthy?): this router is still master"}
        log(f"switchover: {status} after {seconds} s")
        return {"outcome": "switched", "state": status, "seconds": seconds,
                "message": f"mastership handed to the peer in {seconds} s; this router is "
                           f"{status}"}

    def at_shutdown(self, fifo_fd: int) -> None:
        """supervisord stops everything (container stop, system halt): hand
        over as a planned switchover does, before the elector is stopped, within
        what supervisord waits for the agent (see services/supervisord.conf)."""
        if self.pair.state.status != "PRIMARY" or self.pair.ha is None:
            return
        try:
            if not self.supervisor.shutting_down():
                return  # the agent alone restarts: mastership stays
        except (OSError, ConnectionError) as exc:
            log(f"shutdown: cannot ask supervisord ({exc}); not handing over")
            return
        except Exception as exc:  # noqa: BLE001 - an XML-RPC fault
            log(f"shutdown: cannot ask supervisord ({exc!r}); not handing over")
            return
        try:
            result = self._unattended(fifo_fd)
        except (VragentError, OSError) as exc:
            result = f"handing over failed: {exc}"
        log(f"shutdown: {result}")

    def _unattended(self, fifo_fd: int) -> str:
        """The switchover with this thread reading the elector's FIFO itself:
        the loop that reads it has ended."""
        pair = self.pair
        assert pair.ha is not None and pair.election is not None
        wait = min(deadline(pair.ha.advert_int), SHUTDOWN_HANDOVER)
        begin(self.settings, pair.election.interface)
        limit = time.monotonic() + wait
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(fifo_fd, selectors.EVENT_READ)
                while pair.state.status == "PRIMARY":
                    left = limit - time.monotonic()
                    if left <= 0:
                        return f"the peer did not take over within {wait:.1f} s"
                    if sel.select(left):
                        pair.read_fifo(fifo_fd)
            return f"mastership handed to the peer; this router is {pair.state.status}"
        finally:
            end(self.settings)
