"""A known number of bytes each way over one TCP connection, for the usage tests.

    transfer.py serve <port> <bytes down>      prints "ready" once listening, then
                                               serves connections until killed
    transfer.py send <host> <port> <bytes up>  prints {"sent": n, "received": m}

The client sends its bytes and closes its side; the server reads to the end,
then sends its bytes and closes. Both count what really crossed.
"""

from __future__ import annotations

import json
import socket
import sys

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


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
    else:
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
