"""Traffic for failover measurements: a 10 ms UDP probe and many long-lived TCP connections.

The tools run inside a namespace::

    ip netns exec NS python -m vragent_lab.traffic udp-echo --bind IP --port P
    ip netns exec NS python -m vragent_lab.traffic probe --target IP --port P [--interval S]
    ip netns exec NS python -m vragent_lab.traffic tcp-echo --bind IP --port P
    ip netns exec NS python -m vragent_lab.traffic tcp-hold --target IP --port P --count N

and answer on stdout with one JSON line per report (flushed). The probe runs until
stdin closes or SIGTERM/SIGINT (only the signals if stdin is /dev/null or a file)
and then prints its report; on stdin it also takes
``reset`` (start a new measuring window) and ``stats`` (report so far, keep going).
``tcp-hold`` prints ``{"opened", "failed"}`` once connected, then answers
``check [TIMEOUT]`` lines and ends on ``quit`` or end of input.

The controller classes (:class:`UdpEcho`, :class:`TcpEcho`, :class:`Probe`,
:class:`TcpHolder`) start these from the test process, talk to them with deadlines,
and end only the process they started, by its PID, always reaping it.
"""

from __future__ import annotations

import argparse
import errno
import itertools
import json
import os
import resource
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import IO, Any, Self

from .netns import in_ns

# ---------------------------------------------------------------------------
# Pure accounting


def max_gap(arrivals: Sequence[float]) -> float:
    """The longest interval between two consecutive arrivals (0 with fewer than two)."""
    return max((b - a for a, b in itertools.pairwise(arrivals)), default=0.0)


def gaps(arrivals: Sequence[float], threshold: float) -> list[tuple[float, float]]:
    """The (previous arrival, next arrival) pairs further apart than ``threshold``."""
    return [(a, b) for a, b in itertools.pairwise(arrivals) if b - a > threshold]


def in_flight_grace(interval: float) -> float:
    """How long a probe may stay unanswered before it counts as lost."""
    return 3 * interval + 0.05


class ProbeWindow:
    """The counters of one measuring window: what was sent when, which replies came.

    Times are passed in (monotonic seconds), so loss and gap accounting need no
    sockets. Sequence numbers in reports count from the window's first probe, so a
    window after ``reset`` reads like a fresh run.
    """

    def __init__(self, interval: float, start: float, first_seq: int = 0) -> None:
        self.interval = interval
        self.start = start
        self.first_seq = first_seq
        self.sent = 0
        self.pending: dict[int, float] = {}
        self.arrivals: list[float] = []

    def sent_one(self, seq: int, at: float) -> None:
        self.sent += 1
        self.pending[seq] = at

    def replied(self, seq: int, at: float) -> bool:
        """Record a reply; duplicates and replies to other windows' probes are ignored."""
        if self.pending.pop(seq, None) is None:
            return False
        self.arrivals.append(at)
        return True

    def report(self, now: float, grace: float) -> dict[str, Any]:
        lost = sorted(s for s, t in self.pending.items() if now - t >= grace)
        ms = 1000.0
        return {
            "sent": self.sent,
            "received": len(self.arrivals),
            "lost": len(lost),
            "in_flight": len(self.pending) - len(lost),
            "max_gap_ms": round(max_gap(self.arrivals) * ms, 3),
            "first_loss_seq": lost[0] - self.first_seq if lost else None,
            "last_loss_seq": lost[-1] - self.first_seq if lost else None,
            "gaps": [
                [round((a - self.start) * ms, 3), round((b - self.start) * ms, 3)]
                for a, b in gaps(self.arrivals, 5 * self.interval)
            ],
        }


# token (tells our replies from anyone else's), sequence number, send time
PROBE_PACKET = struct.Struct("!8sQd")


def parse_command(line: str) -> tuple[str, list[str]]:
    words = line.split()
    return (words[0].lower(), words[1:]) if words else ("", [])


# ---------------------------------------------------------------------------
# Tools (run inside the namespace)


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _raise_nofile_limit() -> None:
    # Hundreds of connections plus the selector must not hit a low soft limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def _family(addr: str) -> socket.AddressFamily:
    """The socket family of an address: the tools speak IPv6 as well."""
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def udp_echo(bind: str, port: int) -> None:
    with socket.socket(_family(bind), socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind, port))
        while True:
            try:
                data, peer = sock.recvfrom(65535)
                sock.sendto(data, peer)
            except OSError:
                # An unreachable client (link down mid-failover) must not end the server.
                continue


