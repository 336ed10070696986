"""The resident agent: one long-lived process per router, run by supervisord.

It owns what must outlive a single command:
- the daemons' lifecycle: conntrackd is started before keepalived, a changed
  keepalived configuration is reloaded (SIGHUP) at most once per
  1.5 x advert_int, never restarted;
- keepalived's transitions, read in order from its notify FIFO by this one
  reader, each running its conntrackd sequence (see ``transitions``);
- the persisted pair state, and a report of every transition pushed to the
  management server without ever holding the transition up;
- while master, a probe for the peer holding the same addresses (dual master).

Commands (``vragent apply``…) stay separate processes; they write the
configuration files and wake this process through its datagram socket.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import selectors
import signal
import socket
import stat
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from ..agent import Agent
from ..config import HaParams, RouterConfig
from ..errors import VragentError
from ..settings import Settings
from ..store import Store
from ..subsystems import vrrp
from ..system import arp, iproute
from ..system.cmd import spawn
from ..system.supervisor import RUNNING_STATES, Supervisor
from ..topology import resolve
from . import fifo, transitions
from .report import Pusher, Report, Spool
from .state import HaState

PRIMARY_GROUP = "primary-only"
TICK = 1.0


def log(message: str) -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    print(f"{stamp} vragent-daemon: {message}", file=sys.stderr, flush=True)


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.supervisor = Supervisor(settings.supervisor_socket)
        self.spool = Spool(settings.report_spool)
        self.state = HaState.load(settings.ha_state)
        self.lock = threading.RLock()  # state, its file and its reports
        self.ha: HaParams | None = None
        self.router = "router"
        self.excluded: list[tuple[str, str]] = []  # (ip, ifname) the master announces
        self.advert: tuple[str, str] | None = None  # (ifname, ip) of the advert address
        self.boot_nics: list[str] = []  # NICs the boot parameters name (control, sync link)
        self.boot_macs: dict[str, str] = {}  # their MACs, as last seen
        self.pusher: Pusher | None = None
        self.last_reload = 0.0
        self.reload_due: float | None = None
        self.stopping = threading.Event()
        self.buffer = fifo.LineBuffer()

    # -- start and the loop --------------------------------------------------
    def run(self) -> int:
        s = self.settings
        s.run_dir.mkdir(parents=True, exist_ok=True)
        s.agent_pid.write_text(f"{os.getpid()}\n")
        self._heartbeat()
        fifo_fd = self._open_fifo()
        sock = self._bind()
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        self._boot()
        self.pusher = Pusher(self.spool, self.ha.report_url if self.ha else None)
        self.pusher.start()
        # Events keepalived queued while no agent read them come first, in order;
        # only without any does the kernel tell where keepalived stands.
        if not self._read_fifo(fifo_fd):
            self._observe_at_start()
        threading.Thread(target=self._dual_master_loop, name="vragent-dual-master",
                         daemon=True).start()
        sel = selectors.DefaultSelector()
        sel.register(fifo_fd, selectors.EVENT_READ, "fifo")
        sel.register(sock, selectors.EVENT_READ, "wake")
        log(f"running (state {self.state.status})")
        while not self.stopping.is_set():
            timeout = TICK
            if self.reload_due is not None:
                timeout = max(0.0, min(timeout, self.reload_due - time.monotonic()))
            woken = False
            try:
                ready = sel.select(timeout)
            except InterruptedError:
                ready = []
            for key, _ in ready:
                if key.data == "fifo":
                    self._read_fifo(fifo_fd)
                else:
                    woken = True
                    with contextlib.suppress(BlockingIOError):
                        while sock.recv(64):
                            pass
            if woken:
                self._load_config()
            self._readopt_boot_nics()
            self._heartbeat()
            try:
                self._ensure_daemons()
            except (OSError, VragentError, ConnectionError) as exc:
                log(f"managing daemons: {exc}")
            except Exception as exc:  # noqa: BLE001 - XML-RPC faults; keep reading the FIFO
                log(f"managing daemons: {exc!r}")
        self.pusher.stop()
        with contextlib.suppress(OSError):
            s.agent_pid.unlink()
        return 0

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()

    def _heartbeat(self) -> None:
        self.settings.agent_heartbeat.touch()

    def _open_fifo(self) -> int:
        path = self.settings.notify_fifo
        try:
            if not stat.S_ISFIFO(path.stat().st_mode):
                path.unlink()
                os.mkfifo(path, 0o600)
        except FileNotFoundError:
            os.mkfifo(path, 0o600)
        # Read-write: keepalived's exit or restart never gives us EOF, and the
        # events it wrote while we were down are still there, in order.
        return os.open(path, os.O_RDWR | os.O_NONBLOCK)

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
        agent = Agent(self.settings)
        try:
            if booted:
                outcome = agent.reconcile()
            else:
                outcome = agent.boot()
                marker.touch()
            for change in outcome.changes:
                log(change)
        except VragentError as exc:
            log(f"boot: {exc}")
        self._load_config()
        if not booted:
            # Whatever this router was before the reboot, it is nothing yet:
            # keepalived's first report must run its full sequence.
            self.transition("UNKNOWN", "router booted")

    def _load_config(self) -> None:
        # Only what the pair needs: woken by every command, this must stay cheap
        # however many rules the configuration holds.
        try:
            cfg = RouterConfig.from_docs(Store(self.settings).load())
            d = vrrp.desired(cfg, resolve(cfg, iproute.links()), self.settings)
        except (VragentError, OSError) as exc:
            log(f"reading the configuration: {exc}")
            return
        self.ha = cfg.ha
        self.boot_nics = sorted(cfg.cmdline.interfaces())
        self.router = cfg.cmdline.get("name", "router")
        self.excluded = [(addr.split("/")[0], dev) for addr, dev in d.excluded]
        self.advert = (d.interface, d.vip.split("/")[0]) if d.enabled else None
        if d.enabled and d.mcast_src_ip:
            # The advert address is a shared one too (CloudStack mode: the source-NAT IP).
            self.excluded.append((d.vip.split("/")[0], d.interface))

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
            try:
                for change in Agent(self.settings).reconcile().changes:
                    log(change)
            except VragentError as exc:
                log(f"reconcile after renaming: {exc}")

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
                elif event.status is None:
                    log(f"fifo: {line}")
                else:
                    self.transition(event.status, f"keepalived: {event.state}")
                    count += 1

    def transition(self, status: str, reason: str) -> None:
        if status == self.state.status:
            return
        started = time.monotonic()
        for step in transitions.steps(status):
            try:
                self._run_step(step)
            except Exception as exc:  # noqa: BLE001 - a failed step must not stop the rest
                log(f"{status}: {step.describe()} failed: {exc!r}")
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
        log(f"{previous} -> {status} ({reason}) in {1000 * (time.monotonic() - started):.0f} ms")

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
        s = self.settings
        if step.action == "conntrackd":
            if s.conntrackd_conf.exists():
                proc = spawn(["conntrackd", "-C", str(s.conntrackd_conf), *step.args])
                if proc.returncode != 0:
                    log(f"conntrackd {' '.join(step.args)}: {proc.stderr.strip()}")
        elif step.action == "primary-services":
            for name, info in self.supervisor.processes().items():
                if info["group"] != PRIMARY_GROUP:
                    continue
                if step.args[0] == "start":
                    self.supervisor.start(name)
                else:
                    self.supervisor.stop(name, wait=False)
        elif step.action == "garp":
            for ip, dev in self.excluded:
                with contextlib.suppress(OSError, ValueError):
                    arp.gratuitous(dev, ip)

    def _observe_at_start(self) -> None:
        """After an agent restart, learn keepalived's state from the kernel.

        keepalived only reports changes; if it went on running while this
        process was away, the advert address tells whether it is master.
        """
        if self.advert is None or not self._running("keepalived"):
            return
        dev, vip = self.advert
        link = iproute.links().get(dev)
        holds = link is not None and any(a.split("/")[0] == vip for a in link.ipv4)
        self.transition("PRIMARY" if holds else "BACKUP", "observed at agent start")

    # -- daemons ---------------------------------------------------------------
    def _running(self, name: str) -> bool:
        try:
            return self.supervisor.state(name) in RUNNING_STATES
        except (OSError, ConnectionError):
            return False

    def _ensure_daemons(self) -> None:
        s = self.settings
        conntrackd_conf = _digest(s.conntrackd_conf)
        keepalived_conf = _digest(s.keepalived_conf)
        loaded_file = s.run_dir / "keepalived.loaded"
        if keepalived_conf is None and self._running("keepalived"):
            log("not redundant any more: stopping keepalived")
            self.supervisor.stop("keepalived")
            loaded_file.unlink(missing_ok=True)
            # keepalived took its addresses with it; a standalone router owns them.
            Agent(s).reconcile()
        started_file = s.conntrackd_started
        if conntrackd_conf is None:
            # Not a pair, or (CloudStack mode) no tier yet to replicate state on.
            if self._running("conntrackd"):
                self.supervisor.stop("conntrackd")
            started_file.unlink(missing_ok=True)
        elif not self._running("conntrackd"):
            log("starting conntrackd")
            self.supervisor.start("conntrackd")
            started_file.write_text(conntrackd_conf)
        elif started_file.exists() and started_file.read_text() != conntrackd_conf:
            log("conntrackd configuration changed: restarting it")
            self.supervisor.stop("conntrackd")
            self.supervisor.start("conntrackd")
            started_file.write_text(conntrackd_conf)
            if self.state.status == "BACKUP":
                # Its cache started empty: have the master send everything again.
                self._run_step(transitions.Step("conntrackd", ("-n",)))
        if keepalived_conf is None:
            return
        if not self._running("keepalived"):
            # A takeover commits conntrackd's cache: keepalived waits for it.
            if conntrackd_conf is None or self._conntrackd_answers():
                log("starting keepalived")
                self.supervisor.start("keepalived")
                loaded_file.write_text(keepalived_conf)
                self.last_reload = time.monotonic()
            return
        loaded = loaded_file.read_text() if loaded_file.exists() else None
        if loaded == keepalived_conf:
            self.reload_due = None
            return
        spacing = self.settings.reload_spacing_adverts * (self.ha.advert_int if self.ha else 1)
        now = time.monotonic()
        if now - self.last_reload < spacing:
            self.reload_due = self.last_reload + spacing
            return
        log("reloading keepalived")
        self.supervisor.signal("keepalived", "HUP")
        loaded_file.write_text(keepalived_conf)
        self.last_reload = now
        self.reload_due = None

    def _conntrackd_answers(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            try:
                sock.connect(str(self.settings.conntrackd_socket))
            except OSError:
                return False
        return True

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
