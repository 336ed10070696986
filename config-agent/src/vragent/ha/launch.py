"""Start a supervised daemon, with its paths from the settings (``supervised``).

A daemon killed with SIGKILL leaves its lock or pid file behind, and
conntrackd, keepalived and dnsmasq all refuse to start over one. supervisord
guarantees a single instance per program, so whatever is left when it starts
one is stale.
"""

from __future__ import annotations

import argparse
import sys

from ..settings import Settings
from ..store.store import private_dir
from ..supervised import registry
from ..system import proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vragent-launch")
    parser.add_argument("--root", default=None)
    parser.add_argument("daemon", choices=[d.name for d in registry(Settings())])
    args = parser.parse_args(argv)
    settings = Settings.from_env(args.root)
    private_dir(settings.run_dir)
    daemon = registry(settings).get(args.daemon)
    for path in daemon.stale:
        path.unlink(missing_ok=True)
    proc.become(list(daemon.argv))


if __name__ == "__main__":
    sys.exit(main())
