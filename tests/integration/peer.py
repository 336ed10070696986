"""Test peer, run inside a namespace (``ip netns exec NS python peer.py ...``).

serve tcp|udp PORT [TAG]              answer each client with its address ("TAG address"
                                      when a tag is given), after printing "ready"
connect tcp|udp HOST PORT TIMEOUT [SRC]
                                      print that answer (nothing on failure); SRC binds
                                      the client's source address
"""

from __future__ import annotations

import socket
import sys
import threading


def serve(proto: str, port: int, tag: str = "") -> None:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    # Both families on one socket; an IPv4 client is answered with its IPv4
    # address, not the mapped form.
    sock = socket.socket(socket.AF_INET6, kind)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("::", port))
    if proto == "tcp":
        sock.listen(512)
    print("ready", flush=True)
    prefix = f"{tag} " if tag else ""
    while True:
        if proto == "udp":
            _, addr = sock.recvfrom(2048)
            sock.sendto(f"{prefix}{_seen(addr[0])}".encode(), addr)
            continue
        conn, addr = sock.accept()
        threading.Thread(target=_answer, args=(conn, f"{prefix}{_seen(addr[0])}"),
                         daemon=True).start()


def _seen(address: str) -> str:
    return address.removeprefix("::ffff:") if "." in address else address


def _answer(conn: socket.socket, text: str) -> None:
    with conn:
        conn.sendall(text.encode() + b"\n")


def connect(proto: str, host: str, port: int, timeout: float, src: str | None = None) -> None:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        sock.settimeout(timeout)
        try:
            if src:
                sock.bind((src, 0))
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
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "serve":
        serve(args[0], int(args[1]), args[2] if len(args) > 2 else "")
    else:
        connect(args[0], args[1], int(args[2]), float(args[3]), args[4] if len(args) > 4 else None)
