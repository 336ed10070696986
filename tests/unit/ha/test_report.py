"""Transition reports: the spool survives crashes, the pusher delivers in order."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from vragent.ha.report import Pusher, Report, Spool

# Small enough that a few retries cost next to nothing.
FAST = {"backoff": 0.02, "backoff_max": 0.1}


class Peer:
    """The management server: a real HTTP server on 127.0.0.1."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[dict[str, Any]] = []  # every POST, whatever the answer
        self.acked: list[dict[str, Any]] = []  # the POSTs answered 200
        self.content_types: list[str] = []
        self.gets = 0
        self.failures = 0  # answer 500 to this many POSTs first
        self.redirects = 0  # answer 302 to this many POSTs first
        self.release = threading.Event()  # cleared: every POST hangs until it is set
        self.release.set()
        self._lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with peer._lock:
                    peer.received.append(body)
                    peer.content_types.append(self.headers.get("Content-Type", ""))
                    if peer.redirects:
                        peer.redirects -= 1
                        status = 302
                    elif peer.failures:
                        peer.failures -= 1
                        status = 500
                    else:
                        status = 200
                        # Before answering: the pusher may send the next one at once.
                        peer.acked.append(body)
                peer.release.wait(10)
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                with peer._lock:
                    peer.gets += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/reports"
        # A short poll: shutdown() waits for it, and every test closes a peer.
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.01,),
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def seqs(self, which: list[dict[str, Any]]) -> list[int]:
        with self._lock:
            return [body["seq"] for body in which]


class Harness:
    def __init__(self) -> None:
        self.peers: list[Peer] = []
        self.pushers: list[Pusher] = []

    def peer(self, port: int = 0) -> Peer:
        peer = Peer(port)
        self.peers.append(peer)
        return peer

    def pusher(self, spool: Spool, url: str | None, **options: Any) -> Pusher:
        pusher = Pusher(spool, url, **options)
        self.pushers.append(pusher)
        pusher.start()
        return pusher


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    for peer in h.peers:
        peer.release.set()
    for pusher in h.pushers:
        pusher.stop()
    for peer in h.peers:
        peer.close()


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def report(state: str = "PRIMARY", previous: str = "BACKUP", **detail: str) -> Report:
    return Report(router="r-42-VM", state=state, previous=previous,
                  timestamp=1_700_000_000.123456, reason="vrrp", detail=detail)


def put(spool: Spool, pusher: Pusher | None, count: int) -> list[Report]:
    states = ["PRIMARY", "BACKUP", "FAULT"]
    stored = []
    for i in range(count):
        stored.append(spool.put(report(states[i % 3], states[(i + 1) % 3])))
        if pusher is not None:
            pusher.wake()
    return stored


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the document ---------------------------------------------------------------


def test_json_document() -> None:
    doc = report(dual_master="true").to_json()
    assert doc == {"router": "r-42-VM", "state": "PRIMARY", "previous": "BACKUP",
                   "timestamp": "2023-11-14T22:13:20.123Z", "unix": 1_700_000_000.123456,
                   "reason": "vrrp", "seq": 0, "dual_master": "true"}
    json.dumps(doc)


def test_detail_cannot_replace_a_core_field() -> None:
    with pytest.raises(ValueError, match="state"):
        Report(router="r", state="PRIMARY", previous="BACKUP", timestamp=0.0, reason="vrrp",
               detail={"state": "FAULT"})


# -- the spool ------------------------------------------------------------------


def test_spool_orders_and_forgets(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "reports")
    stored = put(spool, None, 3)
    assert [r.seq for r in stored] == [1, 2, 3]
    assert (tmp_path / "reports/000000000002.json").is_file()
    assert spool.pending() == stored
    spool.done(1)
    assert [r.seq for r in spool.pending()] == [2, 3]
    assert spool.head() == stored[1]


