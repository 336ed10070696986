"""xl2tpd and pppd for L2TP/IPsec: whether this kernel can carry it, and the
L2TP sessions by user.

L2TP/IPsec needs ESP in the kernel (its IPsec SAs are transport mode, which
strongSwan's own kernel-libipsec cannot do) and PPP (xl2tpd hands each call
to a pppd, which opens /dev/ppp). Where either is missing the feature serves
IKEv2 only and says why (features/vpn).

Each pppd records its session in its tdb, ``/var/run/pppd2.tdb``: records
whose data is the session's script environment, ``IFNAME=ppp0;PEERNAME=
alice;PPPD_PID=1234;...``. Upstream's CsVpnUser (systemvm/debian/opt/cloud/
bin/configure.py) reads it with ``tdbdump`` and kills every pppd whose
record merely contains the removed name; here the tdb is read directly and
exactly the sessions whose ``PEERNAME`` is the user are hung up.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .cmd import spawn

PPP_DEVICE = Path("/dev/ppp")
PPP_MAJOR = 108
TDB = Path("/var/run/pppd2.tdb")
# tdb's layout (pppd/tdb.c, the same as Samba's tdb 1.x): a 168-byte header
# (magic text, version, hash size, ...), the free list's head, then one
# chain head per hash bucket; each record is six 32-bit words (next, record
# length, key length, data length, hash, magic), its key and its data.
TDB_VERSION = 0x26011967 + 6
TDB_MAGIC = 0x26011999
TDB_HEADER = 168
TDB_RECORD = 24


def unavailable(esp: bool) -> str:
    """Why L2TP/IPsec cannot be served here ("" when it can), given whether
    the kernel carries ESP itself (system.charon.esp_in_kernel)."""
    why = []
    if not esp:
        why.append("the kernel has no ESP (kernel-libipsec does no transport mode)")
    ppp = ppp_unavailable()
    if ppp:
        why.append(ppp)
    missing = [p for p in ("xl2tpd", "pppd") if shutil.which(p) is None]
    if missing:
        why.append(f"{' and '.join(missing)} not installed")
    return "; ".join(why)


def _registered() -> bool:
    """Whether the PPP driver is in the kernel (its character device registered)."""
    try:
        lines = Path("/proc/devices").read_text().splitlines()
    except OSError:
        return False
    return any(line.split() == [str(PPP_MAJOR), "ppp"] for line in lines)


def ppp_unavailable() -> str:
    """Why pppd could not run here ("" when it can)."""
    if PPP_DEVICE.exists():
        try:
            os.close(os.open(PPP_DEVICE, os.O_RDWR))
        except OSError as exc:
            return f"/dev/ppp cannot be opened ({exc.strerror})"
        return ""
    # pppd makes the node itself when the driver is there (sys-linux.c
    # ppp_available); a driver built as a module is loaded first.
    if _registered():
        return ""
    if shutil.which("modprobe") is not None:
        spawn(["modprobe", "-q", "ppp_generic"])
        if _registered():
            return ""
    return "the kernel has no PPP (no /dev/ppp, no ppp_generic)"


# -- sessions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    user: str
    pid: int
    ifname: str


def _records(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The live (key, data) records of a tdb file's contents."""
    for order in ("<", ">"):
        if len(data) >= TDB_HEADER and struct.unpack_from(f"{order}I", data, 32)[0] == TDB_VERSION:
            break
    else:
        return
    hash_size = struct.unpack_from(f"{order}I", data, 36)[0]
    seen: set[int] = set()
    for bucket in range(hash_size):
        head = TDB_HEADER + 4 * (bucket + 1)
        if head + 4 > len(data):
            return
        off = struct.unpack_from(f"{order}I", data, head)[0]
        while off and off not in seen and off + TDB_RECORD <= len(data):
            seen.add(off)
            nxt, _, key_len, data_len, _, magic = struct.unpack_from(f"{order}6I", data, off)
            start = off + TDB_RECORD
            if magic == TDB_MAGIC and start + key_len + data_len <= len(data):
                yield (data[start:start + key_len],
                       data[start + key_len:start + key_len + data_len])
            off = nxt


def parse_sessions(data: bytes) -> list[Session]:
    """The sessions a pppd tdb records: those with a user and a pid."""
    out = []
    for _, value in _records(data):
        env = dict(item.partition("=")[::2] for item in
                   value.rstrip(b"\x00").decode(errors="replace").split(";") if "=" in item)
        user, pid = env.get("PEERNAME", ""), env.get("PPPD_PID", "")
        if user and pid.isdigit():
            out.append(Session(user, int(pid), env.get("IFNAME", "")))
    return sorted(out, key=lambda s: s.pid)


def _ours(pid: int) -> bool:
    """A live pppd of this network namespace (another router's pppd on the
    same host is not this router's to hang up)."""
    proc = Path(f"/proc/{pid}")
    try:
        return ((proc / "comm").read_text().strip() == "pppd"
                and os.readlink(proc / "ns/net") == os.readlink("/proc/self/ns/net"))
    except OSError:
        return False


def sessions(tdb: Path = TDB) -> list[Session]:
    """This router's live L2TP sessions."""
    try:
        data = tdb.read_bytes()
    except OSError:
        return []
    return [s for s in parse_sessions(data) if _ours(s.pid)]


def hang_up(users: Iterable[str], tdb: Path = TDB) -> list[str]:
    """Ends exactly the sessions of ``users`` (pppd hangs up on SIGTERM).
    Returns what it did."""
    names = set(users)
    done = []
    for s in sessions(tdb):
        if s.user in names:
            with contextlib.suppress(ProcessLookupError):
                os.kill(s.pid, signal.SIGTERM)
                done.append(f"hung up {s.user}'s L2TP session (pppd {s.pid} {s.ifname})")
    return done
