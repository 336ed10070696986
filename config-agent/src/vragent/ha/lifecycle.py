"""Every supervised daemon's lifecycle, as its feature declares it (``feature.Daemon``).

Started in order once its configuration exists (after the daemons it needs
serve), reloaded (by signal or by command) or restarted as the changed file
asks, reloads coalesced where the declaration spaces them, the master-only
ones run by the master alone, stale state pruned after a reload, real-time
priority for the processes that ask for it. Nothing here names a daemon.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ..daemon_state import digests, read_loaded, wanted, write_loaded
from ..errors import VragentError
from ..feature import REALTIME, Daemon
from ..settings import Settings
from ..supervised import registry
from ..system import proc, unixsock
from ..system.cmd import spawn
from ..system.supervisor import RUNNING_STATES, Supervisor
from .log import log

# After a reload signal, before a daemon's stale state is dropped (Daemon.prune).
PRUNE_DELAY = 0.3


class Lifecycle:
    def __init__(self, settings: Settings, supervisor: Supervisor,
                 pair: Callable[[], tuple[float | None, str]],
                 reconcile_later: Callable[[str], None],
                 count: Callable[[str, str], None]) -> None:
        """``pair()``: (advert_int of the pair, None when not one; this
        router's pair state). ``count(daemon, event)``: the metrics."""
        self.settings = settings
        self.supervisor = supervisor
        self.pair = pair
        self.reconcile_later = reconcile_later
        self.count = count
        self.last_reload: dict[str, float] = {}  # by daemon
        self.reload_due: dict[str, float] = {}  # coalesced reloads waiting, by daemon
        self.prune_due: dict[str, float] = {}  # stale state to drop after a reload
        self.states: dict[str, str] | None = None  # supervisord's, during one pass
        self.pids: dict[str, int] = {}  # each daemon's pid at the last pass
        self.replaced_pids: set[int] = set()  # pids the agent itself replaced since then
        self.realtime_done: dict[Path, int] = {}  # pid file -> the pid made real-time
        self.realtime_refused = False  # no CAP_SYS_NICE: said once
        self.unsettled = False  # a daemon started, restarted or waits: look again soon

    def next_due(self) -> float | None:
        """The monotonic time of the next coalesced reload or prune, if any."""
        due = [*self.reload_due.values(), *self.prune_due.values()]
        return min(due) if due else None

    def running(self, name: str) -> bool:
        if self.states is not None:
            return self.states.get(name) in RUNNING_STATES
        try:
            return self.supervisor.state(name) in RUNNING_STATES
        except (OSError, ConnectionError):
            return False

    def ensure_all(self) -> None:
        """Bring every supervised daemon to what its description and files ask for."""
        # One question to supervisord per pass, not one per daemon: this runs
        # after every command. Whatever this pass starts or stops, it asks again.
        self.unsettled = False
        try:
            infos = list(self.supervisor.processes().values())
        except (OSError, ConnectionError):
            infos = []
            self.states = None
        else:
            self.states = {i["name"]: str(i["statename"]) for i in infos}
        for info in infos:
            # A daemon supervisord restarted by itself (it died): counted, as the
            # agent's own starts, restarts and reloads are.
            name, pid = info["name"], int(info.get("pid") or 0)
            seen = self.pids.get(name)
            if pid and seen is not None and seen != pid and seen not in self.replaced_pids:
                self.count(name, "died")
            self.pids[name] = pid
        self.replaced_pids.clear()
        try:
            for daemon in registry(self.settings):
                self.ensure(daemon)
        finally:
            self.states = None

    def _wanted(self, daemon: Daemon) -> bool:
        advert_int, status = self.pair()
        return wanted(daemon, advert_int is not None, status)

    def _replaced(self, daemon: Daemon) -> None:
        self.replaced_pids.add(self.pids.get(daemon.name, 0))

    def ensure(self, daemon: Daemon) -> None:
        s = self.settings
        loaded_file = s.daemon_loaded(daemon.name)
        running = self.running(daemon.name)
        if not self._wanted(daemon):
            if running:
                why = "not master" if daemon.conf.exists() else "no configuration"
                log(f"stopping {daemon.name} ({why})")
                self._replaced(daemon)
                self.supervisor.stop(daemon.name)
                if daemon.owns_addresses:
                    # Its addresses went with it; a standalone router owns them.
                    self.reconcile_later(f"reconcile after stopping {daemon.name}")
            loaded_file.unlink(missing_ok=True)
            return
        if running and daemon.realtime:
            self._realtime(daemon)
        current = digests(daemon)
        if not running:
            self.unsettled = True
            if not all(self.ready(name) for name in daemon.needs):
                return
            log(f"starting {daemon.name}")
            self.prune(daemon, running=False)
            self._replaced(daemon)
            self.supervisor.start(daemon.name)
            self.count(daemon.name, "start")
            write_loaded(loaded_file, current)
            self.last_reload[daemon.name] = time.monotonic()
            return
        loaded = read_loaded(loaded_file)
        if loaded == current:
            self.reload_due.pop(daemon.name, None)
            return
        restart = [f.path.name for f in daemon.files
                   if f.on_change == "restart" and loaded.get(f.path.name) != current[f.path.name]]
        advert_int, status = self.pair()
        if restart:
            self.unsettled = True
            log(f"{', '.join(restart)} changed: restarting {daemon.name}")
            self._replaced(daemon)
            self.supervisor.stop(daemon.name)
            self.prune(daemon, running=False)
            self._replaced(daemon)
            self.supervisor.start(daemon.name)
            self.count(daemon.name, "restart")
            write_loaded(loaded_file, current)
            if daemon.resync_on_backup and status == "BACKUP":
                done = spawn(list(daemon.resync_on_backup))
                if done.returncode != 0:
                    log(f"{' '.join(daemon.resync_on_backup)}: {done.stderr.strip()}")
            return
        spacing = daemon.reload_spacing_adverts * (advert_int or 1)
        now = time.monotonic()
        last = self.last_reload.get(daemon.name, 0.0)
        if now - last < spacing:
            self.reload_due[daemon.name] = last + spacing
            return
        log(f"reloading {daemon.name}")
        self.reload(daemon)
        self.count(daemon.name, "reload")
        write_loaded(loaded_file, current)
        self.last_reload[daemon.name] = now
        self.reload_due.pop(daemon.name, None)
        if daemon.prune is not None:
            # The signal is handled asynchronously: give it time to re-read.
            self.prune_due[daemon.name] = now + PRUNE_DELAY

    def reload(self, daemon: Daemon) -> None:
        """By the daemon's own command where it declares one, else by its signal."""
        if daemon.before_reload is not None:
            for problem in daemon.before_reload(self.settings):
                log(f"{daemon.name}: before reloading: {problem}")
        if daemon.reload_command:
            done = spawn(list(daemon.reload_command))
            if done.returncode != 0:
                raise VragentError(f"{' '.join(daemon.reload_command)}: exit "
                                   f"{done.returncode}: {done.stderr.strip()}")
            return
        self.supervisor.signal(daemon.name, daemon.reload_signal)

    def _realtime(self, daemon: Daemon) -> None:
        """The daemon's time-critical processes at real-time priority."""
        for path in daemon.realtime:
            pid = proc.pid_in(path)
            if pid is None or self.realtime_done.get(path) == pid:
                continue
            if proc.command_name(pid) != daemon.name:
                continue  # not written yet, or left over from an earlier run
            try:
                if proc.realtime(pid, REALTIME):
                    log(f"{daemon.name}: {path.name.removesuffix('.pid')} (pid {pid}) at "
                        f"real-time priority {REALTIME}")
            except PermissionError:
                if not self.realtime_refused:
                    log(f"{daemon.name}: real-time priority refused (CAP_SYS_NICE missing): "
                        f"it runs at normal priority, and a busy host can delay it")
                    self.realtime_refused = True
            except OSError:
                continue  # gone meanwhile: its successor is seen at the next pass
            self.realtime_done[path] = pid

    def prune(self, daemon: Daemon, running: bool) -> bool:
        """True if something was dropped (and should be checked again)."""
        if daemon.prune is None:
            return False
        try:
            dropped = daemon.prune(self.settings, running)
        except (OSError, ValueError, VragentError) as exc:
            log(f"{daemon.name}: releasing stale state: {exc}")
            return False
        for item in dropped:
            log(f"{daemon.name}: released {item}")
        return bool(dropped)

    def prune_now(self) -> None:
        """The prunes that are due."""
        now = time.monotonic()
        for name, due in list(self.prune_due.items()):
            if due > now:
                continue
            del self.prune_due[name]
            daemon = registry(self.settings).get(name)
            if self.running(name) and self.prune(daemon, running=True):
                self.prune_due[name] = now + 1.0  # released: see that it took

    def ready(self, name: str) -> bool:
        """Daemon ``name`` serves (or is not configured, so nothing waits for it)."""
        daemon = registry(self.settings).get(name)
        if not daemon.conf.exists():
            return True
        if daemon.ready_socket is None:
            return self.running(name)
        return unixsock.accepts(daemon.ready_socket)

    def master_services(self, start: bool) -> None:
        """Start (or stop) at once what only a master runs: part of a transition."""
        for daemon in registry(self.settings):
            if not daemon.master_only or not daemon.conf.exists():
                continue
            if start:
                if not self.running(daemon.name):
                    self.prune(daemon, running=False)
                    self._replaced(daemon)
                    self.supervisor.start(daemon.name)
                    write_loaded(self.settings.daemon_loaded(daemon.name), digests(daemon))
            else:
                self._replaced(daemon)
                self.supervisor.stop(daemon.name, wait=False)
                self.settings.daemon_loaded(daemon.name).unlink(missing_ok=True)
