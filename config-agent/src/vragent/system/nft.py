"""nftables: load a script as one transaction, list a table, read and reset
its named counters."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ApplyError
from .cmd import spawn
from .filelock import locked


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


Counts = dict[str, tuple[int, int]]  # counter name -> (packets, bytes)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,99}", re.ASCII)


def parse_counters(text: str) -> Counts:
    """The named counters in ``nft -j list counters`` (or ``reset counters``)
    output, by name (pure)."""
    found: Counts = {}
    try:
        items = json.loads(text)["nftables"]
    except (ValueError, KeyError, TypeError):
        return found
    for item in items if isinstance(items, list) else []:
        c = item.get("counter") if isinstance(item, dict) else None
        if isinstance(c, dict) and isinstance(c.get("name"), str):
            packets, octets = c.get("packets", 0), c.get("bytes", 0)
            if isinstance(packets, int) and isinstance(octets, int):
                found[c["name"]] = (packets, octets)
    return found


def counters(table: str) -> Counts | None:
    """The table's named counters with their values, or None when the table
    does not exist (nothing configured yet, or a reboot)."""
    proc = spawn(["nft", "-j", "list", "counters", "table", "inet", table])
    if proc.returncode != 0:
        return None
    return parse_counters(proc.stdout)


def reset_counters(table: str, names: list[str]) -> Counts:
    """Zero the named counters; returns what they held. The kernel reads and
    zeroes each at once (nothing counted in between is lost), but a batch of
    resets is not one transaction: every name is checked first, and none is
    reset unless all exist. Hold ``counters_locked``."""
    bad = [n for n in names if not _NAME.fullmatch(n)]
    if bad:
        raise ApplyError(f"not a counter name: {bad[0]!r}")
    if not names:
        return {}
    live = counters(table)
    missing = [n for n in names if live is None or n not in live]
    if missing:
        raise ApplyError(f"no counter {missing[0]} in table inet {table}: nothing was reset")
    proc = spawn(["nft", "-j", "-f", "-"], _json_resets(table, names))
    if proc.returncode != 0:
        raise ApplyError(f"nft could not reset the counters {', '.join(names)}: "
                         f"{proc.stderr.strip()}")
    return parse_counters(_merged(proc.stdout))


def _json_resets(table: str, names: list[str]) -> str:
    return json.dumps({"nftables": [
        {"reset": {"counter": {"family": "inet", "table": table, "name": n}}} for n in names]})


def _merged(stdout: str) -> str:
    """``nft -j`` prints one JSON document per command: one list of them all."""
    items: list[Any] = []
    decoder = json.JSONDecoder()
    text, at = stdout.strip(), 0
    while at < len(text):
        try:
            doc, end = decoder.raw_decode(text, at)
        except ValueError:
            break
        if isinstance(doc, dict) and isinstance(doc.get("nftables"), list):
            items += doc["nftables"]
        at = end
        while at < len(text) and text[at].isspace():
            at += 1
    return json.dumps({"nftables": items})


@contextmanager
def counters_locked(run_dir: Path) -> Iterator[None]:
    """Held while counter values are read to be carried into a reload of the
    whole table, and while counters are reset: a reset in between would be
    undone by the reload."""
    with locked(run_dir / "nft-counters.lock"):
        yield


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
