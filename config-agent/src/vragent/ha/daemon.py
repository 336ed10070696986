"""The resident agent: one long-lived process per router, run by supervisord.

This module is its process loop; each concern it runs has a module of its own:
- ``lifecycle``: every supervised daemon, as its feature declares it;
- ``pair``: the pair's state and the elector's transitions, read in order
  from its notify FIFO by this one reader, with their reports, and the
  dual-master probe;
- ``switchover``: the planned switchover and the handover at shutdown;
- ``fast``: fast takeover when a session finds the master dead;
- ``schedule``: CloudStack's health checks at their intervals.

It also takes every command: the API (``api/``) listens on a unix socket
(the CLI's way in) and, with an ``api_token``, on the control address; one
queue applies commands in order with the configuration kept in memory. A
command that changed a daemon's files wakes the loop through the datagram
socket, as a command run in another process (no agent yet) does. After each
command it re-reads what the pair needs (the box's part of the
configuration and the elector's ``Election``), and it gives back their names
to NICs the boot parameters name that came back under another.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import threading
import time
from concurrent.futures import Future
from dataclasses import replace
from types import FrameType

from .. import box
from ..api.app import create_app
from ..api.metrics import Metrics
from ..api.server import ApiServer
from ..api.service import CommandService, Result
from ..cloudstack import boot_up_done
from ..config import RouterConfig
from ..errors import VragentError
from ..feature import Election, Metric
from ..features import features
from ..log import setup as setup_log
from ..settings import Settings
from ..store import Store
from ..store.store import private_dir
from ..system import ipc, iproute, proc
from ..system.supervisor import Supervisor
from ..topology import Topology, resolve
from . import schedule, switchover
from .fast import FastTakeover
from .lifecycle import Lifecycle
from .log import log
from .pair import Pair
from .report import Pusher

TICK = 1.0
# An idle router settles: the daemons are looked at after every command and
# transition, each second while one is starting, and otherwise this often
# (supervisord restarts a dead one by itself).
ENSURE_PERIOD = 10.0
# What the pair needs from the configuration (see _load_config): the box's part.
PAIR_TYPES = tuple(bt.store_key for bt in box.BAGS)

__all__ = ["Daemon", "log", "main"]


def election(cfg: RouterConfig, topo: Topology, settings: Settings) -> Election | None:
    """What the feature that elects the master says the pair needs."""
    for f in features():
        if f.election is not None:
            return f.election(cfg, topo, settings)
    return None


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.supervisor = Supervisor(settings.supervisor_socket)
        self.stopping = threading.Event()
        self.metrics = Metrics()
        self.metrics.watch(settings.ha_state, proc.conntrack_count, self._feature_metrics)
        self.commands = CommandService(settings, self.metrics)
        self.lifecycle = Lifecycle(settings, self.supervisor, self._pair_status,
                                   self._reconcile_later, self.metrics.daemon)
        self.pair = Pair(settings, self.lifecycle)
        self.switchover = switchover.Switchover(settings, self.pair, self.supervisor)
        self.fast = FastTakeover(settings, self.pair, self.switchover.switching)
        self.boot_nics: list[str] = []  # NICs the boot parameters name (control, sync link)
        self.boot_macs: dict[str, str] = {}  # their MACs, as last seen
        self.ensure_due = 0.0  # monotonic time of the next look at the daemons
        self.pair_docs: dict[str, str] | None = None  # digests _load_config last read
        self.fifo_fd: int | None = None
        self.api_token: str | None = None
        self.api: ApiServer | None = None

    def _feature_metrics(self) -> list[Metric]:
        """What each feature reads for the metrics endpoint."""
        found: list[Metric] = []
        for f in features():
            if f.metrics is not None:
                found += f.metrics(self.settings)
        return found

    def _pair_status(self) -> tuple[float | None, str]:
        ha = self.pair.ha
        return (ha.advert_int if ha is not None else None), self.pair.state.status

    # -- start and the loop --------------------------------------------------
    def run(self) -> int:
        s = self.settings
        private_dir(s.run_dir)
        s.agent_pid.write_text(f"{os.getpid()}\n")
        self._heartbeat()
        # A switchover cut short by a crash must not leave the priority lowered.
        switchover.clear_yield(s)
        fifo_fd = self.fifo_fd = self._open_fifo()
        sock = self._bind()
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        self.commands.start()
        self.api = ApiServer(
            s, create_app(s, self.commands, self.metrics, token=None,
                          switchover=self.switchover.run),
            create_app(s, self.commands, self.metrics, token=lambda: self.api_token,
                       switchover=self.switchover.run), log)
        # Listening before the boot: a command sent meanwhile queues behind it.
        self.api.start()
        self._boot()
        self.pair.pusher = Pusher(self.pair.spool,
                                  self.pair.ha.report_url if self.pair.ha else None)
        self.pair.pusher.start()
        # Events the elector queued while no agent read them come first, in order;
        # only without any does the kernel tell where it stands.
        if not self.pair.read_fifo(fifo_fd):
            self.pair.observe_at_start()
        threading.Thread(target=self.pair.dual_master_loop, args=(self.stopping,),
                         name="vragent-dual-master", daemon=True).start()
        threading.Thread(target=schedule.health_loop, args=(s, self.metrics, self.stopping),
                         name="vragent-health-checks", daemon=True).start()
        sel = selectors.DefaultSelector()
        sel.register(fifo_fd, selectors.EVENT_READ, "fifo")
        sel.register(sock, selectors.EVENT_READ, "wake")
        log(f"running (state {self.pair.state.status})")
        while not self.stopping.is_set():
            timeout = TICK
            due = self.lifecycle.next_due()
            if due is not None:
                timeout = max(0.0, min(timeout, due - time.monotonic()))
            woken = False
            try:
                ready = sel.select(timeout)
            except InterruptedError:
                ready = []
            for key, _ in ready:
                if key.data == "fifo":
                    self.pair.read_fifo(fifo_fd)
                    self.ensure_due = 0.0
                else:
                    woken = True
                    with contextlib.suppress(BlockingIOError):
                        while sock.recv(64):
                            pass
            if woken:
                self._load_config()
            self.fast.expire()
            self._readopt_boot_nics()
            self._heartbeat()
            self.lifecycle.prune_now()
            now = time.monotonic()
            if not (woken or self.lifecycle.reload_due or now >= self.ensure_due):
                continue
            unsettled = False
            try:
                self.lifecycle.ensure_all()
                unsettled = self.lifecycle.unsettled
            except (OSError, VragentError, ConnectionError) as exc:
                unsettled = True
                log(f"managing daemons: {exc}")
            except Exception as exc:  # noqa: BLE001 - XML-RPC faults; keep reading the FIFO
                unsettled = True
                log(f"managing daemons: {exc!r}")
            self.ensure_due = now + (TICK if unsettled else ENSURE_PERIOD)
        self.switchover.at_shutdown(fifo_fd)
        self.pair.pusher.stop()
        self.api.stop()
        self.commands.stop()
        with contextlib.suppress(OSError):
            s.agent_pid.unlink()
        return 0

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()

    def _heartbeat(self) -> None:
        self.settings.agent_heartbeat.touch()

    def _open_fifo(self) -> int:
        return ipc.own_fifo(self.settings.notify_fifo, log)

    def _bind(self) -> socket.socket:
        return ipc.wake_socket(self.settings.agent_socket)

    def _boot(self) -> None:
        """Rebuild the box once per boot (the run dir is empty after a reboot)."""
        marker = self.settings.run_dir / "booted"
        booted = marker.exists()
        pair = self.pair
        if not booted:
            # What this router was before the reboot is not what it is now:
            # until the elector says otherwise, CloudStack's poll must not read
            # the PRIMARY persisted from its previous life (the transition
            # below reports the change once the box is rebuilt).
            with pair.lock:
                replace(pair.state, status="UNKNOWN", reason="booting").save(
                    self.settings.ha_state)
        result = self.commands.run(self.commands.reconcile() if booted else self.commands.boot())
        if result.error is not None:
            log(f"boot: {result.error}")
        elif not booted:
            marker.touch()
        if not booted:
            # The boot is over, as upstream's postinit.sh says with boot_up_done
            # whatever update_config.py answered (a failed boot is reported
            # above and by the health checks, not by a silent wait). In a
            # container nothing else would say it; in a system VM, postinit
            # (vragent-systemvm) says it again after the host's parameters.
            boot_up_done(self.settings)
        for change in result.changes:
            log(change)
        for warning in result.warnings:
            log(f"warning: {warning}")
        self._load_config()
        if not booted:
            # Whatever this router was before the reboot, it is nothing yet:
            # the elector's first report must run its full sequence.
            pair.transition("UNKNOWN", "router booted")

    def _load_config(self) -> None:
        # Only what the pair needs: woken by every command, this must stay cheap
        # however many rules the configuration holds.
        store = Store(self.settings)
        try:
            rev = store.current_rev()
            docs = {t: d for t, d in store.revision(rev).docs.items() if t in PAIR_TYPES} \
                if rev else {}
            # The links count too: a tier's NIC plugged after its bag changes the pair.
            docs["links"] = ",".join(iproute.names())
            if docs == self.pair_docs:
                return  # a command that changed no boot parameter, address, tier or NIC
            cfg = RouterConfig.from_docs(store.load(rev, types=PAIR_TYPES))
            topo = resolve(cfg, iproute.links())
            elected = election(cfg, topo, self.settings)
        except (VragentError, OSError) as exc:
            log(f"reading the configuration: {exc}")
            return
        self.api_token = cfg.cmdline.get("api_token") or None
        port = cfg.api_port(self.settings.api_port)
        if self.api is not None:
            self.api.listen_tcp((topo.control_ip, port)
                                if port is not None and topo.control_ip else None)
        self.pair_docs = docs
        self.pair.ha = cfg.ha
        self.boot_nics = sorted(cfg.cmdline.interfaces())
        self.pair.router = cfg.cmdline.get("name", "router")
        self.fast.set(elected.takeover if elected is not None and cfg.ha is not None
                      else None)
        self.pair.election = elected

    def _reconcile_later(self, why: str) -> None:
        """Queue a reconcile behind the commands already waiting, without
        waiting for it: this loop keeps the heartbeat the watchdog checks, and
        reads the transitions, whatever the queue holds."""
        def done(future: Future[Result]) -> None:
            error = future.result().error
            if error is not None:
                log(f"{why}: {error}")

        self.commands.submit(self.commands.reconcile()).add_done_callback(done)

    def _readopt_boot_nics(self) -> None:
        """A NIC the boot parameters name by name, unplugged and plugged back,
        returns under a new name (the kernel's next free one): the daemons on
        it would wait on the old name for ever. Found by its MAC, it gets its
        name back and the box is reconciled onto it."""
        missing = []
        for name in self.boot_nics:
            mac = iproute.mac_of(name)
            if mac:
                self.boot_macs[name] = mac
            elif name in self.boot_macs:
                missing.append(name)
        if not missing:
            return
        try:
            links = iproute.links()
        except VragentError as exc:
            log(f"reading links: {exc}")
            return
        by_mac = {link.mac: name for name, link in links.items() if link.mac}
        renamed = False
        for name in missing:
            current = by_mac.get(self.boot_macs[name])
            if current and current not in self.boot_nics:
                log(f"{name} came back as {current} (MAC {self.boot_macs[name]}): renaming it")
                try:
                    iproute.rename(current, name)
                    renamed = True
                except VragentError as exc:
                    log(f"renaming {current} to {name}: {exc}")
        if renamed:
            self._reconcile_later("reconcile after renaming")


def main(settings: Settings) -> int:
    # Every record of this process, whichever thread or library writes it,
    # one JSON line on stderr (supervisord's agent.log): see vragent/log.py.
    setup_log()
    return Daemon(settings).run()
