"""Traffic tools run inside lab namespaces (``ip netns exec NS python tools.py ...``).

(TCP and UDP servers and clients are the shared ../peer.py.)

ftpserve PORT PRIVATE_IP DATA   a minimal passive-mode FTP server: 220, PASV -> 227 with
                                PRIVATE_IP and a fresh data port, DATA sent on the data link
ftpget HOST PORT TIMEOUT        connect, PASV, parse the 227, fetch the data: prints JSON
                                {"reply_ip": ..., "reply_port": ..., "data": ...}
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading

_PASV = re.compile(rb"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)")


def _ftp_session(conn: socket.socket, private_ip: str, payload: bytes) -> None:
    with conn:
        conn.sendall(b"220 fake ftp ready\r\n")
        buf = b""
        while b"\n" not in buf:
            chunk = conn.recv(1024)
            if not chunk:
                return
            buf += chunk
        if not buf.upper().startswith(b"PASV"):
            conn.sendall(b"500 only PASV\r\n")
            return
        data_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        data_sock.bind(("0.0.0.0", 0))
        data_sock.listen(1)
        data_sock.settimeout(10)
        port = data_sock.getsockname()[1]
        host = private_ip.replace(".", ",")
        conn.sendall(f"227 Entering Passive Mode ({host},{port >> 8},{port & 0xFF})\r\n".encode())
        try:
            data_conn, _ = data_sock.accept()
        except OSError:
            return
        finally:
            data_sock.close()
        with data_conn:
            data_conn.sendall(payload)
        conn.sendall(b"226 done\r\n")


def ftpserve(port: int, private_ip: str, payload: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=_ftp_session, args=(conn, private_ip, payload.encode()),
                         daemon=True).start()


def _readline(sock: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        buf += chunk
    return buf


def ftpget(host: str, port: int, timeout: float) -> None:
    result: dict[str, object] = {}
    try:
        with socket.create_connection((host, port), timeout=timeout) as ctl:
            ctl.settimeout(timeout)
            result["greeting"] = _readline(ctl).decode(errors="replace").strip()
            ctl.sendall(b"PASV\r\n")
            reply = _readline(ctl)
            result["reply"] = reply.decode(errors="replace").strip()
            match = _PASV.search(reply)
            if not match:
                print(json.dumps(result))
                return
            nums = [int(x) for x in match.groups()]
            ip = ".".join(str(n) for n in nums[:4])
            dport = nums[4] * 256 + nums[5]
            result["reply_ip"], result["reply_port"] = ip, dport
            with socket.create_connection((ip, dport), timeout=timeout) as data:
                data.settimeout(timeout)
                got = b""
                while True:
                    chunk = data.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            result["data"] = got.decode(errors="replace")
    except OSError as exc:
        result["error"] = str(exc)
    print(json.dumps(result))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "ftpserve":
        ftpserve(int(args[0]), args[1], args[2])
    elif cmd == "ftpget":
        ftpget(args[0], int(args[1]), float(args[2]))
    else:
        raise SystemExit(f"unknown command {cmd}")
