"""strongSwan's charon as a supervised daemon, driven over its vici socket.
Light on purpose: supervisord's watchdog imports it.

``vragent-ipsec charon`` picks the data path (the kernel's ESP where the
kernel has it, else strongSwan's own, kernel-libipsec, over a TUN device)
and becomes ``charon-systemd`` on the matching strongswan.conf: charon
(the plain one) has its pid file hard-coded, so two routers on one host
would clash. charon reads no configuration file of its own: once it runs
(its start script) and after every change (the reload command),
``vragent-ipsec sync`` loads swanctl.conf and settles the SAs: a removed
peer's SAs are terminated, a changed peer's re-established, peers that
initiate are initiated (no trap policies: kernel-libipsec cannot trigger
them), removed users' sessions closed. Unchanged peers are not touched.
"""

from __future__ import annotations

from ...feature import ConfigFile, Daemon, Place
from ...settings import Settings

NAME = "charon"
# Two renders of the daemon's settings, one per data path (the launcher picks).
CONF = Place("conf", "strongswan.conf")
CONF_LIBIPSEC = Place("conf", "strongswan-libipsec.conf")
# Connections, pools and secrets (root-only: it holds the PSKs and passwords).
SWANCTL = Place("conf", "swanctl.conf")
# What each connection and user is, by digest: what sync compares with the last run.
INDEX = Place("conf", "ipsec-index.json")
SOCKET = Place("run", "charon.vici")
# What the last sync loaded (the index as it was), to know what changed.
SYNCED = Place("run", "ipsec-synced.json")
# Where L2TP's ppp options would go (rendered, not installed: see subsystem.l2tp).
PPP_OPTIONS = Place("conf", "options.xl2tpd")
# The router's remote-access identity, created once: certificate and key.
CERT = Place("state", "ipsec/router.crt")
KEY = Place("state", "ipsec/router.key")


def daemons(s: Settings) -> tuple[Daemon, ...]:
    launcher = ("vragent-ipsec", "--root", str(s.root))
    return (Daemon(
        name=NAME,
        subsystem="vpn",
        argv=(*launcher, "charon"),
        files=(
            ConfigFile(CONF.of(s), "restart"),
            ConfigFile(CONF_LIBIPSEC.of(s), "restart"),
            ConfigFile(SWANCTL.of(s), "reload", mode=0o600),
            ConfigFile(INDEX.of(s), "reload", mode=0o600),
        ),
        reload_command=(*launcher, "sync"),
        start_order=50,
        # Tunnels and remote access end on the master's public addresses.
        master_only=True,
        stale=(SOCKET.of(s),),
    ),)
