"""Where the API listens: uvicorn, in one thread of the resident agent.

Two listeners, each its own uvicorn server in one event loop:
- the unix socket (``Settings.api_socket``, mode 0600), always: the CLI and
  the CloudStack entry points use it;
- TCP on the control address and ``api_port``, only while the boot
  parameters give both a control address and an ``api_token``. Never on a
  public or guest address: the socket is bound to that one address.
  It follows the boot parameters: a new address, port or token (or none)
  re-binds it (or closes it).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI

from ..settings import Settings

# A client past this many open connections gets 503 at once: a flood cannot
# exhaust the agent's memory or file descriptors.
MAX_CONNECTIONS = 64
KEEP_ALIVE = 5
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)  # linux/in.h; missing from typeshed


def _config(app: FastAPI) -> uvicorn.Config:
    return uvicorn.Config(app, log_config=None, log_level="warning", access_log=False,
                          lifespan="off", limit_concurrency=MAX_CONNECTIONS,
                          timeout_keep_alive=KEEP_ALIVE, server_header=False,
                          date_header=False, proxy_headers=False)


class QuietServer(uvicorn.Server):
    """uvicorn's server without its tick: uvicorn wakes ten times a second to
    refresh a Date header (off here) and to look at ``should_exit``, which on
    an idle router was most of the agent's CPU. This one sleeps until told."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit_event = asyncio.Event()

    async def main_loop(self) -> None:
        await self.on_tick(0)
        await self.exit_event.wait()

    def exit(self, loop: asyncio.AbstractEventLoop) -> None:
        """From any thread."""
        self.should_exit = True
        loop.call_soon_threadsafe(self.exit_event.set)


class ApiServer:
    def __init__(self, settings: Settings, local_app: FastAPI, tcp_app: FastAPI,
                 log: Callable[[str], None]) -> None:
        self.settings = settings
        self.local_app = local_app
        self.tcp_app = tcp_app
        self.log = log
        self.loop = asyncio.new_event_loop()
        self._servers: list[QuietServer] = []
        self._tcp: tuple[QuietServer, tuple[str, int]] | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="vragent-api",
                                        daemon=True)

    def start(self) -> None:
        sock = self._unix_socket()
        self._thread.start()
        self._serve(self.local_app, sock)

    def stop(self) -> None:
        for server in self._servers:
            server.exit(self.loop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)

    def listen_tcp(self, address: tuple[str, int] | None) -> None:
        """Serve the TCP app on ``address`` (None: not at all)."""
        current = self._tcp[1] if self._tcp else None
        if address == current:
            return
        if self._tcp is not None:
            self._tcp[0].exit(self.loop)
            self._tcp = None
            self.log(f"API: stopped listening on {current[0]}:{current[1]}")  # type: ignore[index]
        if address is None:
            return
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # The control address may not be up yet at boot: bind it anyway.
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            self.log(f"API: cannot listen on {address[0]}:{address[1]}: {exc.strerror}")
            return
        self._tcp = (self._serve(self.tcp_app, sock), address)
        self.log(f"API: listening on {address[0]}:{address[1]}")

    def _unix_socket(self) -> socket.socket:
        path = self.settings.api_socket
        path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Created root-only: nobody else may even connect.
        old = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        sock.listen(128)
        sock.setblocking(False)
        return sock

    def _serve(self, app: FastAPI, sock: socket.socket) -> QuietServer:
        server = QuietServer(_config(app))
        self._servers.append(server)

        async def run() -> None:
            try:
                await server.serve(sockets=[sock])
            finally:
                sock.close()

        def done(fut: Any) -> None:
            if not fut.cancelled() and fut.exception() is not None:
                self.log(f"API: listener ended: {fut.exception()!r}")

        asyncio.run_coroutine_threadsafe(run(), self.loop).add_done_callback(done)
        return server
