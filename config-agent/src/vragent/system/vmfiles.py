"""The files the metadata service serves from: one per VM, and the passwords.

Rewriting thousands of VM files on every command would be a per-entry cost:
the digest of each VM's data as last written is kept in the run directory, so
only VMs whose data changed are touched.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..store.store import atomic_write


def _load_index(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def vm_file(directory: Path, ip: str) -> Path:
    return directory / f"{ip}.json"


def sync_vms(directory: Path, index_file: Path, vms: dict[str, str],
             dry_run: bool = False) -> list[str]:
    """Make the VM files in ``directory`` hold ``vms`` (address -> JSON); returns
    what changed. ``index_file`` (in the run directory) keeps what was written."""
    want = {ip: hashlib.sha256(text.encode()).hexdigest() for ip, text in vms.items()}
    index = _load_index(index_file)
    on_disk = {p.stem for p in directory.glob("*.json")} \
        if directory.is_dir() else set()
    changes: list[str] = []
    for ip in sorted(on_disk - set(want)):
        changes.append(f"vm {ip} data removed")
        if not dry_run:
            vm_file(directory, ip).unlink(missing_ok=True)
    for ip, digest in sorted(want.items()):
        if index.get(ip) == digest and ip in on_disk:
            continue
        changes.append(f"vm {ip} data written")
        if not dry_run:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(vm_file(directory, ip), vms[ip].encode())
    if not dry_run and (changes or index != want):
        index_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(index_file, json.dumps(want).encode())
    return changes


def sync_passwords(path: Path, passwords: dict[str, str], dry_run: bool = False) -> bool:
    """Root-only from the first byte (atomic_write creates 0600). True if it changed."""
    text = json.dumps(passwords, sort_keys=True) if passwords else ""
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
