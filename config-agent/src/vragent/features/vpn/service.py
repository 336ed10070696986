"""``vragent-ipsec``: charon's launcher and the agent's hand on it.

``vragent-ipsec --root R charon``  becomes charon-systemd on the strongswan.conf
                                   of this kernel's data path
``vragent-ipsec --root R sync``    loads swanctl.conf and settles the SAs
                                   (charon's start script and the reload command)
"""

from __future__ import annotations

import argparse
import os
import sys

from ...errors import VragentError
from ...settings import Settings
from .daemon import CONF, CONF_LIBIPSEC, INDEX, KEY, SOCKET, SWANCTL, SYNCED

DATAPATH = "VRAGENT_IPSEC_DATAPATH"  # "kernel" or "libipsec": skip the probe


def main(argv: list[str] | None = None) -> int:
    from ...system import charon, proc

    parser = argparse.ArgumentParser(prog="vragent-ipsec")
    parser.add_argument("--root", default=None)
    parser.add_argument("command", choices=("charon", "sync"))
    args = parser.parse_args(argv)
    s = Settings.from_env(args.root)
    if args.command == "charon":
        choice = os.environ.get(DATAPATH) or ("kernel" if charon.esp_in_kernel() else "libipsec")
        conf = CONF_LIBIPSEC if choice == "libipsec" else CONF
        os.environ["STRONGSWAN_CONF"] = str(conf.of(s))
        print(f"vragent-ipsec: data path {choice} ({conf.name})", flush=True)
        proc.become(["charon-systemd"])
        return 1
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


if __name__ == "__main__":
    sys.exit(main())
