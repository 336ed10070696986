"""keepalived as a supervised daemon. Light on purpose: supervisord's watchdog imports it."""

from __future__ import annotations

import re

from ...feature import REDACTED, ConfigFile, Daemon, Place, Shown
from ...settings import Settings

NAME = "keepalived"
CONF = Place("conf", "keepalived.conf")
PID = Place("run", "keepalived.pid")
VRRP_PID = Place("run", "keepalived_vrrp.pid")
BFD_PID = Place("run", "keepalived_bfd.pid")
# VRRPv2's simple authentication: the router password's first 8 characters.
_AUTH = re.compile(r"^(\s*auth_pass\s+)\S.*$", re.MULTILINE)


def shown(text: str) -> str:
    """keepalived.conf as an operator may see it: no authentication password."""
    return _AUTH.sub(lambda m: m.group(1) + REDACTED, text)


def daemons(s: Settings) -> tuple[Daemon, ...]:
    conf, pid, vrrp_pid, bfd_pid = (p.of(s) for p in (CONF, PID, VRRP_PID, BFD_PID))
    return (Daemon(
        name=NAME,
        subsystem="vrrp",
        # Line-buffered: its console log goes to supervisord through a pipe.
        argv=("stdbuf", "-oL", "-eL", NAME, "--dont-fork", "--log-console",
              "--log-detail", f"--use-file={conf}", f"--pid={pid}",
              f"--vrrp_pid={vrrp_pid}", f"--bfd_pid={bfd_pid}"),
        files=(ConfigFile(conf, "reload", checked=True, mode=0o600),),
        check=(NAME, "--config-test", "--use-file"),
        start_order=30,
        # Every reload re-sends adverts and re-runs scripts: a burst of
        # commands must not turn into a burst of reloads.
        reload_spacing_adverts=s.reload_spacing_adverts,
        # It waits for every daemon with steps for becoming primary (a
        # takeover always has a state cache to commit): see supervised.registry.
        stale=(pid, vrrp_pid, bfd_pid),
        owns_addresses=True,
        # Adverts and BFD late because the host is busy are false elections.
        realtime=(vrrp_pid, bfd_pid),
        # It gives up its addresses and sends a priority-0 advert on TERM.
        stop_signal="TERM",
        stop_wait=10,
        shown=(Shown(conf, upstream=("/etc/keepalived/keepalived.conf",), redact=shown),),
    ),)
