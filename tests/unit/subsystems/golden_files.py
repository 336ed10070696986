"""Golden files: rendered output compared with a reviewed copy.

Run with VRAGENT_UPDATE_GOLDEN=1 to rewrite them after an intended change, then
read the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"


def updating() -> bool:
    return os.environ.get("VRAGENT_UPDATE_GOLDEN") == "1"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if updating():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if not path.exists():
        pytest.fail(f"{path} is missing: run with VRAGENT_UPDATE_GOLDEN=1 to create it")
    expected = path.read_text()
    assert text == expected, (
        f"{name} differs from its golden file; if the change is intended, rerun with "
        "VRAGENT_UPDATE_GOLDEN=1 and review the diff"
    )
