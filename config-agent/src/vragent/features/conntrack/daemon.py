"""conntrackd as a supervised daemon: its files, its pair steps, its fitness.

The steps follow conntrack-tools' primary-backup sequence (the
primary-backup.sh that ships with it). On becoming master: commit the
peer's connections from the external cache into the kernel (before the new
state is announced: without it, the connections the peer carried find no
entry here), flush both caches, resync the internal cache from the kernel and
send it all to the peer. On backup: shorten the timers of entries this router
may hold from its time as master, and ask the peer for a full resync; on
fault, only the former.

Light on purpose: supervisord's watchdog imports it.
"""

from __future__ import annotations

from ...feature import ConfigFile, Daemon, Fitness, PairStep, Place, Shown
from ...settings import Settings
from ...system import conntrackd

NAME = "conntrackd"
CONF = Place("conf", "conntrackd.conf")
SOCKET = Place("run", "conntrackd.sock")
LOCK = Place("run", "conntrackd.lock")
# How long conntrackd may take to answer after the agent started it: a tier
# that brings its first configuration (and with it dnsmasq and the metadata
# service, all starting at once on a busy host) must not take the master down
# before conntrackd runs.
STARTUP_GRACE = 5.0
# Consecutive failing ticks before it counts as down: its own restart by
# supervisord takes a moment, and must not move mastership.
FALL = 2


def probe(s: Settings) -> str:
    why = conntrackd.answers(SOCKET.of(s))
    return f"{NAME} does not answer ({why})" if why else ""


def daemons(s: Settings) -> tuple[Daemon, ...]:
    conf = str(CONF.of(s))

    def ctl(*args: str, critical: bool = False) -> PairStep:
        return PairStep((NAME, "-C", conf, *args), critical, label=" ".join((NAME, *args)))

    return (Daemon(
        name=NAME,
        subsystem="conntrack",
        argv=(NAME, "-C", conf),
        files=(ConfigFile(CONF.of(s), "restart"),),
        start_order=20,
        ready_socket=SOCKET.of(s),
        stale=(LOCK.of(s), SOCKET.of(s)),
        # Its cache starts empty: have the master send everything again.
        resync_on_backup=(NAME, "-C", conf, "-n"),
        on_primary=(
            ctl("-c", critical=True),  # commit the external cache
            ctl("-f"),  # flush internal and external caches
            ctl("-R"),  # resync the internal cache with the kernel
            ctl("-B"),  # bulk-send it to the peer
        ),
        on_backup=(
            ctl("-t"),  # shorten kernel timers: entries age out
            ctl("-n"),  # request a resync from the master
        ),
        on_fault=(ctl("-t"),),
        fitness=Fitness(probe, fall=FALL, grace=STARTUP_GRACE),
        shown=(Shown(CONF.of(s), upstream=("/etc/conntrackd/conntrackd.conf",)),),
    ),)
