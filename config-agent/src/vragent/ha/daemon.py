"""The resident agent: one long-lived process per router, run by supervisord.

It owns what must outlive a single command:
- every supervised daemon's lifecycle, as ``supervised`` describes it:
  started in order once its configuration exists (keepalived after
  conntrackd answers), reloaded or restarted as the changed file asks
  (keepalived's reloads coalesced to one per 1.5 x advert_int), and the
  master-only ones (dnsmasq, metadata) run by the master alone;
- keepalived's transitions, read in order from its notify FIFO by this one
  reader, each running its conntrackd sequence (see ``transitions``);
- the persisted pair state, and a report of every transition pushed to the
  management server without ever holding the transition up;
- while master, a probe for the peer holding the same addresses (dual master).

It also takes every command: the API (``api/``) listens on a unix socket
(the CLI's way in) and, with an ``api_token``, on the control address; one
queue applies commands in order with the configuration kept in memory. A
command that changed a daemon's files wakes the loop through the datagram
socket, as a command run in another process (no agent yet) does.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import socket
import stat
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from .. import supervised
from ..api.app import create_app
from ..api.metrics import Metrics
from ..api.server import ApiServer
from ..api.service import CommandService, Result
from ..config import HaParams, RouterConfig
from ..daemon_state import digests, read_loaded, wanted, write_loaded
from ..errors import VragentError
from ..features.monitor import runner
from ..features.vrrp import subsystem as vrrp
from ..pairstate import HaState
from ..settings import Settings
from ..store import Store
from ..store.store import private_dir
from ..supervised import registry
from ..system import arp, inject, iproute, proc
from ..system.cmd import spawn
from ..system.supervisor import RUNNING_STATES, Supervisor
from ..topology import resolve
from . import fast, fifo, switchover, transitions
from .report import Pusher, Report, Spool

TICK = 1.0
# An idle router settles: the daemons are looked at after every command and
# transition, each second while one is starting, and otherwise this often
# (supervisord restarts a dead one by itself).
ENSURE_PERIOD = 10.0
# What the pair needs from the configuration (see _load_config).
PAIR_TYPES = ("cmdline", "ips", "guestnetwork")
# How often the health-check scheduler looks at its intervals (seconds).
HEALTH_POLL = 10.0
# After a reload signal, before a daemon's stale state is dropped (Daemon.prune).
PRUNE_DELAY = 0.3
# The longest a shutdown waits for the peer to take over: supervisord gives
# the agent 10 s (stopwaitsecs) before it kills it.
SHUTDOWN_HANDOVER = 8.0


def log(message: str) -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    print(f"{stamp} vragent-daemon: {message}", file=sys.stderr, flush=True)


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.supervisor = Supervisor(settings.supervisor_socket)
        self.spool = Spool(settings.report_spool)
        self.state = HaState.load(settings.ha_state)
        self.lock = threading.RLock()  # state, its file and its reports
        self.changed = threading.Condition(self.lock)  # notified on every transition
        self.switching = threading.Lock()  # one switchover at a time
        self.ha: HaParams | None = None
        self.router = "router"
        self.excluded: list[tuple[str, str]] = []  # (ip, ifname) the master announces
        self.advert: tuple[str, str] | None = None  # (ifname, ip) of the advert address
        self.boot_nics: list[str] = []  # NICs the boot parameters name (control, sync link)
        self.boot_macs: dict[str, str] = {}  # their MACs, as last seen
        self.pusher: Pusher | None = None
        self.last_reload: dict[str, float] = {}  # by daemon
        self.reload_due: dict[str, float] = {}  # coalesced reloads waiting, by daemon
        self.prune_due: dict[str, float] = {}  # stale state to drop after a reload
        self.stopping = threading.Event()
        self.buffer = fifo.LineBuffer()
        self.states: dict[str, str] | None = None  # supervisord's, during one pass
        self.pids: dict[str, int] = {}  # each daemon's pid at the last pass
        self.replaced_pids: set[int] = set()  # pids the agent itself replaced since then
        self.realtime_done: dict[Path, int] = {}  # pid file -> the pid made real-time
        self.realtime_refused = False  # no CAP_SYS_NICE: said once
        self.ensure_due = 0.0  # monotonic time of the next look at the daemons
        self.unsettled = False  # a daemon started, restarted or waits: look again soon
        self.pair_docs: dict[str, str] | None = None  # digests _load_config last read
        self.fifo_fd: int | None = None
        self.fast: fast.Peer | None = None  # fast takeover (sync_bfd=1), see ha/fast.py
        self.boosted = 0.0  # monotonic time the priority was raised for a takeover (0: not)
        self.resigned = False  # the resignation went out for the current boost
        self.api_token: str | None = None
        self.api_address: tuple[str, int] | None = None
        self.metrics = Metrics()
        self.metrics.watch(settings.ha_state, proc.conntrack_count)
        self.commands = CommandService(settings, self.metrics)
        self.api: ApiServer | None = None

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
                          switchover=self.switchover),
            create_app(s, self.commands, self.metrics, token=lambda: self.api_token,
                       switchover=self.switchover), log)
        # Listening before the boot: a command sent meanwhile queues behind it.
        self.api.start()
        self._boot()
        self.pusher = Pusher(self.spool, self.ha.report_url if self.ha else None)
        self.pusher.start()
        # Events keepalived queued while no agent read them come first, in order;
        # only without any does the kernel tell where keepalived stands.
        if not self._read_fifo(fifo_fd):
            self._observe_at_start()
        threading.Thread(target=self._dual_master_loop, name="vragent-dual-master",
                         daemon=True).start()
        threading.Thread(target=self._health_loop, name="vragent-health-checks",
                         daemon=True).start()
        sel = selectors.DefaultSelector()
        sel.register(fifo_fd, selectors.EVENT_READ, "fifo")
        sel.register(sock, selectors.EVENT_READ, "wake")
        log(f"running (state {self.state.status})")
        while not self.stopping.is_set():
            timeout = TICK
            if self.reload_due or self.prune_due:
                due = min([*self.reload_due.values(), *self.prune_due.values()])
                timeout = max(0.0, min(timeout, due - time.monotonic()))
            woken = False
            try:
                ready = sel.select(timeout)
            except InterruptedError:
                ready = []
            for key, _ in ready:
                if key.data == "fifo":
                    self._read_fifo(fifo_fd)
                    self.ensure_due = 0.0
                else:
                    woken = True
                    with contextlib.suppress(BlockingIOError):
                        while sock.recv(64):
                            pass
            if woken:
                self._load_config()
            if self.boosted and time.monotonic() - self.boosted > fast.BOOST_LIMIT:
                log("fast takeover: no transition followed; priority back")
                self._unboost()
            self._readopt_boot_nics()
            self._heartbeat()
            self._prune_due()
            now = time.monotonic()
            if not (woken or self.reload_due or now >= self.ensure_due):
                continue
            self.unsettled = False
            try:
                self._ensure_daemons()
            except (OSError, VragentError, ConnectionError) as exc:
                self.unsettled = True
                log(f"managing daemons: {exc}")
            except Exception as exc:  # noqa: BLE001 - XML-RPC faults; keep reading the FIFO
                self.unsettled = True
                log(f"managing daemons: {exc!r}")
            self.ensure_due = now + (TICK if self.unsettled else ENSURE_PERIOD)
        self._hand_over_at_shutdown()
        self.pusher.stop()
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
        """The notify FIFO, only if it is ours: a FIFO, owned by us, mode 0600.

        Anything else at that path (a file, a symlink, someone else's FIFO)
        is replaced: transitions must come from keepalived alone.
        """
        path = self.settings.notify_fifo
        try:
            st = os.lstat(path)
            if not (stat.S_ISFIFO(st.st_mode) and st.st_uid == os.geteuid()
                    and stat.S_IMODE(st.st_mode) & 0o077 == 0):
                log(f"{path}: not our FIFO (mode {stat.filemode(st.st_mode)}, uid "
                    f"{st.st_uid}): replacing it")
                path.unlink()
                os.mkfifo(path, 0o600)
        except FileNotFoundError:
            os.mkfifo(path, 0o600)
        # Read-write: keepalived's exit or restart never gives us EOF, and the
        # events it wrote while we were down are still there, in order.
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW)
        st = os.fstat(fd)
        if not stat.S_ISFIFO(st.st_mode) or st.st_uid != os.geteuid():
            os.close(fd)
            raise VragentError(f"{path}: replaced while being opened")
        return fd

    def _bind(self) -> socket.socket:
        path = self.settings.agent_socket
        path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        sock.setblocking(False)
        return sock

    def _boot(self) -> None:
        """Rebuild the box once per boot (the run dir is empty after a reboot)."""
        marker = self.settings.run_dir / "booted"
        booted = marker.exists()
        if not booted:
            # What this router was before the reboot is not what it is now:
            # until keepalived says otherwise, CloudStack's poll must not read
            # the PRIMARY persisted from its previous life (the transition
            # below reports the change once the box is rebuilt).
            with self.lock:
                replace(self.state, status="UNKNOWN", reason="booting").save(
                    self.settings.ha_state)
        result = self.commands.run(self.commands.reconcile() if booted else self.commands.boot())
        if result.error is not None:
            log(f"boot: {result.error}")
        elif not booted:
            marker.touch()
        for change in result.changes:
            log(change)
        for warning in result.warnings:
            log(f"warning: {warning}")
        self._load_config()
        if not booted:
            # Whatever this router was before the reboot, it is nothing yet:
            # keepalived's first report must run its full sequence.
            self.transition("UNKNOWN", "router booted")

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
            d = vrrp.desired(cfg, topo, self.settings)
        except (VragentError, OSError) as exc:
            log(f"reading the configuration: {exc}")
            return
        self.api_token = cfg.cmdline.get("api_token") or None
        port = cfg.api_port(self.settings.api_port)
        if self.api is not None:
            self.api.listen_tcp((topo.control_ip, port)
                                if port is not None and topo.control_ip else None)
        self.pair_docs = docs
        self.ha = cfg.ha
        self.boot_nics = sorted(cfg.cmdline.interfaces())
        self.router = cfg.cmdline.get("name", "router")
        self._set_fast(d)
        self.excluded = [(addr.split("/")[0], dev) for addr, dev in d.excluded]
        self.advert = (d.interface, d.vip.split("/")[0]) if d.enabled else None
        if d.enabled and d.mcast_src_ip:
            # The advert address is a shared one too (CloudStack mode: the source-NAT IP).
            self.excluded.append((d.vip.split("/")[0], d.interface))

    def _set_fast(self, d: vrrp.Desired) -> None:
        want = None
        if d.enabled and d.bfd is not None and self.ha is not None and d.src_ip:
            want = fast.Peer(dev=d.interface, peer=d.bfd.peer, local=d.src_ip, vrid=d.vrid,
                             vip=d.vip.split("/")[0],
                             advert_cs=round(self.ha.advert_int * 100))
        if want == self.fast:
            return
        self._save_bfd("")  # a new session, or none: unknown until keepalived says
        try:
            if want is not None:
                inject.ensure(want.dev)
            elif self.fast is not None:
                inject.remove()
        except (VragentError, OSError) as exc:
            log(f"fast takeover: {exc}")
            return
        self.fast = want

    def _reconcile_later(self, why: str) -> None:
        """Queue a reconcile behind the commands already waiting, without
        waiting for it: this loop keeps the heartbeat keepalived checks, and
        reads its transitions, whatever the queue holds."""
        def done(future: Future[Result]) -> None:
            error = future.result().error
            if error is not None:
                log(f"{why}: {error}")

        self.commands.submit(self.commands.reconcile()).add_done_callback(done)

    def _readopt_boot_nics(self) -> None:
        """A NIC the boot parameters name by name, unplugged and plugged back,
        returns under a new name (the kernel's next free one): keepalived and
        conntrackd would wait on the old name for ever. Found by its MAC, it
        gets its name back and the box is reconciled onto it."""
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

    # -- transitions -----------------------------------------------------------
    def _read_fifo(self, fd: int) -> int:
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
                    self._priority(event.priority)
                elif event.status is None:
                    log(f"fifo: {line}")
                else:
                    self.transition(event.status, f"keepalived: {event.state}")
                    count += 1

    def _priority(self, priority: int) -> None:
        """keepalived's priority changed: the peer's BFD session may be down."""
        if self.fast is None or self.ha is None or self.switching.locked():
            return
        if self.boosted:
            if priority >= fast.BOOSTED and not self.resigned:
                self._resign_for_peer()
            return
        down = fast.bfd_down(priority, self.ha.priority)
        # Only a session seen up going down means a dead master: at start it
        # is down until both routers run.
        was_up = self.state.bfd == "up"
        self._save_bfd("down" if down else "up")
        if not down or not was_up or self.state.status != "BACKUP":
            return
        log(f"BFD: the master on {self.fast.peer} is down: taking over")
        self.boosted = time.monotonic()
        self.resigned = False
        try:
            switchover.set_boost(self.settings, True)
        except OSError as exc:
            log(f"fast takeover: {exc}")
            self._unboost()

    def _resign_for_peer(self) -> None:
        """The raised priority applies: the dead master's resignation, now."""
        assert self.fast is not None
        self.resigned = True
        try:
            inject.send(fast.resignation(self.fast))
        except (VragentError, OSError) as exc:
            log(f"fast takeover: {exc}")
            self._unboost()
            return
        log(f"fast takeover: resignation handed to keepalived "
            f"{1000 * (time.monotonic() - self.boosted):.1f} ms after BFD")

    def _save_bfd(self, value: str) -> None:
        with self.lock:
            if self.state.bfd != value:
                self.state.bfd = value
                self.state.save(self.settings.ha_state)

    def _unboost(self) -> None:
        if self.boosted:
            self.boosted = 0.0
            try:
                switchover.set_boost(self.settings, False)
            except OSError as exc:
                log(f"fast takeover: lowering the priority back: {exc}")

    def transition(self, status: str, reason: str) -> None:
        if status != "BACKUP":
            self._unboost()
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
            self._report(status, previous, reason)
            self.changed.notify_all()
        timings.append("announced")
        timings += [self._timed_step(step) for step in todo if not step.critical]
        log(f"{previous} -> {status} ({reason}): announced in "
            f"{1000 * (announced - started):.0f} ms, done in "
            f"{1000 * (time.monotonic() - started):.0f} ms ({', '.join(timings)})")

    def _timed_step(self, step: transitions.Step) -> str:
        """Run one step of a transition; what it was and how long it took."""
        t0 = time.monotonic()
        try:
            self._run_step(step)
        except Exception as exc:  # noqa: BLE001 - a failed step must not stop the rest
            log(f"{step.describe()} failed: {exc!r}")
        return f"{step.describe()} {1000 * (time.monotonic() - t0):.0f} ms"

    def _report(self, status: str, previous: str, reason: str, **detail: str) -> None:
        try:
            self.spool.put(Report(self.router, status, previous, time.time(), reason,
                                  detail=detail))
        except OSError as exc:
            log(f"could not spool the report: {exc}")
            return
        if self.pusher:
            self.pusher.wake()

    def _run_step(self, step: transitions.Step) -> None:
        if step.action == transitions.COMMAND:
            if registry(self.settings).get(step.daemon).conf.exists():
                proc = spawn(list(step.args))
                if proc.returncode != 0:
                    log(f"{step.describe()}: {proc.stderr.strip()}")
        elif step.action == transitions.SERVICES:
            self._master_services(step.args[0] == "start")
        elif step.action == transitions.GARP:
            for ip, dev in self.excluded:
                with contextlib.suppress(OSError, ValueError):
                    arp.gratuitous(dev, ip)

    def _observe_at_start(self) -> None:
        """After an agent restart, learn keepalived's state from the kernel.

        keepalived only reports changes; if it went on running while this
        process was away, the advert address tells whether it is master.
        """
        elector = registry(self.settings).elector
        if self.advert is None or elector is None or not self._running(elector.name):
            return
        dev, vip = self.advert
        link = iproute.links().get(dev)
        holds = link is not None and any(a.split("/")[0] == vip for a in link.ipv4)
        self.transition("PRIMARY" if holds else "BACKUP", "observed at agent start")

    # -- planned switchover ----------------------------------------------------
    def switchover(self, timeout: float | None = None) -> dict[str, Any]:
        """Hand mastership to the peer (see ``switchover``); what happened."""
        if not self.switching.acquire(blocking=False):
            return {"outcome": "busy", "message": "a switchover is already under way"}
        try:
            return self._switchover(timeout)
        finally:
            self.switching.release()

    def _switchover(self, timeout: float | None) -> dict[str, Any]:
        if self.ha is None or self.advert is None:
            return {"outcome": "not-redundant",
                    "message": "this router is not one of a running redundant pair"}
        status = self.state.status
        if status != "PRIMARY":
            return {"outcome": "not-master", "state": status,
                    "message": f"this router is {status}: it has no mastership to hand over"}
        wait = timeout if timeout is not None else switchover.deadline(self.ha.advert_int)
        started = time.monotonic()
        log(f"switchover: handing mastership to the peer (waiting up to {wait:.1f} s)")
        try:
            switchover.begin(self.settings, self.advert[0])
            with self.changed:
                self.changed.wait_for(lambda: self.state.status != "PRIMARY", wait)
        finally:
            try:
                switchover.end(self.settings)
            except (VragentError, OSError) as exc:
                log(f"switchover: restoring adverts: {exc}")
        seconds = round(time.monotonic() - started, 3)
        status = self.state.status
        if status == "PRIMARY":
            log(f"switchover: the peer did not take over in {seconds} s; still master")
            return {"outcome": "peer-did-not-take-over", "state": status, "seconds": seconds,
                    "message": f"the peer did not take over within {wait:.1f} s (is it "
                               f"running and healthy?): this router is still master"}
        log(f"switchover: {status} after {seconds} s")
        return {"outcome": "switched", "state": status, "seconds": seconds,
                "message": f"mastership handed to the peer in {seconds} s; this router is "
                           f"{status}"}

    def _hand_over_at_shutdown(self) -> None:
        """supervisord stops everything (container stop, system halt): hand
        over as a planned switchover does, before keepalived is stopped, within
        what supervisord waits for the agent (see services/supervisord.conf)."""
        if self.state.status != "PRIMARY" or self.ha is None:
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
            result = self._switchover_unattended()
        except (VragentError, OSError) as exc:
            result = f"handing over failed: {exc}"
        log(f"shutdown: {result}")

    def _switchover_unattended(self) -> str:
        """The switchover with this thread reading keepalived's FIFO itself:
        the loop that reads it has ended."""
        assert self.ha is not None and self.advert is not None and self.fifo_fd is not None
        wait = min(switchover.deadline(self.ha.advert_int), SHUTDOWN_HANDOVER)
        switchover.begin(self.settings, self.advert[0])
        deadline = time.monotonic() + wait
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(self.fifo_fd, selectors.EVENT_READ)
                while self.state.status == "PRIMARY":
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return f"the peer did not take over within {wait:.1f} s"
                    if sel.select(left):
                        self._read_fifo(self.fifo_fd)
            return f"mastership handed to the peer; this router is {self.state.status}"
        finally:
            switchover.end(self.settings)

    # -- daemons ---------------------------------------------------------------
    def _running(self, name: str) -> bool:
        if self.states is not None:
            return self.states.get(name) in RUNNING_STATES
        try:
            return self.supervisor.state(name) in RUNNING_STATES
        except (OSError, ConnectionError):
            return False

    def _ensure_daemons(self) -> None:
        """Bring every supervised daemon to what its description and files ask for."""
        # One question to supervisord per pass, not one per daemon: this runs
        # after every command. Whatever this pass starts or stops, it asks again.
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
                self.metrics.daemon(name, "died")
            self.pids[name] = pid
        self.replaced_pids.clear()
        try:
            for daemon in registry(self.settings):
                self._ensure(daemon)
        finally:
            self.states = None

    def _wanted(self, daemon: supervised.Daemon) -> bool:
        return wanted(daemon, self.ha is not None, self.state.status)

    def _ensure(self, daemon: supervised.Daemon) -> None:
        s = self.settings
        loaded_file = s.daemon_loaded(daemon.name)
        running = self._running(daemon.name)
        if not self._wanted(daemon):
            if running:
                why = "not master" if daemon.conf.exists() else "no configuration"
                log(f"stopping {daemon.name} ({why})")
                self.replaced_pids.add(self.pids.get(daemon.name, 0))
                self.supervisor.stop(daemon.name)
                if daemon.owns_addresses:
                    # Its addresses went with it; a standalone router owns them.
                    self._reconcile_later(f"reconcile after stopping {daemon.name}")
            loaded_file.unlink(missing_ok=True)
            return
        if running and daemon.realtime:
            self._realtime(daemon)
        current = digests(daemon)
        if not running:
            self.unsettled = True
            if not all(self._ready(name) for name in daemon.needs):
                return
            log(f"starting {daemon.name}")
            self._prune(daemon, running=False)
            self.replaced_pids.add(self.pids.get(daemon.name, 0))
            self.supervisor.start(daemon.name)
            self.metrics.daemon(daemon.name, "start")
            write_loaded(loaded_file, current)
            self.last_reload[daemon.name] = time.monotonic()
            return
        loaded = read_loaded(loaded_file)
        if loaded == current:
            self.reload_due.pop(daemon.name, None)
            return
        restart = [f.path.name for f in daemon.files
                   if f.on_change == "restart" and loaded.get(f.path.name) != current[f.path.name]]
        if restart:
            self.unsettled = True
            log(f"{', '.join(restart)} changed: restarting {daemon.name}")
            self.replaced_pids.add(self.pids.get(daemon.name, 0))
            self.supervisor.stop(daemon.name)
            self._prune(daemon, running=False)
            self.replaced_pids.add(self.pids.get(daemon.name, 0))
            self.supervisor.start(daemon.name)
            self.metrics.daemon(daemon.name, "restart")
            write_loaded(loaded_file, current)
            if daemon.resync_on_backup and self.state.status == "BACKUP":
                proc = spawn(list(daemon.resync_on_backup))
                if proc.returncode != 0:
                    log(f"{' '.join(daemon.resync_on_backup)}: {proc.stderr.strip()}")
            return
        spacing = daemon.reload_spacing_adverts * (self.ha.advert_int if self.ha else 1)
        now = time.monotonic()
        last = self.last_reload.get(daemon.name, 0.0)
        if now - last < spacing:
            self.reload_due[daemon.name] = last + spacing
            return
        log(f"reloading {daemon.name}")
        self.supervisor.signal(daemon.name, daemon.reload_signal)
        self.metrics.daemon(daemon.name, "reload")
        write_loaded(loaded_file, current)
        self.last_reload[daemon.name] = now
        self.reload_due.pop(daemon.name, None)
        if daemon.prune is not None:
            # The signal is handled asynchronously: give it time to re-read.
            self.prune_due[daemon.name] = now + PRUNE_DELAY

    def _realtime(self, daemon: supervised.Daemon) -> None:
        """The daemon's time-critical processes at real-time priority."""
        for path in daemon.realtime:
            pid = proc.pid_in(path)
            if pid is None or self.realtime_done.get(path) == pid:
                continue
            if proc.command_name(pid) != daemon.name:
                continue  # not written yet, or left over from an earlier run
            try:
                if proc.realtime(pid, supervised.REALTIME):
                    log(f"{daemon.name}: {path.name.removesuffix('.pid')} (pid {pid}) at "
                        f"real-time priority {supervised.REALTIME}")
            except PermissionError:
                if not self.realtime_refused:
                    log(f"{daemon.name}: real-time priority refused (CAP_SYS_NICE missing): "
                        f"it runs at normal priority, and a busy host can delay it")
                    self.realtime_refused = True
            except OSError:
                continue  # gone meanwhile: its successor is seen at the next pass
            self.realtime_done[path] = pid

    def _prune(self, daemon: supervised.Daemon, running: bool) -> bool:
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

    def _prune_due(self) -> None:
        now = time.monotonic()
        for name, due in list(self.prune_due.items()):
            if due > now:
                continue
            del self.prune_due[name]
            daemon = registry(self.settings).get(name)
            if self._running(name) and self._prune(daemon, running=True):
                self.prune_due[name] = now + 1.0  # released: see that it took

    def _ready(self, name: str) -> bool:
        """Daemon ``name`` serves (or is not configured, so nothing waits for it)."""
        daemon = registry(self.settings).get(name)
        if not daemon.conf.exists():
            return True
        if daemon.ready_socket is None:
            return self._running(name)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            try:
                sock.connect(str(daemon.ready_socket))
            except OSError:
                return False
        return True

    def _master_services(self, start: bool) -> None:
        """Start (or stop) at once what only a master runs: part of a transition."""
        for daemon in registry(self.settings):
            if not daemon.master_only or not daemon.conf.exists():
                continue
            if start:
                if not self._running(daemon.name):
                    self._prune(daemon, running=False)
                    self.replaced_pids.add(self.pids.get(daemon.name, 0))
                    self.supervisor.start(daemon.name)
                    write_loaded(self.settings.daemon_loaded(daemon.name), digests(daemon))
            else:
                self.replaced_pids.add(self.pids.get(daemon.name, 0))
                self.supervisor.stop(daemon.name, wait=False)
                self.settings.daemon_loaded(daemon.name).unlink(missing_ok=True)

    # -- health checks (monitorservice) ------------------------------------------
    def _health_loop(self) -> None:
        """CloudStack's health checks at the intervals its monitorservice bag
        sets (cs/CsMonitor.py's cron lines, in minutes; 0: never), in this
        thread: they read the router, they never queue behind commands."""
        last: dict[str, float] = {}
        while not self.stopping.wait(HEALTH_POLL):
            try:
                basic, advanced, _ = runner.intervals(self.settings)
            except (OSError, VragentError) as exc:
                log(f"health checks: {exc}")
                continue
            now = time.monotonic()
            for kind, minutes in (("basic", basic), ("advanced", advanced)):
                if minutes <= 0 or now - last.get(kind, -1e9) < minutes * 60:
                    continue
                last[kind] = now
                try:
                    outcome = runner.run(self.settings, kind)  # type: ignore[arg-type]
                except Exception as exc:  # noqa: BLE001 - the next run may do better
                    log(f"health checks ({kind}): {exc!r}")
                    continue
                failing = sorted(k for k, v in outcome.items()
                                 if isinstance(v, dict) and v.get("success") == "false")
                self.metrics.health(kind, outcome)
                if failing:
                    log(f"health checks ({kind}) failing: {', '.join(failing)}")

    # -- dual master -----------------------------------------------------------
    def _dual_master_loop(self) -> None:
        while not self.stopping.is_set():
            period = max(1.0, 2 * (self.ha.advert_int if self.ha else 1.0))
            if self.stopping.wait(period):
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
                    self._report("PRIMARY", "PRIMARY", f"dual master: {found}",
                                 dual_master="true")
                else:
                    log("dual master condition cleared")
                    self._report("PRIMARY", "PRIMARY", "dual master cleared",
                                 dual_master="false")

    def _peer_holders(self) -> str:
        """Another host answering for one of our addresses means the peer is master too."""
        probed: set[str] = set()
        for ip, dev in list(self.excluded):
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


def main(settings: Settings) -> int:
    return Daemon(settings).run()
