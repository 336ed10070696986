"""What the diagnostics entry points need of the system (diagnostics.py,
get_diagnostics_files.py, cleanup.sh): a network tool run for a bounded
time, a command's output, a file only as far as any local user could read
it, the zip written crash-safely, and removed.

Everything runs as an argument list, never through a shell.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

# A file larger than this is cut (its head kept) in the zip.
MAX_FILE = 16 * 1024 * 1024


@dataclass(frozen=True)
class Ran:
    stdout: str
    stderr: str
    code: int
    # The time budget ran out: the tool was interrupted (what it printed is kept).
    stopped: bool = False


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def run_tool(argv: list[str], budget: float) -> Ran:
    """Run ``argv`` for at most ``budget`` seconds. Past it, SIGINT (ping and
    arping print their summary on it), then SIGKILL 2 s later, each to the
    tool's whole process group (a child left holding its output would keep
    the answer waiting). A signal's exit code is 128 + its number, as a
    shell reports it. FileNotFoundError when the tool is not installed."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=_interruptible)
    stopped = False
    try:
        out, err = proc.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        stopped = True
        _signal_group(proc.pid, signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=2)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
    code = proc.returncode
    return Ran(_text(out), _text(err), 128 - code if code < 0 else code, stopped)


def _interruptible() -> None:
    # A caller started in the background (nohup, a job of a non-interactive
    # shell) passes SIGINT on ignored, and the tool would then sit out the
    # interrupt that asks it for its summary until the SIGKILL.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def output(argv: list[str], timeout: float = 30.0) -> str:
    """What ``argv`` printed: its output, or its error output when it failed
    (upstream's execute_shell_script), or why it did not run."""
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        return f"{argv[0]}: not installed on this router\n"
    except subprocess.TimeoutExpired:
        return f"{' '.join(argv)}: no answer within {timeout:g} s\n"
    return _text(proc.stdout if proc.returncode == 0 else proc.stderr)


class NotShared(Exception):
    """A file diagnostics do not give (the reason is the message)."""


def shareable(path: Path, root: Path) -> Path:
    """``path`` (under the router's ``root``) resolved, if any local user of
    the router could read it: a regular file readable by others, every
    directory above it (from ``root`` down) searchable by others. What a
    system keeps secret it keeps from other users (shadow, private keys,
    root's home), so that is never given. ``NotShared`` otherwise."""
    real = Path(os.path.realpath(path))
    base = Path(os.path.realpath(root))
    if real != base and base not in real.parents:
        raise NotShared("outside the router's filesystem")
    try:
        st = os.stat(real)
    except FileNotFoundError:
        raise FileNotFoundError(str(path)) from None
    if not stat.S_ISREG(st.st_mode):
        raise NotShared("not a regular file")
    if not st.st_mode & stat.S_IROTH:
        raise NotShared("readable by its owner only")
    for parent in real.parents:
        if parent == base.parent:
            break
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            raise NotShared(f"{parent} is closed to other users")
    return real


def read(path: Path, limit: int = MAX_FILE, tail: bool = False) -> bytes:
    """At most ``limit`` bytes of the regular file ``path``, its last ones with
    ``tail`` (a log's latest); a FIFO or a device is refused before anything
    blocks on it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotShared("not a regular file")
        if tail and st.st_size > limit:
            os.lseek(fd, st.st_size - limit, os.SEEK_SET)
        chunks: list[bytes] = []
        left = limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_zip(path: Path, members: list[tuple[str, bytes]]) -> None:
    """Write the zip at ``path``, which must not exist (FileExistsError): to a
    temporary file, flushed, then linked into place, so that ``path`` is
    either absent or whole, and never replaces another file. Root-only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as zf:
                for name, data in members:
                    zf.writestr(name, data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def regular_file(path: Path) -> bool:
    """``path`` is a regular file itself (not a link to one)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def remove(path: Path) -> None:
    path.unlink()
