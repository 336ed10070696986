"""Is this router fit to be master?

It is not when the resident agent is dead or stuck (its heartbeat is stale)
or when conntrackd, which a takeover needs, does not answer. supervisord's
watchdog (``watchdog``) asks on its tick, inside supervisord: keep the imports
light. ``vragent-health`` prints the same verdict for an operator.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import time

from ..settings import Settings

HEARTBEAT_STALE = 5.0
# How long conntrackd may take to answer after the agent started it.
STARTUP_GRACE = 5.0
# How long conntrackd may take to answer a request (it runs in supervisord's loop).
ANSWER_TIMEOUT = 0.5


def problems(settings: Settings) -> list[str]:
    found = []
    try:
        age = time.time() - settings.agent_heartbeat.stat().st_mtime
        if age > HEARTBEAT_STALE:
            found.append(f"agent heartbeat is {age:.1f}s old")
    except OSError:
        found.append("agent is not running (no heartbeat)")
    # Only once the agent has started it, and given time to come up: a tier
    # that brings conntrackd's first configuration (and with it dnsmasq and
    # the metadata service, all starting at once on a busy host) must not take
    # the master down before conntrackd runs.
    try:
        started_age = time.time() - settings.conntrackd_started.stat().st_mtime
    except OSError:
        started_age = -1.0
    if settings.conntrackd_conf.exists() and started_age > STARTUP_GRACE:
        why = conntrackd_answers(settings)
        if why:
            found.append(f"conntrackd does not answer ({why})")
    return found


# conntrack-tools' include/conntrackd.h: the request `conntrackd -s runtime` sends.
STATS_RUNTIME = 30


def conntrackd_answers(settings: Settings, timeout: float = ANSWER_TIMEOUT) -> str:
    """"" when conntrackd answers a request on its control socket, else why
    not. A connect alone is not enough: the kernel completes it for a stuck
    (stopped, deadlocked) daemon too."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(settings.conntrackd_socket))
            sock.sendall(struct.pack("=i", STATS_RUNTIME))
            if not sock.recv(64):
                return "it closed the connection without a word"
        except TimeoutError:
            return f"no reply within {timeout:g} s"
        except OSError as exc:
            return str(exc.strerror or exc)
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vragent-health")
    parser.add_argument("--root", default=None)
    args = parser.parse_args(argv)
    found = problems(Settings.from_env(args.root))
    for problem in found:
        print(f"vragent-health: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
