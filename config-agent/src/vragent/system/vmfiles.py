"""The files the metadata service serves from: one per VM, and the passwords.

Rewriting thousands of VM files on every command would be a per-entry cost:
the digest of each VM's data as last written is kept in the run directory, so
only VMs whose data changed are touched.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..settings import Settings
from ..store.store import atomic_write


def _index_path(settings: Settings) -> Path:
    return settings.run_dir / "vmdata.applied.json"


def _load_index(settings: Settings) -> dict[str, str]:
    try:
        data = json.loads(_index_path(settings).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def vm_file(settings: Settings, ip: str) -> Path:
    return settings.vmdata_dir / f"{ip}.json"


def sync_vms(settings: Settings, vms: dict[str, str], dry_run: bool = False) -> list[str]:
    """Make the VM files hold ``vms`` (address -> JSON); returns what changed."""
    want = {ip: hashlib.sha256(text.encode()).hexdigest() for ip, text in vms.items()}
    index = _load_index(settings)
    on_disk = {p.stem for p in settings.vmdata_dir.glob("*.json")} \
        if settings.vmdata_dir.is_dir() else set()
    changes: list[str] = []
    for ip in sorted(on_disk - set(want)):
        changes.append(f"vm {ip} data removed")
        if not dry_run:
            vm_file(settings, ip).unlink(missing_ok=True)
    for ip, digest in sorted(want.items()):
        if index.get(ip) == digest and ip in on_disk:
            continue
        changes.append(f"vm {ip} data written")
        if not dry_run:
            settings.vmdata_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(vm_file(settings, ip), vms[ip].encode())
    if not dry_run and (changes or index != want):
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(_index_path(settings), json.dumps(want).encode())
    return changes


def sync_passwords(settings: Settings, passwords: dict[str, str], dry_run: bool = False) -> bool:
    """Root-only from the first byte (atomic_write creates 0600). True if it changed."""
    text = json.dumps(passwords, sort_keys=True) if passwords else ""
    path = settings.passwords_file
    current = path.read_text() if path.exists() else ""
    if text == current:
        return False
    if not dry_run:
        if text:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, text.encode())
        else:
            path.unlink()
    return True
