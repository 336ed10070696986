"""What a system VM's boot (systemvm.py) changes on its own system: root's
authorized keys, the host name, sshd."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from ..store import atomic_write


class BootError(OSError):
    """A boot step's system change failed (the message names it)."""


def install_authorized_keys(path: Path, keys: str) -> None:
    # sshd's StrictModes: the directory and the file belong to root, private.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    atomic_write(path, keys.encode(), 0o600)


def set_hostname(path: Path, name: str) -> None:
    atomic_write(path, f"{name}\n".encode(), 0o644)
    try:
        socket.sethostname(name)
    except OSError as exc:
        raise BootError(f"hostname {name}: {exc.strerror}") from None


def _run(argv: list[str]) -> None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BootError(f"{argv[0]}: {exc}") from None
    if proc.returncode != 0:
        raise BootError(f"{' '.join(argv)}: exit {proc.returncode}: "
                        f"{(proc.stderr or proc.stdout).strip()}")


# Host key types: Ed25519 and ECDSA take a moment to make; RSA (ssh-keygen -A
# makes 3072 bits) takes 20 s on an emulated CPU, and every client the
# management server has used (trilead-ssh2, JSch) takes ECDSA.
HOST_KEYS: tuple[tuple[str, list[str]], ...] = (("ed25519", []), ("ecdsa", ["-b", "256"]))


def start_sshd(ssh_dir: Path = Path("/etc/ssh")) -> None:
    """Host keys first (the image ships none: each VM makes its own on its
    first boot), then sshd, which reads its listening addresses now."""
    for kind, opts in HOST_KEYS:
        key = ssh_dir / f"ssh_host_{kind}_key"
        if not key.exists():
            _run(["ssh-keygen", "-q", "-t", kind, *opts, "-N", "", "-C", "", "-f", str(key)])
    _run(["systemctl", "restart", "ssh.service"])
