"""``vragent-metadata``: VM metadata, user data and the password server.

One process serves, on every tier gateway address:

* port 80, what CloudStack's Apache serves (cs/CsApp.py and the rewrite
  rules vmdata.py installs): ``/latest/user-data``, ``/latest/meta-data/``
  (the index), ``/latest/meta-data/<file>``, and ``/latest/<file>``;
* port 8080, CloudStack's password protocol (passwd_server_ip.py): a GET with
  ``DomU_Request: send_my_password`` returns the VM's password, or
  ``saved_password`` when there is none; ``DomU_Request: saved_password``
  confirms it was stored, after which it is never served again.

The VM is the client's source address; nothing in the request can name
another VM. Data is read per request from the files the agent writes, so a
command never needs to reload it; SIGHUP re-reads where to listen.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.server
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import socketserver
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from ...log import log, setup
from ...settings import Settings
from ...store.store import atomic_write
from .daemon import CONF
from .model_vmdata import decode_userdata

# EC2-style API versions ("2009-04-04", "1.0"): answered like "latest".
_VERSION = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}|1\.0")
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)  # linux/in.h; missing from typeshed
# A client gets this long per request: a stalled one cannot hold a thread.
REQUEST_TIMEOUT = 10.0
# How often a listener wakes to see whether it was shut down (socketserver's
# poll): rarely, so an idle router's metadata service costs nothing.
POLL = 5.0


class Config:
    def __init__(self, path: Path) -> None:
        data: dict[str, Any] = json.loads(path.read_text())
        self.listen = [(str(x["address"]), str(x["interface"])) for x in data["listen"]]
        self.metadata_port = int(data["metadata_port"])
        self.password_port = int(data["password_port"])
        self.vmdata_dir = Path(data["vmdata_dir"])
        self.passwords_file = Path(data["passwords_file"])
        self.served_file = Path(data["served_file"])


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = Config(CONF.of(settings))
        self.servers: dict[tuple[str, int], http.server.ThreadingHTTPServer] = {}
        self.password_lock = threading.Lock()

    # -- data ------------------------------------------------------------------
    def vm(self, client: str) -> dict[str, dict[str, str]]:
        try:
            ip = str(ipaddress.IPv4Address(client))  # never a path from the request
        except ValueError:
            return {}
        try:
            data = json.loads((self.config.vmdata_dir / f"{ip}.json").read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _served(self) -> dict[str, str]:
        try:
            data = json.loads(self.config.served_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def password(self, client: str) -> str | None:
        """The client's password, unless it already confirmed saving it."""
        try:
            passwords = json.loads(self.config.passwords_file.read_text())
        except (OSError, ValueError):
            return None
        password = passwords.get(client) if isinstance(passwords, dict) else None
        if not isinstance(password, str) or not password:
            return None
        if self._served().get(client) == _digest(client, password):
            return None
        return password

    def confirm(self, client: str) -> None:
        with self.password_lock:
            password = self.password(client)
            if password is None:
                return
            served = self._served()
            served[client] = _digest(client, password)
            atomic_write(self.config.served_file, json.dumps(served).encode())

    # -- listening -------------------------------------------------------------
    def listen(self) -> None:
        wanted = {(ip, port) for ip, _ in self.config.listen
                  for port in (self.config.metadata_port, self.config.password_port)}
        for key in sorted(set(self.servers) - wanted):
            _close(self.servers.pop(key))
            log(f"stopped listening on {key[0]}:{key[1]}")
        for ip, port in sorted(wanted - set(self.servers)):
            handler = MetadataHandler if port == self.config.metadata_port else PasswordHandler
            try:
                server = _Server((ip, port), handler, self)
            except OSError as exc:
                log(f"cannot listen on {ip}:{port}: {exc.strerror}")
                continue
            self.servers[(ip, port)] = server
            threading.Thread(target=server.serve_forever, args=(POLL,),
                             name=f"http-{ip}:{port}", daemon=True).start()
            log(f"listening on {ip}:{port}")

    def close(self) -> None:
        for key in list(self.servers):
            _close(self.servers.pop(key))

    def reload(self) -> None:
        try:
            self.config = Config(CONF.of(self.settings))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log(f"keeping the previous configuration: {exc}")
            return
        self.listen()


