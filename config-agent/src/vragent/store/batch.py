"""Reading what the management plane sends: single bags and aggregated batches.

The aggregated file is CloudStack's ``VR_CFG`` format: ``<file>`` blocks (a
path line, then the content) and ``<script>`` blocks (one command line naming
a file written earlier), processed in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BagError

SCRIPTS = ("update_config.py", "vragent")


@dataclass(frozen=True)
class Command:
    source: str  # for messages: "ip_associations.json" or "batch.cfg#3"
    bag: Any


def _decode(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BagError("", [f"{source}: not valid JSON ({exc})"]) from None


def read_commands(path: Path) -> list[Command]:
    text = path.read_text()
    if text.lstrip().startswith(("{", "[")):
        return [Command(path.name, _decode(text, path.name))]
    return parse_batch(text, path.name)


def parse_batch(text: str, source: str) -> list[Command]:
    files: dict[str, str] = {}
    commands: list[Command] = []
    lines = iter(text.splitlines())
    for line in lines:
        tag = line.strip()
        if tag.startswith("#") or not tag:
            continue
        if tag == "<version>":
            for inner in lines:
                if inner.strip() == "</version>":
                    break
        elif tag == "<file>":
            name = Path(next(lines, "").strip()).name
            body = []
            for inner in lines:
                if inner.strip() == "</file>":
                    break
                body.append(inner)
            files[name] = "\n".join(body)
        elif tag == "<script>":
            script = next(lines, "").split()
            for inner in lines:
                if inner.strip() == "</script>":
                    break
            where = f"{source}#{len(commands) + 1}"
            if not script or Path(script[0]).name not in SCRIPTS or len(script) < 2:
                raise BagError("", [f"{where}: unsupported script {' '.join(script)!r}"])
            name = Path(script[-1]).name
            if name not in files:
                raise BagError("", [f"{where}: script refers to {name!r}, no such <file> block"])
            commands.append(Command(f"{source}:{name}", _decode(files[name], name)))
        else:
            raise BagError("", [f"{source}: unexpected line {line[:60]!r}"])
    return commands
