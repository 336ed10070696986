"""nftables: load a script as one transaction, list a table."""

from __future__ import annotations

import json
from typing import Any

from ..errors import ApplyError
from .cmd import spawn


def load(script: str) -> None:
    """``nft -f -``: the kernel commits all of it or none of it."""
    proc = spawn(["nft", "-f", "-"], script)
    if proc.returncode != 0:
        raise ApplyError(f"nft rejected the ruleset, the previous one stays in force:\n"
                         f"{proc.stderr.strip()}")


def block_vrrp_out(table: str, ifname: str) -> None:
    """Drop this router's own VRRP adverts leaving ``ifname`` (a table of its
    own, so the configuration's table is never touched)."""
    load(f"table inet {table} {{}}\ndelete table inet {table}\n"
         f"table inet {table} {{\n"
         f"  chain out {{\n"
         f"    type filter hook output priority -300; policy accept;\n"
         f"    oifname {json.dumps(ifname)} ip protocol vrrp drop\n"
         f"  }}\n}}\n")


def unblock_vrrp_out(table: str) -> None:
    proc = spawn(["nft", "delete", "table", "inet", table])
    if proc.returncode != 0 and "No such file" not in proc.stderr:
        raise ApplyError(f"nft could not remove table {table}: {proc.stderr.strip()}")


def list_table(table: str) -> str | None:
    """Stateless listing (no counter values), so it only changes when rules do."""
    proc = spawn(["nft", "-s", "list", "table", "inet", table])
    return proc.stdout if proc.returncode == 0 else None


def table_json(table: str) -> list[dict[str, Any]] | None:
    """The table as ``nft -j`` lists it (stateless): its objects (table,
    chains, rules...) in order, or None when it does not exist."""
    proc = spawn(["nft", "-j", "-s", "list", "table", "inet", table])
    if proc.returncode != 0:
        return None
    try:
        items = json.loads(proc.stdout)["nftables"]
    except (ValueError, KeyError, TypeError):
        return None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else None


# nfnetlink: NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN, answered by NFT_MSG_NEWGEN.
_NETLINK_NETFILTER = 12
_GETGEN = (10 << 8) | 16
_NFTA_GEN_ID = 1


def generation() -> int | None:
    """The ruleset generation of this network namespace.

    The kernel bumps it on every committed nftables transaction, whoever made
    it; reading it is one netlink round trip, where listing a large table with
    ``nft`` costs hundreds of milliseconds.
    """
    import socket
    import struct

    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_NETFILTER)
    except OSError:
        return None
    with sock:
        sock.settimeout(2.0)
        request = struct.pack("=IHHII", 20, _GETGEN, 1, 1, 0) + struct.pack("=BBH", 0, 0, 0)
        try:
            sock.send(request)
            reply = sock.recv(4096)
        except OSError:
            return None
    length, msg_type = struct.unpack_from("=IH", reply)
    if msg_type != (10 << 8) | 15 or length > len(reply):
        return None
    offset = 20  # nlmsghdr + nfgenmsg
    while offset + 4 <= length:
        attr_len, attr_type = struct.unpack_from("=HH", reply, offset)
        if attr_len < 4:
            break
        if attr_type & 0x3FFF == _NFTA_GEN_ID:
            return int(struct.unpack_from(">I", reply, offset + 4)[0])
        offset += (attr_len + 3) & ~3
    return None


def namespace_id() -> int:
    """Identity of the network namespace we run in (a reboot or a new one changes it)."""
    import os

    return os.stat("/proc/self/ns/net").st_ino
