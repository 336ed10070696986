"""L2TP/IPsec's state: the status the health check and the metrics tell (served,
or why not: never a failure), the sessions pppd records in its tdb, and the
hang-ups of exactly the sessions of users removed or whose password changed.

Upstream: systemvm/debian/opt/cloud/bin/configure.py CsVpnUser.del_l2tp_ipsec_user
(``tdbdump /var/run/pppd2.tdb``, then ``kill -9`` of every PPPD_PID on a line
that merely contains the name); the tdb's layout: ppp-project/ppp pppd/tdb.c.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest
from vragent.feature import Outcome
from vragent.features import checks as all_checks
from vragent.features.vpn import service, stats
from vragent.features.vpn.daemon import INDEX, L2TP_STATUS, L2TP_SYNCED
from vragent.settings import Settings
from vragent.system import xl2tpd

CHECK = next(c for c in all_checks() if c.name == "vpn_check.py")


class _Ctx:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings


def _status(s: Settings, **status: Any) -> None:
    path = L2TP_STATUS.of(s)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(status))


def test_the_check_says_l2tp_is_not_served_and_does_not_fail(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    _status(s, configured=True, served=False, why="the kernel has no PPP")
    out: Outcome = CHECK.run(_Ctx(s))
    assert out.success
    assert out.message == ("No site-to-site VPN configured, skipping; L2TP/IPsec remote access "
                           "not served: the kernel has no PPP")
    _status(s, configured=True, served=True, why="")
    assert CHECK.run(_Ctx(s)).message == "No site-to-site VPN configured, skipping"
    _status(s, configured=False, served=False, why="")
    assert CHECK.run(_Ctx(s)).message == "No site-to-site VPN configured, skipping"


def test_the_metrics_say_whether_l2tp_is_served(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(root=tmp_path)
    monkeypatch.setattr(stats, "_sas", lambda settings: [])
    monkeypatch.setattr(stats, "_index", lambda settings: {"conns": {"remote-access": {}}})
    monkeypatch.setattr(xl2tpd, "sessions", lambda: [xl2tpd.Session("alice", 7, "ppp0")])
    assert "vragent_l2tp_served" not in {m.name for m in stats.metrics(s)}
    for served in (True, False):
        _status(s, configured=True, served=served, why="" if served else "no PPP")
        got = {m.name: m for m in stats.metrics(s)}
        assert dict(got["vragent_l2tp_served"].samples) == {(): 1.0 if served else 0.0}
        assert dict(got["vragent_l2tp_sessions"].samples) == {(): 1.0}


# -- pppd's tdb -------------------------------------------------------------------------------

MAGIC = 0x26011999


def tdb(records: list[tuple[bytes, bytes]], hash_size: int = 3, order: str = "<",
        dead: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    """A tdb file as pppd's tdb.c lays it out: header, free list, chain heads,
    then records chained per bucket (a dead record, deleted, is on a chain
    with another magic)."""
    header = bytearray(b"TDB file\n".ljust(32, b"\0"))
    header += struct.pack(f"{order}II", 0x26011967 + 6, hash_size)
    header = header.ljust(168, b"\0")
    heads = [0] * hash_size
    body = bytearray()
    start = 168 + 4 * (hash_size + 1)
    entries = [(k, v, MAGIC) for k, v in records] + [(k, v, 0xFEE1DEAD) for k, v in dead]
    for i, (key, value, magic) in enumerate(entries):
        off = start + len(body)
        bucket = i % hash_size
        body += struct.pack(f"{order}6I", heads[bucket], len(key) + len(value) + 4, len(key),
                            len(value), 0, magic) + key + value + b"\0\0\0\0"
        heads[bucket] = off
    return bytes(header) + struct.pack(f"{order}I", 0) + struct.pack(
        f"{order}{hash_size}I", *heads) + bytes(body)


def _env(pid: int, user: str, ifname: str) -> bytes:
    return (f"ORIG_UID=0;PPPLOGNAME=root;PPPD_PID={pid};DEVICE=/dev/pts/3;IFNAME={ifname};"
            f"IPLOCAL=10.1.2.1;IPREMOTE=10.1.2.2;PEERNAME={user};SPEED=115200;").encode()


RECORDS = [(b"pppd101", _env(101, "bob", "ppp0")), (b"IFNAME=ppp0", b"pppd101"),
           (b"pppd102", _env(102, "bobby", "ppp1")), (b"pppd103", _env(103, "alice", "ppp2")),
           (b"pppd104", b"ORIG_UID=0;PPPD_PID=104;DEVICE=/dev/pts/5;")]  # not authenticated


@pytest.mark.parametrize("order", ["<", ">"])
def test_sessions_from_the_tdb(order: str) -> None:
    data = tdb(RECORDS, order=order, dead=((b"pppd99", _env(99, "bob", "ppp9")),))
    assert xl2tpd.parse_sessions(data) == [xl2tpd.Session("bob", 101, "ppp0"),
                                           xl2tpd.Session("bobby", 102, "ppp1"),
                                           xl2tpd.Session("alice", 103, "ppp2")]


@pytest.mark.parametrize("data", [b"", b"TDB file\n", b"\xff" * 400, tdb(RECORDS)[:200]])
def test_a_broken_tdb_has_no_sessions(data: bytes) -> None:
    assert xl2tpd.parse_sessions(data) == []


def test_hang_up_exactly_the_users_sessions(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pppd2.tdb"
    path.write_bytes(tdb(RECORDS))
    killed: list[tuple[int, int]] = []
    monkeypatch.setattr(xl2tpd, "_ours", lambda pid: pid != 103)  # 103: another router's
    monkeypatch.setattr(os, "kill", lambda pid, sig: killed.append((pid, sig)))
    done = xl2tpd.hang_up(["bob", "alice"], path)
    # bob's only: not bobby's (upstream kills every line containing "bob"),
    # not alice's pppd of another network namespace.
    assert [pid for pid, _ in killed] == [101]
    assert done == ["hung up bob's L2TP session (pppd 101 ppp0)"]
    assert xl2tpd.hang_up(["carol"], path) == [] and len(killed) == 1
    assert xl2tpd.hang_up(["bob"], tmp_path / "none.tdb") == []


def test_ours_is_a_pppd_of_this_namespace() -> None:
    assert not xl2tpd._ours(os.getpid())  # not a pppd
    assert not xl2tpd._ours(2 ** 22 + 1)  # no such process


def test_l2tp_sync_hangs_up_removed_and_changed_users(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(root=tmp_path)
    asked: list[list[str]] = []
    monkeypatch.setattr(xl2tpd, "hang_up", lambda users: asked.append(sorted(users)) or [])

    def index(**users: str) -> None:
        INDEX.of(s).parent.mkdir(parents=True, exist_ok=True)
        INDEX.of(s).write_text(json.dumps({"conns": {}, "users": users}))

    index(alice="a1", bob="b1", bobby="c1")
    L2TP_SYNCED.of(s).parent.mkdir(parents=True, exist_ok=True)
    service._users_synced(s)  # what xl2tpd started with
    index(alice="a2", bobby="c1")  # alice's password changed, bob removed
    service.l2tp_sync(s)
    assert asked == [["alice", "bob"]]
    assert json.loads(L2TP_SYNCED.of(s).read_text()) == {"users": {"alice": "a2", "bobby": "c1"}}
    service.l2tp_sync(s)
    assert asked[-1] == []
