"""Start a pair daemon under supervisord, with its paths from the settings.

A daemon killed with SIGKILL leaves its lock or pid file behind, and both
conntrackd and keepalived refuse to start over one. supervisord guarantees a
single instance per program, so whatever is left when it starts one is stale.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..settings import Settings


def argv_for(name: str, settings: Settings) -> list[str]:
    if name == "conntrackd":
        return ["conntrackd", "-C", str(settings.conntrackd_conf)]
    if name == "keepalived":
        # Line-buffered: its console log goes to supervisord through a pipe.
        return ["stdbuf", "-oL", "-eL", "keepalived", "--dont-fork", "--log-console",
                "--log-detail", "--vrrp", f"--use-file={settings.keepalived_conf}",
                f"--pid={settings.keepalived_pid}",
                f"--vrrp_pid={settings.keepalived_vrrp_pid}"]
    raise ValueError(f"unknown daemon {name!r}: expected conntrackd or keepalived")


def stale_files(name: str, settings: Settings) -> list[Path]:
    if name == "conntrackd":
        return [settings.conntrackd_lock, settings.conntrackd_socket]
    return [settings.keepalived_pid, settings.keepalived_vrrp_pid]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vragent-launch")
    parser.add_argument("--root", default=None)
    parser.add_argument("daemon", choices=["conntrackd", "keepalived"])
    args = parser.parse_args(argv)
    settings = Settings.from_env(args.root)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    for path in stale_files(args.daemon, settings):
        path.unlink(missing_ok=True)
    command = argv_for(args.daemon, settings)
    os.execvp(command[0], command)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