def test_seq_never_goes_back(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for r in put(spool, None, 2):
        spool.done(r.seq)
    assert spool.put(report()).seq == 3
    spool.done(3)
    # Everything delivered, then a restart: the server must still see new numbers.
    assert spool.pending() == []
    assert Spool(tmp_path).put(report()).seq == 4


def test_torn_temp_file_is_ignored(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    first = spool.put(report())
    torn = tmp_path / ".000000000002.json.4242.tmp"
    torn.write_bytes(b'{"router": "r-42')
    assert spool.pending() == [first]
    reopened = Spool(tmp_path)
    assert not torn.exists()
    assert reopened.pending() == [first]
    assert reopened.put(report()).seq == 2


def test_unreadable_report_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "000000000001.json").write_bytes(b"\x00\x00garbage")
    spool = Spool(tmp_path)
    good = spool.put(report())
    assert good.seq == 2
    assert spool.pending() == [good]
    assert (tmp_path / "000000000001.json.corrupt").is_file()


# -- the pusher -----------------------------------------------------------------


def test_delivered_in_order(tmp_path: Path, harness: Harness) -> None:
    peer = harness.peer()
    spool = Spool(tmp_path)
    pusher = harness.pusher(spool, peer.url, **FAST)
    stored = put(spool, pusher, 5)
    wait_for(lambda: len(peer.acked) == 5 and pusher.delivered == 5)
    assert not spool.pending()
    assert peer.acked == [r.to_json() for r in stored]
    assert peer.seqs(peer.acked) == [1, 2, 3, 4, 5]
    assert peer.content_types == ["application/json"] * 5
    assert pusher.delivered == 5
    assert pusher.last_error is None


def test_server_down_then_up(tmp_path: Path, harness: Harness) -> None:
    port = free_port()
    spool = Spool(tmp_path)
    pusher = harness.pusher(spool, f"http://127.0.0.1:{port}/reports", **FAST)
    put(spool, pusher, 3)
    wait_for(lambda: pusher.last_error is not None)
    assert pusher.delivered == 0
    assert len(spool.pending()) == 3
    peer = harness.peer(port)
    wait_for(lambda: len(peer.acked) == 3 and pusher.delivered == 3)
    assert not spool.pending()
    assert peer.seqs(peer.received) == [1, 2, 3]
    assert pusher.delivered == 3
    wait_for(lambda: pusher.last_error is None)


def test_errors_are_retried_in_order(tmp_path: Path, harness: Harness) -> None:
    peer = harness.peer()
    peer.failures = 3
    spool = Spool(tmp_path)
    pusher = harness.pusher(spool, peer.url, **FAST)
    put(spool, pusher, 3)
    wait_for(lambda: len(peer.acked) == 3 and pusher.delivered == 3)
    assert not spool.pending()
    # The first report is retried until acknowledged; nothing overtakes it.
    assert peer.seqs(peer.received) == [1, 1, 1, 1, 2, 3]
    assert peer.seqs(peer.acked) == [1, 2, 3]
    assert pusher.delivered == 3


def test_error_is_reported_for_status(tmp_path: Path, harness: Harness) -> None:
    peer = harness.peer()
    peer.failures = 1000
    spool = Spool(tmp_path)
    pusher = harness.pusher(spool, peer.url, **FAST)
    put(spool, pusher, 1)
    wait_for(lambda: pusher.last_error is not None)
    assert pusher.last_error == "report 1: HTTP 500 Internal Server Error"
    assert len(spool.pending()) == 1


def test_redirect_is_not_an_acknowledgement(tmp_path: Path, harness: Harness) -> None:
    peer = harness.peer()
    peer.redirects = 1
    spool = Spool(tmp_path)
    pusher = harness.pusher(spool, peer.url, **FAST)
    put(spool, pusher, 1)
    wait_for(lambda: len(peer.acked) == 1 and not spool.pending())
    assert peer.gets == 0
    assert peer.seqs(peer.received) == [1, 1]


def test_put_does_not_wait_for_a_stuck_server(tmp_path: Path, harness: Harness) -> None:
    peer = harness.peer()
    peer.release.clear()
    spool = Spool(tmp_path)
    pusher = harness.pusher(spool, peer.url, timeout=5.0, **FAST)
    put(spool, pusher, 1)
    wait_for(lambda: len(peer.received) == 1)
    # The pusher is now inside a POST the server does not answer.
    for _ in range(3):
        started = time.monotonic()
        put(spool, pusher, 1)
        assert time.monotonic() - started < 0.5
    assert len(spool.pending()) == 4
    peer.release.set()
    wait_for(lambda: len(peer.acked) == 4 and not spool.pending())
    assert peer.seqs(peer.acked) == [1, 2, 3, 4]


def test_unconfigured_url_keeps_reports_across_restart(tmp_path: Path,
                                                       harness: Harness) -> None:
    spool = Spool(tmp_path)
    idle = harness.pusher(spool, None, **FAST)
    stored = put(spool, idle, 3)
    assert spool.pending() == stored
    idle.stop()
    assert idle.delivered == 0
    assert spool.pending() == stored

    reopened = Spool(tmp_path)
    assert reopened.pending() == stored
    peer = harness.peer()
    harness.pusher(reopened, peer.url, **FAST)
    wait_for(lambda: len(peer.acked) == 3 and not reopened.pending())
    assert peer.acked == [r.to_json() for r in stored]


def test_stop_interrupts_backoff(tmp_path: Path, harness: Harness) -> None:
    spool = Spool(tmp_path)
    pusher = harness.pusher(spool, f"http://127.0.0.1:{free_port()}/", backoff=30.0)
    put(spool, pusher, 1)
    wait_for(lambda: pusher.last_error is not None)
    started = time.monotonic()
    pusher.stop(timeout=5.0)
    assert time.monotonic() - started < 1.0
    assert len(spool.pending()) == 1


class RawServer:
    """One-connection-at-a-time server that answers every request with ``answer``."""

    def __init__(self, answer: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/report"
        self.answer = answer
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                try:
                    self.answer(conn)
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def test_a_trickling_server_cannot_hold_the_reports(tmp_path: Path) -> None:
    def trickle(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        for _ in range(100):  # a header byte every 0.2 s: each read is "in time"
            conn.sendall(b"X")
            time.sleep(0.2)

    server = RawServer(trickle)
    spool = Spool(tmp_path)
    pusher = Pusher(spool, server.url, timeout=0.5, backoff=0.05, backoff_max=0.1)
    pusher.start()
    try:
        put(spool, pusher, 1)
        wait_for(lambda: pusher.last_error is not None, 5)
        assert pusher.last_error == "report 1: TimeoutError: no answer within 1 s"
        assert pusher.delivered == 0 and len(spool.pending()) == 1
    finally:
        pusher.stop()
        server.close()


def test_a_huge_answer_is_not_read(tmp_path: Path) -> None:
    sent = []

    def huge(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(200):
            conn.sendall(chunk)
            sent.append(len(chunk))

    server = RawServer(huge)
    spool = Spool(tmp_path)
    pusher = Pusher(spool, server.url, timeout=1.0)
    pusher.start()
    try:
        put(spool, pusher, 1)
        wait_for(lambda: pusher.delivered == 1, 5)  # the 200 is the acknowledgement
        assert not spool.pending()
        assert sum(sent) < 200 * 65536  # it stopped reading: the server was cut off
    finally:
        pusher.stop()
        server.close()
