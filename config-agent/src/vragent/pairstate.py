"""The pair state this router reached, persisted so ``vragent state`` can answer.

Below the pair's run time (``ha``): the API and the health checks read it too."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .system.proc import agent_alive

__all__ = ["STATUSES", "HaState", "agent_alive", "status_line"]

STATUSES = ("PRIMARY", "BACKUP", "FAULT", "UNKNOWN")


@dataclass
class HaState:
    status: str = "UNKNOWN"
    previous: str = "UNKNOWN"
    since: float = field(default_factory=time.time)
    reason: str = "not started"
    transitions: int = 0
    dual_master: str = ""  # what showed the peer is master too, while it lasts
    bfd: str = ""  # fast detection: the peer's BFD session, "up" or "down" ("" without)

    def save(self, path: Path) -> None:
        # Imported here: `vragent state` (CloudStack's poll) loads only this module.
        from .store.store import atomic_write

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(asdict(self), sort_keys=True).encode())

    @classmethod
    def load(cls, path: Path) -> HaState:
        try:
            data = json.loads(path.read_text())
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (OSError, ValueError, TypeError, AttributeError):
            return cls()


def status_line(state_file: Path, pid_file: Path) -> str:
    """The line CloudStack's poller reads; UNKNOWN when no agent vouches for it."""
    state = HaState.load(state_file)
    status = state.status if agent_alive(pid_file) else "UNKNOWN"
    return f"Status: {status}"
