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


# keepalived's lines are under 100 bytes; anything longer is not one of them.
MAX_LINE = 4096


class LineBuffer:
    """Whole lines out of arbitrary reads; never more than MAX_LINE bytes held."""

    def __init__(self) -> None:
        self._partial = b""
        self._skipping = False  # inside an over-long line, until its newline
        self.dropped = 0  # over-long lines thrown away

    def feed(self, data: bytes) -> list[str]:
        buf = self._partial + data
        if self._skipping:
            newline = buf.find(b"\n")
            if newline < 0:
                self._partial = b""
                return []
            buf = buf[newline + 1:]
            self._skipping = False
        lines = buf.split(b"\n")
        partial = lines.pop()
        if len(partial) > MAX_LINE:
            partial = b""
            self.dropped += 1
            self._skipping = True
        self._partial = partial
        out = []
        for line in lines:
            if len(line) > MAX_LINE:
                self.dropped += 1
            elif line.strip():
                out.append(line.decode(errors="replace"))
        return out