def probe(target: str, port: int, interval: float) -> None:
    token = os.urandom(8)
    sock = socket.socket(_family(target), socket.SOCK_DGRAM)
    # Unconnected on purpose: a connected socket turns ICMP errors during an
    # outage into exceptions on later calls; the token filters replies instead.
    sock.setblocking(False)
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    # The wakeup fd ends the select at once instead of after the next interval.
    signal.set_wakeup_fd(wake_w.fileno())
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "reply")
    commands = True
    try:
        sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    except OSError:
        # /dev/null or a file cannot be polled: no commands, run until a signal.
        commands = False
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    grace = in_flight_grace(interval)
    seq = 0
    window = ProbeWindow(interval, time.monotonic())
    next_send = window.start
    pending_input = b""

    def receive() -> None:
        while True:
            try:
                data = sock.recv(65535)
            except BlockingIOError:
                return
            except OSError:
                continue
            if len(data) != PROBE_PACKET.size:
                continue
            got_token, got_seq, _ = PROBE_PACKET.unpack(data)
            if got_token == token:
                window.replied(got_seq, time.monotonic())

    while not stopping:
        now = time.monotonic()
        if now >= next_send:
            try:
                sock.sendto(PROBE_PACKET.pack(token, seq, now), (target, port))
            except OSError:
                pass  # no route during an outage: the probe is sent, and lost
            window.sent_one(seq, now)
            seq += 1
            next_send += interval
            if next_send < now:
                # Fell behind (scheduling stall): a burst would hide the stall.
                next_send = now + interval
        for key, _ in sel.select(max(0.0, next_send - time.monotonic())):
            if key.data == "reply":
                receive()
            elif key.data == "wake":
                try:
                    wake_r.recv(512)
                except BlockingIOError:
                    pass
            else:
                chunk = os.read(sys.stdin.fileno(), 4096)
                if not chunk:
                    stopping = True
                    break
                pending_input += chunk
                *lines, rest = pending_input.split(b"\n")
                pending_input = rest
                for raw in lines:
                    command, _ = parse_command(raw.decode(errors="replace"))
                    if command == "reset":
                        window = ProbeWindow(interval, time.monotonic(), first_seq=seq)
                    elif command == "stats":
                        _emit(window.report(time.monotonic(), grace))
                    elif command in ("quit", "stop"):
                        stopping = True
                    elif command:
                        print(f"probe: unknown command {command!r}", file=sys.stderr)

    if commands:
        sel.unregister(sys.stdin.fileno())
    sel.unregister(wake_r)
    deadline = time.monotonic() + grace
    while window.pending and (left := deadline - time.monotonic()) > 0:
        if sel.select(left):
            receive()
    _emit(window.report(time.monotonic(), 0.0))
    sel.close()
    sock.close()


@dataclass
class _EchoConn:
    sock: socket.socket
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)
    events: int = selectors.EVENT_READ
    eof: bool = False


# A client that sends but does not read must not grow the server without bound.
_MAX_OUTBUF = 1 << 20
_MAX_LINE = 1 << 16


def tcp_echo(bind: str, port: int) -> None:
    _raise_nofile_limit()
    sel = selectors.DefaultSelector()
    listener = socket.socket(_family(bind), socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((bind, port))
    listener.listen(4096)
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ, None)
    while True:
        for key, mask in sel.select():
            if key.data is None:
                _accept(sel, listener)
            else:
                _serve(sel, key.data, mask)


def _accept(sel: selectors.BaseSelector, listener: socket.socket) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        except OSError:
            return  # e.g. EMFILE: the listener stays readable, retried next round
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sel.register(conn, selectors.EVENT_READ, _EchoConn(conn))


def _serve(sel: selectors.BaseSelector, c: _EchoConn, mask: int) -> None:
    if mask & selectors.EVENT_READ:
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            data = None
        except OSError:
            return _drop(sel, c)
        if data == b"":
            c.eof = True
        elif data:
            c.inbuf += data
            end = c.inbuf.rfind(b"\n") + 1
            if not end and len(c.inbuf) > _MAX_LINE:
                end = len(c.inbuf)
            c.outbuf += c.inbuf[:end]
            del c.inbuf[:end]
    if c.outbuf:
        try:
            del c.outbuf[: c.sock.send(c.outbuf)]
        except BlockingIOError:
            pass
        except OSError:
            return _drop(sel, c)
    if c.eof and not c.outbuf:
        return _drop(sel, c)
    events = 0 if c.eof or len(c.outbuf) >= _MAX_OUTBUF else selectors.EVENT_READ
    if c.outbuf:
        events |= selectors.EVENT_WRITE
    if events != c.events:
        sel.modify(c.sock, events, c)
        c.events = events


