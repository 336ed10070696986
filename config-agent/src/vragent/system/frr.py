"""FRR as the router runs it: its own directories, vtysh on its own sockets,
the kernel's TCP-MD5 counters.

Nothing here reads or writes the host's /etc/frr or /var/run/frr: vtysh gets
``--config_dir`` and ``--vty_socket`` (without them it reads
/etc/frr/vtysh.conf and talks to whatever FRR the host runs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ApplyError
from ..store.store import private_dir
from .cmd import spawn

VTYSH = "vtysh"
NETSTAT = Path("/proc/net/netstat")
# TcpExt counters of the namespace's TCP (net/ipv4/proc.c): a segment without
# the MD5 option where a key is set, with one where none is, and with a
# signature that does not verify (a wrong password on either side).
MD5_COUNTERS = ("TCPMD5NotFound", "TCPMD5Unexpected", "TCPMD5Failure")


def prepare(run_dir: Path) -> None:
    """The daemons' socket and pid directory exists, root-only."""
    private_dir(run_dir)


def vtysh(conf_dir: Path, run_dir: Path, *commands: str, daemon: str = "",
          timeout: float = 5.0) -> str:
    argv = [VTYSH, "--config_dir", str(conf_dir), "--vty_socket", str(run_dir)]
    if daemon:
        argv += ["-d", daemon]
    for c in commands:
        argv += ["-c", c]
    done = spawn(argv)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()
        raise ApplyError(f"vtysh {' '.join(commands)}: exit {done.returncode}: {detail}")
    return done.stdout


def neighbors(conf_dir: Path, run_dir: Path, daemon: str) -> dict[str, dict[str, Any]]:
    """The BGP daemon's ``show bgp neighbors json``, by peer address; {} when
    it does not answer."""
    try:
        out = vtysh(conf_dir, run_dir, "show bgp neighbors json", daemon=daemon)
        data = json.loads(out or "{}")
    except (ApplyError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) \
        else {}


def md5_counters(path: Path = NETSTAT) -> dict[str, int]:
    """The namespace's TCP-MD5 counters (0 where the kernel has none)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    found: dict[str, int] = {}
    for head, values in zip(lines[::2], lines[1::2], strict=False):
        if not head.startswith("TcpExt:"):
            continue
        for name, value in zip(head.split()[1:], values.split()[1:], strict=False):
            if name in MD5_COUNTERS:
                found[name] = int(value)
    return {name: found.get(name, 0) for name in MD5_COUNTERS}
