"""FRR's zebra and bgpd as supervised daemons. Light on purpose: supervisord's
watchdog imports it.

FRR's own init scripts (frrinit.sh, watchfrr) are not used: supervisord runs
each daemon in the foreground, as it runs every other. Every path is the
router's own (the settings' directories), never the host's /etc/frr or
/var/run/frr: the configuration directory (``--config_dir`` for vtysh,
``--confdir`` for frr-reload.py), the vty sockets (``--vty_socket``), zebra's
API socket (``-z``) and the pid files (``-i``). No TCP vty (``-P 0``).

Each daemon starts on its own part of the integrated frr.conf (zebra.conf,
bgpd.conf, written with it), and every later change reaches the running
daemons through ``frr-reload.py --reload`` on frr.conf, which applies only
the difference to the running configuration: bgpd is never restarted, so
the sessions of peers that did not change stay up (upstream's
CsBgpPeers.py runs ``systemctl restart frr`` on every change).

The daemons run as root in group frrvty (``-u root -g frrvty``): the files
hold the peers' passwords and are root-only (0600), and FRR refuses a user
outside its vty group.

On a pair, bgpd runs on the master only: the IPv4 sessions' source and the
router id are the source-NAT address, the IPv6 sessions' source router_ip6,
which only the master holds (tests/integration/ha/test_pair_bgp.py).
"""

from __future__ import annotations

from ...feature import REDACTED, ConfigFile, Daemon, Place, Shown
from ...settings import Settings

ZEBRA = "zebra"
BGPD = "bgpd"
BINDIR = "/usr/lib/frr"
# The router's FRR configuration directory: frr.conf (integrated, what
# frr-reload.py applies), the daemons' start files, vtysh.conf.
CONF_DIR = Place("conf", "frr")
FRR_CONF = Place("conf", "frr/frr.conf")
BGPD_CONF = Place("conf", "frr/bgpd.conf")
ZEBRA_CONF = Place("conf", "frr/zebra.conf")
VTYSH_CONF = Place("conf", "frr/vtysh.conf")
# Vty sockets, zebra's API socket, pid files, frr-reload.py's temporary files.
RUN_DIR = Place("run", "frr")
ZSERV = Place("run", "frr/zserv.api")
ZEBRA_VTY = Place("run", "frr/zebra.vty")
BGPD_VTY = Place("run", "frr/bgpd.vty")
ZEBRA_PID = Place("run", "frr/zebra.pid")
BGPD_PID = Place("run", "frr/bgpd.pid")
COMMON = ("-u", "root", "-g", "frrvty", "-P", "0", "--log", "stdout")


def shown(text: str) -> str:
    """frr.conf as an operator may see it: no peer's password."""
    out = []
    for line in text.splitlines(keepends=True):
        words = line.split()
        if len(words) >= 3 and words[0] == "neighbor" and words[2] == "password":
            indent = line[:len(line) - len(line.lstrip())]
            line = f"{indent}neighbor {words[1]} password {REDACTED}\n"
        out.append(line)
    return "".join(out)


def reload_argv(s: Settings) -> tuple[str, ...]:
    """frr-reload.py on the router's frr.conf, against the router's daemons.
    ``--stdout``: it would otherwise log to the host's /var/log/frr.
    ``--log-level critical``: its messages quote the commands it runs, the
    peers' passwords among them, and the agent logs a failed reload's output;
    a failure still shows as its exit status."""
    return ("/usr/bin/python3", f"{BINDIR}/frr-reload.py", "--reload", "--stdout",
            "--log-level", "critical",
            "--bindir", "/usr/bin", "--confdir", str(CONF_DIR.of(s)),
            "--rundir", str(RUN_DIR.of(s)), "--vty_socket", str(RUN_DIR.of(s)),
            str(FRR_CONF.of(s)))


def daemons(s: Settings) -> tuple[Daemon, ...]:
    run = str(RUN_DIR.of(s))
    check = ("vtysh", "--config_dir", str(CONF_DIR.of(s)), "-C", "-f", "{}")
    return (Daemon(
        name=ZEBRA,
        subsystem="bgp",
        argv=(f"{BINDIR}/zebra", *COMMON, "--vty_socket", run, "-z", str(ZSERV.of(s)),
              "-i", str(ZEBRA_PID.of(s)), "-f", str(ZEBRA_CONF.of(s))),
        # Its part changes with the router's name only: a restart, which bgpd
        # rides out (it reconnects and re-announces).
        files=(ConfigFile(ZEBRA_CONF.of(s), "restart", mode=0o600),),
        start_order=45,
        # Both routers of a pair: bgpd finds it serving when it starts on a
        # takeover.
        master_only=False,
        ready_socket=ZEBRA_VTY.of(s),
        stale=(ZEBRA_PID.of(s), ZEBRA_VTY.of(s), ZSERV.of(s)),
    ), Daemon(
        name=BGPD,
        subsystem="bgp",
        argv=(f"{BINDIR}/bgpd", *COMMON, "--vty_socket", run, "-z", str(ZSERV.of(s)),
              "-i", str(BGPD_PID.of(s)), "-f", str(BGPD_CONF.of(s))),
        files=(ConfigFile(FRR_CONF.of(s), "reload", checked=True, mode=0o600),
               ConfigFile(BGPD_CONF.of(s), "reload", mode=0o600),
               ConfigFile(VTYSH_CONF.of(s), "reload", mode=0o600)),
        check=check,
        reload_command=reload_argv(s),
        start_order=46,
        master_only=True,
        needs=(ZEBRA,),
        ready_socket=BGPD_VTY.of(s),
        stale=(BGPD_PID.of(s), BGPD_VTY.of(s)),
        shown=(Shown(FRR_CONF.of(s), upstream=("/etc/frr/frr.conf",), redact=shown),),
    ))
