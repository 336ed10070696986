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

xl2tpd (L2TP/IPsec, CloudStack's own client type) runs where the kernel
can carry it (ESP and PPP: the system VM), master-only like charon: the
feature installs its files only there (subsystem.apply), and a daemon whose
main file does not exist does not run. ``vragent-ipsec xl2tpd`` notes the
users it starts with, then becomes ``xl2tpd -D``; ``vragent-ipsec l2tp-sync``
(its reload command) hangs up the sessions of users removed or whose
password changed. pppd reads the options and chap-secrets at each call, so
nothing else needs a reload.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...feature import REDACTED, ConfigFile, Daemon, Place, Shown
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
# L2TP: xl2tpd's configuration, the ppp options its calls get, pppd's log.
XL2TPD = "xl2tpd"
XL2TPD_CONF = Place("conf", "xl2tpd.conf")
PPP_OPTIONS = Place("conf", "options.xl2tpd")
PPP_LOG = Place("log", "pppd.log")
XL2TPD_PID = Place("run", "xl2tpd.pid")
XL2TPD_CONTROL = Place("run", "xl2tpd.control")
# The users the running xl2tpd's sessions were allowed with (by digest).
L2TP_SYNCED = Place("run", "l2tp-synced.json")
# Whether L2TP/IPsec is served here, and why not (subsystem.apply writes it).
L2TP_STATUS = Place("run", "l2tp-status.json")
# The router's remote-access identity, created once: certificate and key.
CERT = Place("state", "ipsec/router.crt")
KEY = Place("state", "ipsec/router.key")
# Every secret of swanctl.conf is one "secret = 0x..." line (PSKs, users' passwords).
_SECRET = re.compile(r"^(\s*secret\s*=).*$", re.MULTILINE)


def shown(text: str) -> str:
    """swanctl.conf as an operator may see it: connections and identities,
    no secret. (The index, by digests of the secrets, is never shown.)"""
    return _SECRET.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


# A chap-secrets entry as the feature writes it: "user" * "secret" *.
_CHAP = re.compile(r'("(?:[^"\\]|\\.)*") \* "(?:[^"\\]|\\.)*" \*')


def chap_shown(text: str) -> str:
    """chap-secrets as an operator may see it: the users, no password (a line
    of another form, which the feature never writes, goes whole)."""
    lines = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            lines.append(line)
        elif m := _CHAP.fullmatch(line):
            lines.append(f'{m.group(1)} * "{REDACTED}" *')
        else:
            lines.append(f"# {REDACTED}")
    return "\n".join(lines) + "\n"


def chap_secrets(s: Settings) -> Path:
    """pppd reads its CHAP secrets from a path built in (no option names
    another): /etc/ppp/chap-secrets, as upstream's CsVpnUser writes it."""
    return s.root / "etc/ppp/chap-secrets"


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
        shown=(Shown(SWANCTL.of(s), redact=shown),),
    ), Daemon(
        name=XL2TPD,
        subsystem="vpn",
        argv=(*launcher, "xl2tpd"),
        files=(
            ConfigFile(XL2TPD_CONF.of(s), "restart"),
            ConfigFile(PPP_OPTIONS.of(s), "reload"),
            ConfigFile(chap_secrets(s), "reload", mode=0o600),
        ),
        reload_command=(*launcher, "l2tp-sync"),
        start_order=55,
        master_only=True,
        stale=(XL2TPD_PID.of(s), XL2TPD_CONTROL.of(s)),
        shown=(Shown(XL2TPD_CONF.of(s), upstream=("/etc/xl2tpd/xl2tpd.conf",)),
               Shown(PPP_OPTIONS.of(s), upstream=("/etc/ppp/options.xl2tpd",)),
               Shown(chap_secrets(s), upstream=("/etc/ppp/chap-secrets",), redact=chap_shown)),
    ))
