"""Running system commands: always argument lists, never a shell."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from typing import Any

from ..errors import ApplyError

# The store lock's descriptor while a command holds it. Every child gets a copy,
# so if the agent is killed mid-command, the lock stays held until its last
# `ip` or `nft` has finished: the next command cannot overtake them.
_held: tuple[int, ...] = ()


@contextlib.contextmanager
def children_hold(fd: int) -> Iterator[None]:
    global _held
    previous, _held = _held, (*_held, fd)
    try:
        yield
    finally:
        _held = previous


def spawn(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False,
                              pass_fds=_held)
    except FileNotFoundError:
        raise ApplyError(f"{argv[0]}: command not found (is it installed?)") from None


def run(argv: list[str], stdin: str | None = None, check: bool = True) -> str:
    proc = spawn(argv, stdin)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise ApplyError(f"{' '.join(argv[:6])}: exit {proc.returncode}: {detail}")
    return proc.stdout


def run_json(argv: list[str]) -> Any:
    out = run(argv)
    return json.loads(out) if out.strip() else []


def run_json_batch(argv: list[str], commands: list[str]) -> list[Any]:
    """One process for several read commands (``ip -json -batch -``): each
    command's JSON document, in order."""
    out = run([*argv, "-batch", "-"], "\n".join(commands) + "\n")
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    pos = 0
    while True:
        while pos < len(out) and out[pos].isspace():
            pos += 1
        if pos >= len(out):
            break
        doc, pos = decoder.raw_decode(out, pos)
        docs.append(doc)
    if len(docs) != len(commands):
        raise ApplyError(f"{' '.join(argv[:3])} -batch: {len(docs)} answers to "
                         f"{len(commands)} commands")
    return docs
