"""Running system commands: always argument lists, never a shell."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from ..errors import ApplyError


def run(argv: list[str], stdin: str | None = None, check: bool = True) -> str:
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise ApplyError(f"{argv[0]}: command not found (is it installed?)") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise ApplyError(f"{' '.join(argv[:6])}: exit {proc.returncode}: {detail}")
    return proc.stdout


def run_json(argv: list[str]) -> Any:
    out = run(argv)
    return json.loads(out) if out.strip() else []
