"""Reading what the management plane sends: single bags and aggregated batches.

The aggregated file is CloudStack's ``VR_CFG`` format: ``<file>`` blocks (a
path line, then the content) and ``<script>`` blocks (one command line naming
a file written earlier), processed in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BagError
from ..models.limits import MAX_COMMANDS, MAX_FILE_BYTES, escape, load_json

SCRIPTS = ("update_config.py", "vragent")
# configure.py <file> follows a bag to re-converge (SetMonitorServiceConfigItem
# with reconfigure): here every bag converges the box when it is applied.
CONVERGE = ("configure.py",)


@dataclass(frozen=True)
class Command:
    source: str  # for messages: "ip_associations.json" or "batch.cfg#3"
    bag: Any


def _decode(text: str, source: str) -> Any:
    return load_json(text.encode(), source)


def read_commands(path: Path) -> list[Command]:
    return commands_from_bytes(read_limited(path), path.name)


def commands_from_bytes(data: bytes, source: str,
                        names: list[str] | None = None) -> list[Command]:
    """The commands in one file's bytes: a bag (a JSON object), a list of bags
    (a JSON array, as the API takes a batch; ``names`` its items' sources, as
    when the CLI sends several files), or an aggregated batch file."""
    if len(data) > MAX_FILE_BYTES:
        raise BagError("", [f"{source}: more than the limit of {MAX_FILE_BYTES} bytes"])
    head = data.lstrip()[:1]
    if head == b"{":
        return [Command(source, load_json(data, source, MAX_FILE_BYTES))]
    if head == b"[":
        bags = load_json(data, source, MAX_FILE_BYTES)
        if len(bags) > MAX_COMMANDS:
            raise BagError("", [f"{source}: more than {MAX_COMMANDS} commands"])
        if names is not None and len(names) == len(bags):
            return [Command(name, bag) for name, bag in zip(names, bags, strict=True)]
        return [Command(f"{source}#{i + 1}", bag) for i, bag in enumerate(bags)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BagError("", [f"{source}: not valid UTF-8 (byte {exc.start})"]) from None
    return parse_batch(text, source)


def read_limited(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes, refusing one larger than ``limit`` before reading it."""
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise BagError("", [f"{path.name}: more than the limit of {limit} bytes"])
    return data


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
            if script and Path(script[0]).name in CONVERGE:
                continue  # every command converges the box already
            if not script or Path(script[0]).name not in SCRIPTS or len(script) < 2:
                raise BagError("", [f"{where}: unsupported script {escape(' '.join(script))}"])
            # update_config.py <file> [false] ("false": do not keep the file);
            # vragent apply <file>.
            name = Path(script[1] if Path(script[0]).name == "update_config.py"
                        else script[-1]).name
            if name not in files:
                raise BagError("", [f"{where}: script refers to {escape(name)}, no such <file> "
                                    f"block"])
            commands.append(Command(f"{source}:{name}", _decode(files[name], name)))
            if len(commands) > MAX_COMMANDS:
                raise BagError("", [f"{source}: more than {MAX_COMMANDS} commands"])
        else:
            raise BagError("", [f"{source}: unexpected line {escape(line, 60)}"])
    return commands
