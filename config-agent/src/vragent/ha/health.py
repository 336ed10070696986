"""keepalived's track_script: is this router fit to be master?

It is not when the resident agent is dead or stuck (its heartbeat is stale)
or when conntrackd, which a takeover needs, does not answer. Kept free of
heavy imports: keepalived runs it every second.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

HEARTBEAT_STALE = 5.0


def problems(root: Path) -> list[str]:
    run = root / "run/vragent"
    found = []
    try:
        age = time.time() - (run / "agent.heartbeat").stat().st_mtime
        if age > HEARTBEAT_STALE:
            found.append(f"agent heartbeat is {age:.1f}s old")
    except OSError:
        found.append("agent is not running (no heartbeat)")
    if (root / "etc/vragent/conntrackd.conf").exists():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            try:
                sock.connect(str(run / "conntrackd.sock"))
            except OSError as exc:
                found.append(f"conntrackd does not answer ({exc.strerror or exc})")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vragent-health")
    parser.add_argument("--root", default=os.environ.get("VRAGENT_ROOT", "/"))
    args = parser.parse_args(argv)
    found = problems(Path(args.root))
    for problem in found:
        print(f"vragent-health: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
