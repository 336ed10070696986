"""Does a unix stream socket accept connections?"""

from __future__ import annotations

import socket
from pathlib import Path


def accepts(path: Path, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True
