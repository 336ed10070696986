"""haproxy as a supervised daemon, in master-worker mode. Light on purpose:
supervisord's watchdog imports it.

``-W -db``: the master stays in the foreground under supervisord, and a
reload (SIGUSR2 to the master) starts a new worker on the new file that
takes the old worker's listening sockets over its socket pair (haproxy
2.6's management.txt: "the master will use [-x] upon a reload with the
sockpair@ syntax"), while the old worker finishes its connections: neither
in-flight nor new connections are dropped. Before each reload the servers'
state and the counters are saved (``system.haproxy.save``), and the new
worker loads the state (``load-server-state-from-file``): a server its
health check took down stays down, one an operator disabled stays
disabled, and the figures carry on (upstream's reload resets them, #6849).
"""

from __future__ import annotations

import re

from ...feature import REDACTED, ConfigFile, Daemon, Place, Shown
from ...settings import Settings
from ...system import haproxy

NAME = "haproxy"
CONF = Place("conf", "haproxy.cfg")
# The worker's admin socket (root-only): statistics, server state.
# Unix socket names stay short: a socket's path must fit sun_path (108
# bytes), and haproxy binds "<path>.<pid>.tmp" first.
SOCKET = Place("run", "hap.sock")
# Saved before every reload, loaded by the new worker.
SERVER_STATE = Place("state", "haproxy.servers")
# The counters of workers a reload retired, added to the live ones.
COUNTERS = Place("state", "haproxy.counters.json")
# The master CLI (root-only): reaches every worker, a retiring one too.
MASTER = Place("run", "hap-m.sock")
# The agent's connection here keeps a retiring worker until its figures are read.
HOLD = Place("run", "hap-h.sock")
# Root-only: one PEM (certificate, chain, key) per offloaded rule, named by digest.
CERTS = Place("conf", "haproxy-certs")
# The statistics page's credentials: "stats auth <user>:'<password>'".
_AUTH = re.compile(r"^(\s*stats\s+auth\s+)(?:([A-Za-z0-9_.@-]+:))?.*$", re.MULTILINE)


def shown(text: str) -> str:
    """haproxy.cfg as an operator may see it: no statistics password (the
    certificates' keys are files of their own, never shown)."""
    return _AUTH.sub(lambda m: m.group(1) + (m.group(2) or "") + REDACTED, text)


def paths(s: Settings) -> haproxy.Paths:
    return haproxy.Paths(socket=SOCKET.of(s), server_state=SERVER_STATE.of(s),
                         counters=COUNTERS.of(s), master=MASTER.of(s), hold=HOLD.of(s))


def save(s: Settings) -> list[str]:
    return haproxy.save(paths(s))


def daemons(s: Settings) -> tuple[Daemon, ...]:
    conf = CONF.of(s)
    return (Daemon(
        name=NAME,
        subsystem="loadbalancer",
        argv=(NAME, "-W", "-db", "-f", str(conf), "-S", f"{MASTER.of(s)},mode,600"),
        # Every change is a hitless reload, the global section included.
        files=(ConfigFile(conf, "reload", checked=True, mode=0o600),),
        check=(NAME, "-c", "-f", "{}"),
        reload_signal="USR2",
        before_reload=save,
        start_order=50,
        # Both routers of a pair run it, bound to the public VIPs whether
        # they hold them or not ("transparent" binds): a failover moves the
        # traffic with the addresses.
        master_only=False,
        stale=(SOCKET.of(s), MASTER.of(s), HOLD.of(s)),
        # SIGUSR1: the master lets its workers finish their connections.
        stop_signal="USR1",
        stop_wait=10,
        shown=(Shown(conf, upstream=("/etc/haproxy/haproxy.cfg",), redact=shown),),
    ),)