def _digest(client: str, password: str) -> str:
    return hashlib.sha256(f"{client}\0{password}".encode()).hexdigest()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[_Handler],
                 service: Service) -> None:
        self.service = service
        super().__init__(address, handler, bind_and_activate=False)
        # A pair's tier gateway is keepalived's: bind to it before it arrives.
        self.socket.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        try:
            # Not HTTPServer.server_bind: it looks the address up in DNS
            # (socket.getfqdn), which blocks for seconds when no resolver answers.
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = address
            self.server_activate()
        except OSError:
            self.server_close()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints the traceback as lines of text: one record instead.
        log(f"request from {client_address[0]} failed", level=logging.ERROR, exc_info=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT
    server_version = "vragent-metadata"
    sys_version = ""

    def _send(self, code: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        pass  # a request per VM boot is not worth a log line, and may carry a password


class MetadataHandler(_Handler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        vm = self.server.service.vm(self.client_address[0])
        path = self.path.split("?", 1)[0]
        parts = [p for p in path.split("/") if p]
        if not parts or not (parts[0] == "latest" or _VERSION.fullmatch(parts[0])):
            self._send(404, b"not found\n")
            return
        rest = parts[1:]
        meta = vm.get("metadata", {})
        if not rest:
            self._send(200, b"user-data\nmeta-data\n")
        elif rest == ["user-data"]:
            data = vm.get("userdata", {}).get("user-data")
            if data is None:
                self._send(404, b"not found\n")
            else:
                self._send(200, decode_userdata(data), "application/octet-stream")
        elif rest == ["meta-data"]:
            self._send(200, "".join(f"{name}\n" for name in meta).encode())
        elif len(rest) == 2 and rest[0] == "meta-data" and rest[1] in meta:
            self._send(200, meta[rest[1]].encode())
        elif len(rest) == 1 and rest[0] in meta:
            self._send(200, meta[rest[0]].encode())
        else:
            self._send(404, b"not found\n")

    do_HEAD = do_GET  # noqa: N815


class PasswordHandler(_Handler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        client = self.client_address[0]
        request = self.headers.get("DomU_Request", "")
        service = self.server.service
        if request == "send_my_password":
            password = service.password(client)
            self._send(200, (password or "saved_password").encode())
        elif request == "saved_password":
            service.confirm(client)
            self._send(200, b"saved_password")
        else:
            self._send(400, b"bad_request")


def _close(server: socketserver.TCPServer) -> None:
    """Stop a listener now: its thread sleeps in a POLL-long select, so a
    connection of our own wakes it to see the shutdown."""
    stopping = threading.Thread(target=server.shutdown, daemon=True)
    stopping.start()
    host, port = server.server_address[:2]
    while stopping.is_alive():
        with contextlib.suppress(OSError):
            socket.create_connection((str(host), int(port)), timeout=0.5).close()
        stopping.join(0.05)
    server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vragent-metadata")
    parser.add_argument("--root", default=None)
    args = parser.parse_args(argv)
    settings = Settings.from_env(args.root)
    # Its request threads log too: one JSON record per line (vragent/log.py).
    setup()
    try:
        service = Service(settings)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log(f"cannot read {CONF.of(settings)}: {exc}")
        return 2
    hup = threading.Event()
    stop = threading.Event()
    wake = threading.Event()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        hup.set()
        wake.set()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()
        wake.set()

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    service.listen()
    # Asleep until a signal: an idle router's services cost nothing.
    while not stop.is_set():
        wake.wait()
        wake.clear()
        if hup.is_set():
            hup.clear()
            service.reload()
    # The process ends: its sockets close with it, no thread needs to finish.
    for server in service.servers.values():
        server.server_close()
    return 0


if __name__ == "__main__":
    os.umask(0o077)
    sys.exit(main())
