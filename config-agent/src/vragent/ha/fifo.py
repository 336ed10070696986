"""keepalived's notify FIFO: one line per event, in the order they happened.

A line reads ``INSTANCE "vpc" MASTER 100`` (kind, quoted name, state,
priority). Lines may arrive split across reads; ``LineBuffer`` reassembles
them so no event is lost or merged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE = re.compile(r'^(INSTANCE|GROUP|VS|RS|MONITOR)\s+"([^"]*)"\s+(\S+)(?:\s+(\d+))?\s*$',
                   re.ASCII)

# keepalived's states, as CloudStack's management server names them.
STATUS = {
    "MASTER": "PRIMARY",
    "BACKUP": "BACKUP",
    "FAULT": "FAULT",
    "STOP": "UNKNOWN",
    "DELETED": "UNKNOWN",
}


@dataclass(frozen=True)
class Event:
    kind: str
    name: str
    state: str
    priority: int | None

    @property
    def status(self) -> str | None:
        """PRIMARY/BACKUP/FAULT/UNKNOWN, or None for events that are not transitions."""
        return STATUS.get(self.state) if self.kind == "INSTANCE" else None


def parse(line: str) -> Event | None:
    match = _LINE.match(line.strip())
    if not match:
        return None
    kind, name, state, prio = match.groups()
    return Event(kind, name, state, int(prio) if prio is not None else None)


class LineBuffer:
    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[str]:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        return [line.decode(errors="replace") for line in lines if line.strip()]
