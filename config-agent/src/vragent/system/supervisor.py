"""supervisord over its XML-RPC interface (a unix socket per router)."""

from __future__ import annotations

import xmlrpc.client
from pathlib import Path
from typing import Any, cast

from supervisor.xmlrpc import SupervisorTransport  # type: ignore[import-untyped]

RUNNING_STATES = ("STARTING", "RUNNING", "BACKOFF")


# supervisor.xmlrpc.Faults.SHUTDOWN_STATE
SHUTDOWN_STATE = 6


class Supervisor:
    def __init__(self, socket_path: Path) -> None:
        transport = SupervisorTransport(None, None, f"unix://{socket_path}")
        # The host part is ignored: the transport always talks to the socket.
        self._rpc = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def processes(self) -> dict[str, dict[str, Any]]:
        """``group:name`` -> process info, for every configured program."""
        infos = cast(list[dict[str, Any]], self._rpc.supervisor.getAllProcessInfo())
        return {f"{i['group']}:{i['name']}": i for i in infos}

    def shutting_down(self) -> bool:
        """supervisord itself is stopping (container stop, system halt)."""
        try:
            info = cast(dict[str, Any], self._rpc.supervisor.getState())
        except xmlrpc.client.Fault as exc:
            # While it shuts down, supervisord answers most calls with this.
            if exc.faultCode == SHUTDOWN_STATE:
                return True
            raise
        return str(info.get("statename")) == "SHUTDOWN"

    def state(self, name: str) -> str:
        info = cast(dict[str, Any], self._rpc.supervisor.getProcessInfo(name))
        return str(info["statename"])

    def pid(self, name: str) -> int:
        info = cast(dict[str, Any], self._rpc.supervisor.getProcessInfo(name))
        return int(info["pid"])

    def start(self, name: str, wait: bool = False) -> None:
        try:
            self._rpc.supervisor.startProcess(name, wait)
        except xmlrpc.client.Fault as exc:
            if "ALREADY_STARTED" not in exc.faultString:
                raise

    def stop(self, name: str, wait: bool = True) -> None:
        try:
            self._rpc.supervisor.stopProcess(name, wait)
        except xmlrpc.client.Fault as exc:
            if "NOT_RUNNING" not in exc.faultString:
                raise

    def signal(self, name: str, signal: str) -> None:
        self._rpc.supervisor.signalProcess(name, signal)
