"""The public IPs the management server asked this router to account
(``vpc_netusage.sh -c -l <ip> -v <vpc cidr>``), kept across crashes and
reboots: one JSON file in the state directory, replaced atomically (temp
file, fsync, rename, fsync of the directory) under a lock, so two calls at
once lose neither's change and a crash leaves the old file or the new one."""

from __future__ import annotations

import json
from collections.abc import Callable

from ...feature import Place
from ...settings import Settings

FILE = Place("state", "usage.json")
LOCK = Place("run", "usage.lock")


def _read(settings: Settings) -> dict[str, str]:
    try:
        data = json.loads(FILE.of(settings).read_text())
    except (OSError, ValueError):
        return {}
    created = data.get("created") if isinstance(data, dict) else None
    if not isinstance(created, dict):
        return {}
    return {str(k): str(v) for k, v in created.items()}


def load(settings: Settings) -> dict[str, str]:
    """Public IP -> VPC CIDR ("" when none was given)."""
    return _read(settings)


def update(settings: Settings, change: Callable[[dict[str, str]], dict[str, str]]) -> None:
    from ...store import atomic_write
    from ...system.filelock import locked

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with locked(LOCK.of(settings)):
        before = _read(settings)
        after = change(before)
        if after != before or not FILE.of(settings).exists():
            atomic_write(FILE.of(settings),
                         json.dumps({"created": after}, indent=1, sort_keys=True).encode(),
                         0o644)