def _drop(sel: selectors.BaseSelector, c: _EchoConn) -> None:
    sel.unregister(c.sock)
    c.sock.close()


@dataclass
class _Held:
    ident: int
    sock: socket.socket | None
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


# Linux: choose the source port at connect time, so a bound source address is not
# limited to one connection per ephemeral port across all destinations.
_IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def open_connections(target: str, port: int, count: int, source_ip: str | None,
                     timeout: float) -> list[_Held]:
    held = [_Held(i, None) for i in range(count)]
    sel = selectors.DefaultSelector()
    for h in held:
        sock = socket.socket(_family(target), socket.SOCK_STREAM)
        try:
            # Keepalive off: a connection must survive a failover on its own state,
            # not be declared dead (or revived) by probes we did not ask for.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if source_ip:
                sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
                sock.bind((source_ip, 0))
            sock.setblocking(False)
            err = sock.connect_ex((target, port))
        except OSError:
            sock.close()
            continue
        if err == 0:
            h.sock = sock
        elif err == errno.EINPROGRESS:
            sel.register(sock, selectors.EVENT_WRITE, h)
        else:
            sock.close()
    deadline = time.monotonic() + timeout
    while sel.get_map() and (left := deadline - time.monotonic()) > 0:
        for key, _ in sel.select(left):
            h = key.data
            sock = _sock_of(key)
            sel.unregister(sock)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                h.sock = sock
            else:
                sock.close()
    for key in list(sel.get_map().values()):
        sock = _sock_of(key)
        sel.unregister(sock)
        sock.close()
    sel.close()
    return held


def _sock_of(key: selectors.SelectorKey) -> socket.socket:
    assert isinstance(key.fileobj, socket.socket)
    return key.fileobj


def check_connections(held: list[_Held], round_no: int, timeout: float) -> dict[str, Any]:
    """Send one unique line on every open connection and wait for each echo.

    Echoes of earlier, timed-out checks still in the stream are skipped, so a
    connection that was slow once is not failed forever.
    """
    sel = selectors.DefaultSelector()
    expected: dict[int, bytes] = {}
    ok: set[int] = set()
    for h in held:
        if h.sock is None:
            continue
        line = f"check {round_no} conn {h.ident}\n".encode()
        expected[h.ident] = line
        h.outbuf += line
        if _flush(h):
            sel.register(h.sock, _events(h), h)
        else:
            h.close()
    deadline = time.monotonic() + timeout
    while sel.get_map() and (left := deadline - time.monotonic()) > 0:
        for key, mask in sel.select(left):
            h = key.data
            sock = _sock_of(key)
            if mask & selectors.EVENT_WRITE and not _flush(h):
                sel.unregister(sock)
                h.close()
                continue
            if mask & selectors.EVENT_READ:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    data = None
                except OSError:
                    data = b""
                if data == b"":
                    # Closed or reset by the peer: it can never echo again.
                    sel.unregister(sock)
                    h.close()
                    continue
                if data:
                    h.inbuf += data
                    if _take_line(h, expected[h.ident]):
                        ok.add(h.ident)
                        sel.unregister(sock)
                        continue
            sel.modify(sock, _events(h), h)
    sel.close()
    failed = sorted(h.ident for h in held if h.ident not in ok)
    return {
        "ok": len(ok),
        "failed": len(failed),
        "failed_ids": failed,
        "open": sum(1 for h in held if h.sock is not None),
    }


def _events(h: _Held) -> int:
    return selectors.EVENT_READ | (selectors.EVENT_WRITE if h.outbuf else 0)


def _flush(h: _Held) -> bool:
    """Send what is queued; False when the connection turned out dead."""
    assert h.sock is not None
    if h.outbuf:
        try:
            del h.outbuf[: h.sock.send(h.outbuf)]
        except BlockingIOError:
            pass
        except OSError:
            return False
    return True


def _take_line(h: _Held, want: bytes) -> bool:
    while (end := h.inbuf.find(b"\n") + 1) > 0:
        line = bytes(h.inbuf[:end])
        del h.inbuf[:end]
        if line == want:
            return True
    return False


