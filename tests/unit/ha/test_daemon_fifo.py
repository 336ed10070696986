"""The resident agent opens keepalived's notify FIFO only if it is its own."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from vragent.ha.daemon import Daemon
from vragent.settings import Settings


@pytest.mark.parametrize("plant", ["file", "symlink", "open-fifo", "none"])
def test_fifo_replaced_unless_ours(tmp_path: Path, plant: str) -> None:
    s = Settings(root=tmp_path)
    s.run_dir.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    if plant == "file":
        s.notify_fifo.write_text("not a fifo")
    elif plant == "symlink":
        s.notify_fifo.symlink_to(victim)
    elif plant == "open-fifo":
        os.mkfifo(s.notify_fifo, 0o666)
        os.chmod(s.notify_fifo, 0o666)  # whatever the umask: writable by anyone
    fd = Daemon(s)._open_fifo()
    try:
        st = os.lstat(s.notify_fifo)
        assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert stat.S_ISFIFO(os.fstat(fd).st_mode)
        assert victim.read_text() == "keep"
    finally:
        os.close(fd)
