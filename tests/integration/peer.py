"""Test peer: ``serve tcp|udp PORT`` answers each client with the client's address;
``connect tcp|udp HOST PORT TIMEOUT`` prints that answer (nothing on failure)."""

from __future__ import annotations

import socket
import sys
import threading


def serve(proto: str, port: int) -> None:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    if proto == "tcp":
        sock.listen(512)
    print("ready", flush=True)
    while True:
        if proto == "udp":
            _, addr = sock.recvfrom(2048)
            sock.sendto(addr[0].encode(), addr)
            continue
        conn, addr = sock.accept()
        threading.Thread(target=_answer, args=(conn, addr[0]), daemon=True).start()


def _answer(conn: socket.socket, peer: str) -> None:
    with conn:
        conn.sendall(peer.encode() + b"\n")


def connect(proto: str, host: str, port: int, timeout: float) -> None:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.settimeout(timeout)
        try:
            if proto == "tcp":
                sock.connect((host, port))
                data = sock.recv(2048)
            else:
                sock.sendto(b"?", (host, port))
                data, _ = sock.recvfrom(2048)
        except OSError:
            return
        print(data.decode().strip())


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        connect(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