def tcp_hold(target: str, port: int, count: int, source_ip: str | None,
             connect_timeout: float, check_timeout: float) -> None:
    _raise_nofile_limit()
    held = open_connections(target, port, count, source_ip, connect_timeout)
    opened = sum(1 for h in held if h.sock is not None)
    _emit({"opened": opened, "failed": count - opened})
    rounds = itertools.count(1)
    for raw in sys.stdin:
        command, args = parse_command(raw)
        if command == "check":
            try:
                timeout = float(args[0]) if args else check_timeout
            except ValueError:
                _emit({"error": f"bad timeout {args[0]!r}"})
                continue
            _emit(check_connections(held, next(rounds), timeout))
        elif command == "quit":
            break
        elif command:
            # Every command but quit gets one line, so a reader never waits forever.
            _emit({"error": f"unknown command {command!r}"})
    for h in held:
        h.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vragent_lab.traffic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    for mode in ("udp-echo", "tcp-echo"):
        p = sub.add_parser(mode)
        p.add_argument("--bind", default="0.0.0.0")
        p.add_argument("--port", type=int, required=True)
    p = sub.add_parser("probe")
    p.add_argument("--target", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--interval", type=float, default=0.01)
    p = sub.add_parser("tcp-hold")
    p.add_argument("--target", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--source-ip")
    p.add_argument("--connect-timeout", type=float, default=5.0)
    p.add_argument("--check-timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    try:
        if args.mode == "udp-echo":
            udp_echo(args.bind, args.port)
        elif args.mode == "tcp-echo":
            tcp_echo(args.bind, args.port)
        elif args.mode == "probe":
            if args.interval <= 0:
                parser.error("--interval must be positive")
            probe(args.target, args.port, args.interval)
        else:
            tcp_hold(args.target, args.port, args.count, args.source_ip,
                     args.connect_timeout, args.check_timeout)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The controller went away; nobody is left to read a report.
        return 1
    return 0


# ---------------------------------------------------------------------------
# Controllers (run in the test process)


class ToolError(RuntimeError):
    """A traffic tool did not start, answer or end as expected."""


class _Tool:
    """One traffic tool process in a namespace, talked to over its stdin/stdout.

    Only this process is ever signalled (by PID, through Popen, which holds the PID
    until it is reaped, so it cannot name another process), and it is always reaped.
    """

    def __init__(self, ns: str, argv: list[str]) -> None:
        self.ns = ns
        self.argv = argv
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._buf = b""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def _spawn(self, talk: bool) -> subprocess.Popen[bytes]:
        if self.proc is not None:
            raise ToolError(f"{self.argv[0]} in {self.ns} already started")
        # A file, not a pipe: a chatty tool must never block on a full stderr pipe.
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, sys.executable, "-m", "vragent_lab.traffic",
             *self.argv],
            stdin=subprocess.PIPE if talk else subprocess.DEVNULL,
            stdout=subprocess.PIPE if talk else subprocess.DEVNULL,
            stderr=self._stderr,
        )
        return self.proc

    def _diagnosis(self) -> str:
        code = self.proc.poll() if self.proc else None
        text = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace").strip()
        state = "running" if code is None else f"exit {code}"
        return f"{' '.join(self.argv)} in {self.ns} ({state}): {text or 'no stderr'}"

    def _send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as e:
            raise ToolError(f"cannot send {line!r}: {self._diagnosis()}") from e

    def _read_json(self, timeout: float, what: str) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ToolError(f"no {what} within {timeout}s: {self._diagnosis()}")
                if sel.select(left):
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        self._wait_exit(5.0)  # it closed stdout: it is ending
                        raise ToolError(f"no {what}: {self._diagnosis()}")
                    self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise ToolError(f"{what}: {answer['error']}")
        return answer

    def _wait_exit(self, timeout: float) -> bool:
        assert self.proc is not None
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _kill(self) -> None:
        """End the process now (if it still runs), reap it and release its pipes."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        # SIGKILL cannot be ignored; the bound only guards against a stuck kernel.
        self.proc.wait(timeout=10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self if self.proc is not None else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class _Server(_Tool):
    proto = ""

    def __init__(self, ns: str, bind: str, port: int, timeout: float = 10.0) -> None:
        super().__init__(ns, [f"{self.proto}-echo", "--bind", bind, "--port", str(port)])
        self.bind, self.port, self.timeout = bind, port, timeout

    def start(self) -> Self:
        proc = self._spawn(talk=False)
        flag = "-Hlnu" if self.proto == "udp" else "-Hlnt"
        deadline = time.monotonic() + self.timeout
        try:
            while not in_ns(self.ns, ["ss", flag, "sport", "=", f":{self.port}"], check=False):
                if proc.poll() is not None:
                    raise ToolError(f"server ended: {self._diagnosis()}")
                if time.monotonic() > deadline:
                    raise ToolError(f"not listening within {self.timeout}s: {self._diagnosis()}")
                time.sleep(0.02)
        except BaseException:
            self._kill()
            raise
        return self

    def stop(self) -> None:
        self._kill()


class UdpEcho(_Server):
    """``udp-echo`` in ``ns``; ``start()`` returns once the port is bound."""

    proto = "udp"


class TcpEcho(_Server):
    """``tcp-echo`` in ``ns``; ``start()`` returns once the port listens."""

    proto = "tcp"


class Probe(_Tool):
    """A UDP probe from ``ns`` to an echo server at ``target``:``port``.

    ``start()`` returns once the probe runs; ``reset()`` starts a new measuring
    window (it has taken effect when the call returns); ``stats()`` reports the
    window so far; ``stop()`` waits for in-flight replies and returns the final
    report (again on later calls).
    """

    def __init__(self, ns: str, target: str, port: int, interval: float = 0.01,
                 timeout: float = 10.0) -> None:
        super().__init__(ns, ["probe", "--target", target, "--port", str(port),
                              "--interval", repr(interval)])
        self.interval, self.timeout = interval, timeout
        self.final: dict[str, Any] | None = None

    def start(self) -> Self:
        self._spawn(talk=True)
        try:
            self.stats()  # answers once the interpreter is up and probing
        except BaseException:
            self._kill()
            raise
        return self

    def stats(self) -> dict[str, Any]:
        if self.final is not None:
            return self.final
        self._send("stats")
        return self._read_json(self.timeout, "probe stats")

    def reset(self) -> None:
        self._send("reset")
        # Commands are handled in order: once this answers, the reset is in force.
        self.stats()

    def stop(self) -> dict[str, Any]:
        if self.final is not None:
            return self.final
        if self.proc is None:
            raise ToolError("probe never started")
        try:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.close()  # end of input: report and exit
            except BrokenPipeError:
                pass
            report = self._read_json(self.timeout + in_flight_grace(self.interval),
                                     "final probe report")
            if not self._wait_exit(self.timeout):
                raise ToolError(f"probe did not exit: {self._diagnosis()}")
        finally:
            self._kill()
        self.final = report
        return report

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.stop()
        else:
            self._kill()  # the test already failed: its report is not wanted


class TcpHolder(_Tool):
    """``count`` long-lived TCP connections from ``ns`` to ``target``:``port``.

    ``start()`` returns once every connection is open (it raises, ending the tool,
    if any failed, unless ``require_all=False``); ``opened``/``failed`` say how
    many. ``check(timeout)`` sends a line on each and reports the echoes:
    ``{"ok", "failed", "failed_ids", "open"}``: ``ok + failed == count`` (a
    connection that never opened counts as failed), ``open`` is how many are still
    open (a connection the peer closed or reset is closed for good).
    """

    def __init__(self, ns: str, target: str, port: int, count: int,
                 source_ip: str | None = None, connect_timeout: float = 5.0,
                 check_timeout: float = 5.0) -> None:
        argv = ["tcp-hold", "--target", target, "--port", str(port), "--count", str(count),
                "--connect-timeout", repr(connect_timeout),
                "--check-timeout", repr(check_timeout)]
        if source_ip:
            argv += ["--source-ip", source_ip]
        super().__init__(ns, argv)
        self.count, self.connect_timeout = count, connect_timeout
        self.check_timeout = check_timeout
        self.opened = 0
        self.failed = 0

    def start(self, require_all: bool = True) -> Self:
        self._spawn(talk=True)
        try:
            # Interpreter start-up in the namespace comes on top of the connect timeout.
            report = self._read_json(self.connect_timeout + 10.0, "opened report")
            self.opened, self.failed = int(report["opened"]), int(report["failed"])
            if require_all and self.opened != self.count:
                raise ToolError(f"opened {self.opened} of {self.count} connections")
        except BaseException:
            self._kill()
            raise
        return self

    def check(self, timeout: float | None = None) -> dict[str, Any]:
        wait = self.check_timeout if timeout is None else timeout
        self._send(f"check {wait!r}")
        return self._read_json(wait + 10.0, "check report")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                try:
                    self._send("quit")
                except ToolError:
                    pass
                self._wait_exit(5.0)
        finally:
            self._kill()


if __name__ == "__main__":
    sys.exit(main())
