"""The resident agent's API over its unix socket, for the CLI and the entry points.

Standard library only, and nothing of the agent's own: a command forwarded
to the running agent must not pay for importing pydantic and the models.
"""

from __future__ import annotations

import errno
import http.client
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

CONNECT_TIMEOUT = 2.0
# A command answers when it is applied; one that takes longer than this has
# an agent that is stuck (CloudStack itself gives a router script 10 minutes).
ANSWER_TIMEOUT = 900.0


class NoAgent(Exception):
    """Nothing listens on the socket: the caller works in-process instead."""


class AgentGone(Exception):
    """The agent went away after taking the request: its outcome is unknown here."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost")
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(str(self.path))
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED):
                raise NoAgent(str(self.path)) from None
            raise
        sock.settimeout(ANSWER_TIMEOUT)
        self.sock = sock


class Client:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    def call(self, method: str, path: str, body: bytes | None = None,
             query: list[tuple[str, str]] | None = None,
             content_type: str = "application/json") -> tuple[int, bytes]:
        conn = _UnixConnection(self.socket_path)
        target = path + ("?" + urlencode(query) if query else "")
        headers = {"Content-Type": content_type} if body is not None else {}
        try:
            try:
                conn.request(method, target, body=body, headers=headers)
            except NoAgent:
                raise
            except (ConnectionError, OSError) as exc:
                if exc.errno in (errno.ENOENT, errno.ECONNREFUSED):
                    raise NoAgent(str(self.socket_path)) from None
                raise AgentGone(str(exc)) from None
            try:
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (ConnectionError, OSError, http.client.HTTPException) as exc:
                raise AgentGone(str(exc) or type(exc).__name__) from None
        finally:
            conn.close()

    def json(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        status, data = self.call(method, path, **kwargs)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, {"detail": data.decode("utf-8", "replace")}


def path_segment(text: str) -> str:
    return quote(text, safe="")
