"""radvd as a supervised daemon. Light on purpose: supervisord's watchdog imports it."""

from __future__ import annotations

from ...feature import ConfigFile, Daemon, Place, Shown
from ...settings import Settings

NAME = "radvd"
CONF = Place("conf", "radvd.conf")
PID = Place("run", "radvd.pid")


def daemons(s: Settings) -> tuple[Daemon, ...]:
    conf, pid = CONF.of(s), PID.of(s)
    return (Daemon(
        name=NAME,
        subsystem="ra",
        argv=(NAME, "--nodaemon", "--logmethod=stderr_clean", f"--config={conf}",
              f"--pidfile={pid}"),
        # Re-read on SIGHUP (radvd's reload): a tier added or gone costs no
        # restart, and the other tiers' advertisements go on.
        files=(ConfigFile(conf, "reload", checked=True),),
        check=(NAME, "--configtest", "--config={}"),
        reload_signal="HUP",
        start_order=45,
        # On a pair only the master advertises: the tiers' IPv6 gateway is the
        # master's, and two routers advertising would give VMs two default
        # routers (upstream's CsRedundant stops radvd on the backup).
        master_only=True,
        stale=(pid,),
        shown=(Shown(conf, upstream=("/etc/radvd.conf",)),),
    ),)
