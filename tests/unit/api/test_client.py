"""The CLI's client: no agent means in-process work; an agent that goes away
mid-command is reported, never retried in-process (it may have committed)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from vragent.api.client import AgentGone, Client, NoAgent


def test_no_socket_or_nobody_listening_means_no_agent(tmp_path: Path) -> None:
    with pytest.raises(NoAgent):
        Client(tmp_path / "missing.sock").call("GET", "/v1/state")
    path = tmp_path / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: a dead agent's socket
    with pytest.raises(NoAgent):
        Client(path).call("GET", "/v1/state")


def test_an_agent_that_hangs_up_mid_command_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def accept_and_hang_up() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.close()

    t = threading.Thread(target=accept_and_hang_up)
    t.start()
    with pytest.raises(AgentGone):
        Client(path).call("POST", "/v1/apply", body=b"{}")
    t.join()
    server.close()
