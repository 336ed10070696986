"""dnsmasq as a supervised daemon. Light on purpose: supervisord's watchdog imports it."""

from __future__ import annotations

from ...feature import ConfigFile, Daemon, Place, Shown
from ...settings import Settings
from ...system import dnsmasq

NAME = "dnsmasq"
CONF = Place("conf", "dnsmasq.conf")
# Static leases (dhcp-hostsfile) and VM names (addn-hosts): re-read on SIGHUP.
HOSTS = Place("conf", "dnsmasq.dhcp-hosts")
NAMES = Place("conf", "dnsmasq.hosts")
# Persistent: a restarted dnsmasq (or router) keeps every lease it gave.
LEASES = Place("state", "dnsmasq.leases")
PID = Place("run", "dnsmasq.pid")


def paths(s: Settings) -> dnsmasq.Paths:
    return dnsmasq.Paths(conf=CONF.of(s), hosts=HOSTS.of(s), leases=LEASES.of(s))


def prune(s: Settings, running: bool) -> list[str]:
    return dnsmasq.prune(paths(s), running)


def daemons(s: Settings) -> tuple[Daemon, ...]:
    conf, pid = CONF.of(s), PID.of(s)
    return (Daemon(
        name=NAME,
        subsystem="dhcp",
        argv=(NAME, "--keep-in-foreground", "--log-facility=-", f"--conf-file={conf}",
              f"--pid-file={pid}"),
        files=(
            # Interfaces, ranges and domains: dnsmasq reads them only at start.
            ConfigFile(conf, "restart", checked=True),
            # Hosts and names: re-read on SIGHUP, so entries cost no restart.
            ConfigFile(HOSTS.of(s)),
            ConfigFile(NAMES.of(s)),
        ),
        # Its optional-argument options take "=value" only.
        check=(NAME, "--test", "--conf-file={}"),
        start_order=40,
        master_only=True,
        stale=(pid,),
        prune=prune,
        # Where upstream's router keeps the same (CsDhcp: cloud.conf, the
        # hosts file dnsmasq serves names from, the leases).
        shown=(Shown(conf, upstream=("/etc/dnsmasq.conf", "/etc/dnsmasq.d/cloud.conf")),
               Shown(HOSTS.of(s), upstream=("/etc/dhcphosts.txt",)),
               Shown(NAMES.of(s), upstream=("/etc/hosts",)),
               Shown(LEASES.of(s), upstream=("/var/lib/misc/dnsmasq.leases",))),
    ),)
