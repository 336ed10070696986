"""Known traffic for the usage tests: bytes each way over TCP, or counted
UDP datagrams echoed back.

    transfer.py serve <port> <bytes down>      prints "ready" once listening, then
                                               serves connections until killed
    transfer.py send <host> <port> <bytes up>  prints {"sent": n, "received": m}
    transfer.py echo <port>                    prints "ready", echoes datagrams; on
                                               SIGTERM prints {"echoed": n}
    transfer.py stream <host> <port> <count> <interval> <size>
                                               prints {"sent": n, "replies": m}

TCP: the client sends its bytes and closes its side; the server reads to the
end, then sends its bytes and closes. Both count what really crossed. UDP:
every datagram (``size`` bytes, its number first) the echo gets it returns;
the stream waits a second for the last replies.
"""

from __future__ import annotations

import json
import select
import signal
import socket
import struct
import sys
import time
from types import FrameType

CHUNK = 65536


def _read_all(conn: socket.socket) -> int:
    total = 0
    while True:
        data = conn.recv(CHUNK)
        if not data:
            return total
        total += len(data)


def _write(conn: socket.socket, size: int) -> None:
    block = b"\xa5" * CHUNK
    left = size
    while left > 0:
        conn.sendall(block[:min(left, CHUNK)])
        left -= min(left, CHUNK)


def serve(port: int, down: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", port))
        srv.listen(8)
        print("ready", flush=True)
        while True:
            conn, _ = srv.accept()
            with conn:
                conn.settimeout(30)
                _read_all(conn)
                _write(conn, down)
                conn.shutdown(socket.SHUT_WR)
                _read_all(conn)  # until the client closes: no RST cuts the tail


def send(host: str, port: int, up: int) -> None:
    with socket.create_connection((host, port), timeout=30) as conn:
        _write(conn, up)
        conn.shutdown(socket.SHUT_WR)
        got = _read_all(conn)
    print(json.dumps({"sent": up, "received": got}), flush=True)


def echo(port: int) -> None:
    echoed = 0

    def report(signum: int, frame: FrameType | None) -> None:
        print(json.dumps({"echoed": echoed}), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, report)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", port))
        print("ready", flush=True)
        while True:
            data, peer = sock.recvfrom(65535)
            sock.sendto(data, peer)
            echoed += 1


def stream(host: str, port: int, count: int, interval: float, size: int) -> None:
    replies: set[int] = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        sock.setblocking(False)
        start = time.monotonic()
        sent = 0

        def drain(until: float) -> None:
            while True:
                wait = until - time.monotonic()
                if wait <= 0 or not select.select([sock], [], [], wait)[0]:
                    return
                try:
                    data = sock.recv(65535)
                except OSError:  # an ICMP error for an earlier datagram
                    continue
                if len(data) == size:
                    replies.add(struct.unpack_from("!Q", data)[0])

        while sent < count:
            try:
                sock.send(struct.pack("!Q", sent).ljust(size, b"\x5a"))
            except OSError:
                pass  # no route for a moment: the datagram is lost, as on a wire
            sent += 1
            drain(start + sent * interval)
        drain(time.monotonic() + 1.0)
    print(json.dumps({"sent": sent, "replies": len(replies)}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "echo":
        echo(int(sys.argv[2]))
    else:
        stream(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]),
               int(sys.argv[6]))
