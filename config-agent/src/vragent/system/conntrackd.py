"""conntrackd's control socket: does it answer?"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

# conntrack-tools' include/conntrackd.h: the request `conntrackd -s runtime` sends.
STATS_RUNTIME = 30
# How long conntrackd may take to answer a request (it runs in supervisord's loop).
ANSWER_TIMEOUT = 0.5


def answers(path: Path, timeout: float = ANSWER_TIMEOUT) -> str:
    """"" when conntrackd answers a request on its control socket, else why
    not. A connect alone is not enough: the kernel completes it for a stuck
    (stopped, deadlocked) daemon too."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(struct.pack("=i", STATS_RUNTIME))
            if not sock.recv(64):
                return "it closed the connection without a word"
        except TimeoutError:
            return f"no reply within {timeout:g} s"
        except OSError as exc:
            return str(exc.strerror or exc)
    return ""
