"""Every daemon the router supervises, described once.

A description says what the daemon reads, how its own checker is called, how
a change reaches it, whether only a pair's master runs it and when it starts.
The config sync (``system.daemons``), the launcher (``vragent-launch``) and
the resident agent (``ha.daemon``) all work from these descriptions; none of
them branches on a daemon's name. Adding a daemon means adding one entry here,
one ``[program:…]`` in ``services/supervisord.conf`` and the subsystem that
renders its files.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .settings import Settings
from .system import dnsmasq as dnsmasq_state

OnChange = Literal["reload", "restart"]


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    # "reload": the running daemon re-reads it (``Daemon.reload_signal``);
    # "restart": it only reads it at start.
    on_change: OnChange = "reload"
    # Run through the daemon's checker before it replaces the old one.
    checked: bool = False
    mode: int = 0o644  # 0o600 for files that hold a secret, from the first byte


# SCHED_RR priority of a daemon's real-time processes: above every ordinary
# process, below the kernel's interrupt threads (50).
REALTIME = 40


@dataclass(frozen=True)
class Daemon:
    name: str  # supervisord's program name
    subsystem: str  # the subsystem that renders its files
    argv: tuple[str, ...]  # what vragent-launch runs, in the foreground
    # files[0] is the main configuration: while it does not exist the daemon
    # does not run (nothing to do: not a pair, no tier yet…).
    files: tuple[ConfigFile, ...]
    start_order: int
    # The daemon's own checker: "{}" in an argument stands for the candidate
    # file's path; without one, the path is appended.
    check: tuple[str, ...] = ()
    reload_signal: str = "HUP"
    # Reloads are coalesced to at most one per this many VRRP adverts (0: at once).
    reload_spacing_adverts: float = 0.0
    # On a pair, only the master runs it: it answers on addresses the master holds.
    master_only: bool = False
    # It serves once this unix socket accepts; daemons that need it wait for that.
    ready_socket: Path | None = None
    needs: tuple[str, ...] = ()
    # Left behind by a SIGKILL, refused at the next start: removed first.
    stale: tuple[Path, ...] = ()
    # When it stops, addresses go with it: the box is reconciled afterwards.
    owns_addresses: bool = False
    # Run (the daemon's control command) after a restart while this router is backup.
    resync_on_backup: tuple[str, ...] = ()
    # Drops from the daemon's own state what its configuration no longer has
    # (dnsmasq: leases of removed entries): called with running=False before
    # it starts and running=True after each reload. Returns what it dropped.
    prune: Callable[[Settings, bool], list[str]] | None = None
    # Pid files of its processes that run at real-time priority (REALTIME):
    # a busy host must not delay them. Set by the resident agent.
    realtime: tuple[Path, ...] = ()

    def check_argv(self, candidate: Path) -> list[str]:
        if any("{}" in a for a in self.check):
            return [a.replace("{}", str(candidate)) for a in self.check]
        return [*self.check, str(candidate)]

    @property
    def conf(self) -> Path:
        return self.files[0].path

    def file(self, name: str) -> ConfigFile:
        for f in self.files:
            if f.path.name == name:
                return f
        raise KeyError(f"{self.name} has no file {name!r}")


@dataclass(frozen=True)
class Registry:
    daemons: tuple[Daemon, ...] = field(default=())

    def __iter__(self) -> Iterator[Daemon]:
        return iter(self.daemons)

    def get(self, name: str) -> Daemon:
        for d in self.daemons:
            if d.name == name:
                return d
        known = ", ".join(d.name for d in self.daemons)
        raise KeyError(f"unknown daemon {name!r} (known: {known})")

    def of_subsystem(self, subsystem: str) -> Daemon:
        for d in self.daemons:
            if d.subsystem == subsystem:
                return d
        raise KeyError(f"no daemon is rendered by subsystem {subsystem!r}")


@functools.lru_cache(maxsize=16)
def registry(s: Settings) -> Registry:
    """Every described daemon, for these settings (immutable: built once per
    Settings, it is asked for several times by every command)."""
    conntrackd = Daemon(
        name="conntrackd",
        subsystem="conntrack",
        argv=("conntrackd", "-C", str(s.conntrackd_conf)),
        files=(ConfigFile(s.conntrackd_conf, "restart"),),
        start_order=20,
        ready_socket=s.conntrackd_socket,
        stale=(s.conntrackd_lock, s.conntrackd_socket),
        # Its cache starts empty: have the master send everything again.
        resync_on_backup=("conntrackd", "-C", str(s.conntrackd_conf), "-n"),
    )
    keepalived = Daemon(
        name="keepalived",
        subsystem="vrrp",
        # Line-buffered: its console log goes to supervisord through a pipe.
        argv=("stdbuf", "-oL", "-eL", "keepalived", "--dont-fork", "--log-console",
              "--log-detail", f"--use-file={s.keepalived_conf}",
              f"--pid={s.keepalived_pid}", f"--vrrp_pid={s.keepalived_vrrp_pid}",
              f"--bfd_pid={s.keepalived_bfd_pid}"),
        files=(ConfigFile(s.keepalived_conf, "reload", checked=True, mode=0o600),),
        check=("keepalived", "--config-test", "--use-file"),
        start_order=30,
        # Every reload re-sends adverts and re-runs scripts: a burst of
        # commands must not turn into a burst of reloads.
        reload_spacing_adverts=s.reload_spacing_adverts,
        # A takeover commits conntrackd's cache: keepalived waits for it.
        needs=("conntrackd",),
        stale=(s.keepalived_pid, s.keepalived_vrrp_pid, s.keepalived_bfd_pid),
        owns_addresses=True,
        # Adverts and BFD late because the host is busy are false elections.
        realtime=(s.keepalived_vrrp_pid, s.keepalived_bfd_pid),
    )
    dnsmasq = Daemon(
        name="dnsmasq",
        subsystem="dhcp",
        argv=("dnsmasq", "--keep-in-foreground", "--log-facility=-",
              f"--conf-file={s.dnsmasq_conf}", f"--pid-file={s.dnsmasq_pid}"),
        files=(
            # Interfaces, ranges and domains: dnsmasq reads them only at start.
            ConfigFile(s.dnsmasq_conf, "restart", checked=True),
            # Hosts and names: re-read on SIGHUP, so entries cost no restart.
            ConfigFile(s.dnsmasq_dhcp_hosts),
            ConfigFile(s.dnsmasq_hosts),
        ),
        # Its optional-argument options take "=value" only.
        check=("dnsmasq", "--test", "--conf-file={}"),
        start_order=40,
        master_only=True,
        stale=(s.dnsmasq_pid,),
        prune=dnsmasq_state.prune,
    )
    metadata = Daemon(
        name="metadata",
        subsystem="vmdata",
        argv=("vragent-metadata", "--root", str(s.root)),
        files=(ConfigFile(s.metadata_conf, "reload"),),
        start_order=40,
        master_only=True,
    )
    return Registry(tuple(sorted((conntrackd, keepalived, dnsmasq, metadata),
                                 key=lambda d: (d.start_order, d.name))))
