"""supervisord's program list, from the daemons the features declare.

``services/supervisord.conf`` runs the resident agent and includes
``etc/vragent/supervisor.d/*.conf``; one ``[program:…]`` per declared daemon
is written there before supervisord starts (``vragent-init`` in the image,
``vragent programs`` in the labs), so adding a daemon is its feature's
business alone. Each is started by ``vragent-launch`` (its paths from the
settings) when the agent says so, never by supervisord itself.
"""

from __future__ import annotations

from pathlib import Path

from .feature import Daemon
from .settings import Settings
from .store.store import atomic_write
from .supervised import registry

ROOT = "%(ENV_VRAGENT_ROOT)s"


def section(d: Daemon) -> str:
    # supervisord's priority orders its own starts and stops (from the
    # highest down at shutdown): the start order the feature declares.
    return (f"[program:{d.name}]\n"
            f"command=vragent-launch --root {ROOT} {d.name}\n"
            f"priority={d.start_order}\n"
            "autostart=false\n"
            "autorestart=true\n"
            "startsecs=0\n"
            f"stopsignal={d.stop_signal}\n"
            f"stopwaitsecs={d.stop_wait}\n"
            "redirect_stderr=true\n"
            f"stdout_logfile={ROOT}/var/log/vragent/{d.name}.log\n"
            "stdout_logfile_maxbytes=10MB\n")


def directory(s: Settings) -> Path:
    return s.conf_dir / "supervisor.d"


def write(s: Settings) -> list[str]:
    """One file per declared daemon; files of daemons no longer declared are
    removed. Returns the names written or removed."""
    where = directory(s)
    where.mkdir(parents=True, exist_ok=True)
    wanted = {f"{d.name}.conf": section(d) for d in registry(s)}
    changed = []
    for path in where.glob("*.conf"):
        if path.name not in wanted:
            path.unlink()
            changed.append(f"{path.name} removed")
    for name, text in wanted.items():
        path = where / name
        if not path.exists() or path.read_text() != text:
            atomic_write(path, text.encode(), 0o644)
            changed.append(f"{name} written")
    return changed
