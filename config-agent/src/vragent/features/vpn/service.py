"""``vragent-ipsec``: charon's launcher and the agent's hand on it.

``vragent-ipsec --root R charon``  becomes charon-systemd on the strongswan.conf
                                   of this kernel's data path
``vragent-ipsec --root R sync``    loads swanctl.conf and settles the SAs
                                   (charon's start script and the reload command)
``vragent-ipsec --root R xl2tpd``  notes the users L2TP starts with, becomes xl2tpd
``vragent-ipsec --root R l2tp-sync``  hangs up the L2TP sessions of users removed
                                   or whose password changed (xl2tpd's reload command)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ...errors import VragentError
from ...settings import Settings
from ...store.store import atomic_write
from .daemon import (
    CONF,
    CONF_LIBIPSEC,
    INDEX,
    KEY,
    L2TP_SYNCED,
    SOCKET,
    SWANCTL,
    SYNCED,
    XL2TPD_CONF,
    XL2TPD_CONTROL,
    XL2TPD_PID,
)

DATAPATH = "VRAGENT_IPSEC_DATAPATH"  # "kernel" or "libipsec": skip the probe


def main(argv: list[str] | None = None) -> int:
    from ...system import charon, proc

    parser = argparse.ArgumentParser(prog="vragent-ipsec")
    parser.add_argument("--root", default=None)
    parser.add_argument("command", choices=("charon", "sync", "xl2tpd", "l2tp-sync"))
    args = parser.parse_args(argv)
    s = Settings.from_env(args.root)
    if args.command == "charon":
        choice = os.environ.get(DATAPATH) or ("kernel" if charon.esp_in_kernel() else "libipsec")
        conf = CONF_LIBIPSEC if choice == "libipsec" else CONF
        os.environ["STRONGSWAN_CONF"] = str(conf.of(s))
        print(f"vragent-ipsec: data path {choice} ({conf.name})", flush=True)
        proc.become(["charon-systemd"])
        return 1
    if args.command == "xl2tpd":
        # A fresh xl2tpd has no session: whatever users are listed now are
        # the ones its sessions will be allowed with.
        _users_synced(s)
        proc.become(["xl2tpd", "-D", "-c", str(XL2TPD_CONF.of(s)), "-p", str(XL2TPD_PID.of(s)),
                     "-C", str(XL2TPD_CONTROL.of(s))])
        return 1
    if args.command == "l2tp-sync":
        for line in l2tp_sync(s):
            print(f"vragent-ipsec: {line}", flush=True)
        return 0
    paths = charon.Paths(socket=SOCKET.of(s), swanctl=SWANCTL.of(s), index=INDEX.of(s),
                         synced=SYNCED.of(s), key=KEY.of(s))
    if not paths.swanctl.exists():
        return 0
    try:
        for line in charon.sync(paths):
            print(f"vragent-ipsec: {line}", flush=True)
    except (VragentError, OSError) as exc:
        print(f"vragent-ipsec: sync failed: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def _users(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    users = data.get("users", {}) if isinstance(data, dict) else {}
    return {str(k): str(v) for k, v in users.items()} if isinstance(users, dict) else {}


def _users_synced(s: Settings) -> dict[str, str]:
    """Records the users (by digest) the index lists now; returns them."""
    want = _users(INDEX.of(s))
    atomic_write(L2TP_SYNCED.of(s), json.dumps({"users": want}, sort_keys=True).encode(), 0o600)
    return want


def l2tp_sync(s: Settings) -> list[str]:
    """Hangs up exactly the L2TP sessions of users removed, or whose password
    changed, since the last sync (pppd checked their password at the call)."""
    from ...system import xl2tpd

    had = _users(L2TP_SYNCED.of(s))
    want = _users_synced(s)
    return xl2tpd.hang_up(u for u in had if want.get(u) != had[u])


if __name__ == "__main__":
    sys.exit(main())
