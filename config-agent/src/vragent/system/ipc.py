"""The resident agent's own endpoints: the elector's notify FIFO and the
datagram socket commands wake it through."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

from ..errors import VragentError


def own_fifo(path: Path, log: Callable[[str], None]) -> int:
    """The FIFO at ``path``, opened only if it is ours: a FIFO, owned by us,
    mode 0600. Anything else there (a file, a symlink, someone else's FIFO)
    is replaced: what is read from it must come from the elector alone.

    Opened read-write: the writer's exit or restart never gives EOF, and what
    it wrote while nobody read is still there, in order."""
    try:
        st = os.lstat(path)
        if not (stat.S_ISFIFO(st.st_mode) and st.st_uid == os.geteuid()
                and stat.S_IMODE(st.st_mode) & 0o077 == 0):
            log(f"{path}: not our FIFO (mode {stat.filemode(st.st_mode)}, uid "
                f"{st.st_uid}): replacing it")
            path.unlink()
            os.mkfifo(path, 0o600)
    except FileNotFoundError:
        os.mkfifo(path, 0o600)
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW)
    st = os.fstat(fd)
    if not stat.S_ISFIFO(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise VragentError(f"{path}: replaced while being opened")
    return fd


def wake_socket(path: Path) -> socket.socket:
    """A non-blocking datagram socket bound at ``path`` (replacing what was there)."""
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    return sock
