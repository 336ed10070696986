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

from ..errors import ApplyError
from ..settings import Settings
from ..store.store import private_dir
from ..system import nft
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
    """The fast takeover's raised priority (ha/fast.py)."""
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
