"""Starting the pair daemons under supervisord, with paths from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from vragent.ha.launch import argv_for, stale_files
from vragent.settings import Settings

ROOT = Path("/srv/r1")


def test_conntrackd_argv_uses_the_settings_config() -> None:
    s = Settings(root=ROOT)
    assert argv_for("conntrackd", s) == ["conntrackd", "-C", "/srv/r1/etc/vragent/conntrackd.conf"]


def test_keepalived_argv_uses_the_settings_paths() -> None:
    s = Settings(root=ROOT)
    argv = argv_for("keepalived", s)
    # Line-buffered through stdbuf: its log reaches supervisord through a pipe.
    assert argv[:argv.index("keepalived")] == ["stdbuf", "-oL", "-eL"]
    daemon = argv[argv.index("keepalived"):]
    # In the foreground (supervisord watches it), VRRP only, logging to its console.
    for flag in ("--dont-fork", "--log-console", "--vrrp"):
        assert flag in daemon
    assert "--use-file=/srv/r1/etc/vragent/keepalived.conf" in daemon
    assert "--pid=/srv/r1/run/vragent/keepalived.pid" in daemon
    assert "--vrrp_pid=/srv/r1/run/vragent/keepalived_vrrp.pid" in daemon


def test_two_roots_share_no_path() -> None:
    # Two routers side by side on one host (the pair lab) must not collide.
    for name in ("conntrackd", "keepalived"):
        one = [a for a in argv_for(name, Settings(root=Path("/srv/r1"))) if "/" in a]
        two = argv_for(name, Settings(root=Path("/srv/r2")))
        assert one and all("/srv/r1/" in a for a in one)
        assert not set(one) & set(two)


@pytest.mark.parametrize("name", ["dnsmasq", "", "Keepalived"])
def test_unknown_daemon(name: str) -> None:
    with pytest.raises(ValueError, match="unknown daemon"):
        argv_for(name, Settings(root=ROOT))


def test_stale_files() -> None:
    s = Settings(root=ROOT)
    assert stale_files("conntrackd", s) == [
        Path("/srv/r1/run/vragent/conntrackd.lock"), Path("/srv/r1/run/vragent/conntrackd.sock")]
    assert stale_files("keepalived", s) == [
        Path("/srv/r1/run/vragent/keepalived.pid"),
        Path("/srv/r1/run/vragent/keepalived_vrrp.pid")]


def test_stale_files_are_what_the_daemons_are_told_to_use() -> None:
    s = Settings(root=ROOT)
    conntrackd = stale_files("conntrackd", s)
    assert conntrackd == [s.conntrackd_lock, s.conntrackd_socket]
    keepalived = argv_for("keepalived", s)
    for path in stale_files("keepalived", s):
        assert any(arg.endswith(f"={path}") for arg in keepalived), path
