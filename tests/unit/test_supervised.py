"""The supervised daemons, each described once (vragent.supervised)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from vragent import programs
from vragent.features.conntrack.daemon import LOCK as CONNTRACKD_LOCK
from vragent.features.conntrack.daemon import SOCKET as CONNTRACKD_SOCKET
from vragent.reconcile import subsystems
from vragent.settings import Settings
from vragent.supervised import registry

ROOT = Path("/srv/r1")
SUPERVISORD_CONF = Path(__file__).parents[2] / "services/supervisord.conf"


def test_conntrackd_argv_uses_the_settings_config() -> None:
    d = registry(Settings(root=ROOT)).get("conntrackd")
    assert d.argv == ("conntrackd", "-C", "/srv/r1/etc/vragent/conntrackd.conf")


def test_keepalived_argv_uses_the_settings_paths() -> None:
    argv = list(registry(Settings(root=ROOT)).get("keepalived").argv)
    # Line-buffered through stdbuf: its log reaches supervisord through a pipe.
    assert argv[:argv.index("keepalived")] == ["stdbuf", "-oL", "-eL"]
    daemon = argv[argv.index("keepalived"):]
    # In the foreground (supervisord watches it), logging to its console. Not
    # --vrrp, which would leave out BFD (keepalived starts a BFD child only for a
    # bfd_instance, and a checker for virtual servers, which it never has here).
    for flag in ("--dont-fork", "--log-console"):
        assert flag in daemon
    assert not any(a in ("--vrrp", "-P", "--check", "-C") for a in daemon)
    assert "--bfd_pid=/srv/r1/run/vragent/keepalived_bfd.pid" in daemon
    assert "--use-file=/srv/r1/etc/vragent/keepalived.conf" in daemon
    assert "--pid=/srv/r1/run/vragent/keepalived.pid" in daemon
    assert "--vrrp_pid=/srv/r1/run/vragent/keepalived_vrrp.pid" in daemon


def test_dnsmasq_reads_its_main_file_and_stays_in_the_foreground() -> None:
    d = registry(Settings(root=ROOT)).get("dnsmasq")
    assert "--keep-in-foreground" in d.argv
    assert "--conf-file=/srv/r1/etc/vragent/dnsmasq.conf" in d.argv
    # Interfaces and ranges only at start; per-VM files on SIGHUP.
    assert [f.on_change for f in d.files] == ["restart", "reload", "reload"]
    assert d.reload_signal == "HUP" and d.master_only


def test_two_roots_share_no_path() -> None:
    # Two routers side by side on one host (the pair lab) must not collide.
    for one_d, two_d in zip(registry(Settings(root=Path("/srv/r1"))),
                            registry(Settings(root=Path("/srv/r2"))), strict=True):
        # argv[0] is the program (the host's, shared); its arguments are the router's.
        one = [a for a in one_d.argv[1:] if "/" in a] + [str(f.path) for f in one_d.files]
        two = [a for a in two_d.argv[1:] if "/" in a] + [str(f.path) for f in two_d.files]
        assert one and all("/srv/r1" in a for a in one)
        assert not set(one) & set(two)


@pytest.mark.parametrize("name", ["", "Keepalived", "strongswan"])
def test_unknown_daemon(name: str) -> None:
    with pytest.raises(KeyError, match="unknown daemon"):
        registry(Settings(root=ROOT)).get(name)


def test_stale_files_are_what_the_daemons_are_told_to_use() -> None:
    s = Settings(root=ROOT)
    reg = registry(s)
    assert reg.get("conntrackd").stale == (CONNTRACKD_LOCK.of(s), CONNTRACKD_SOCKET.of(s))
    for name in ("keepalived", "dnsmasq"):
        d = reg.get(name)
        assert d.stale
        for path in d.stale:
            assert any(arg.endswith(f"={path}") for arg in d.argv), path


def test_every_daemon_is_rendered_by_a_subsystem() -> None:
    for d in registry(Settings(root=ROOT)):
        assert d.subsystem in {m.NAME for m in subsystems()}, d.name
        assert d.files, d.name


def test_start_order_keepalived_after_what_it_needs() -> None:
    reg = registry(Settings(root=ROOT))
    order = [d.name for d in reg]
    for d in reg:
        for need in d.needs:
            assert order.index(need) < order.index(d.name)


def test_checkers_are_given_for_every_checked_file() -> None:
    for d in registry(Settings(root=ROOT)):
        if any(f.checked for f in d.files):
            assert d.check, d.name


def test_supervisord_runs_every_described_daemon_through_the_launcher(tmp_path: Path) -> None:
    """One [program:] per declared daemon (vragent/programs.py), started by
    vragent-launch and never by supervisord, in the declared order."""
    s = Settings(root=tmp_path)
    assert programs.write(s)
    conf = SUPERVISORD_CONF.read_text()
    assert "files=%(ENV_VRAGENT_ROOT)s/etc/vragent/supervisor.d/*.conf" in conf
    written = sorted(p.name for p in programs.directory(s).glob("*.conf"))
    assert written == sorted(f"{d.name}.conf" for d in registry(s))
    for d in registry(s):
        text = (programs.directory(s) / f"{d.name}.conf").read_text()
        programs_ = dict(re.findall(r"\[program:([\w-]+)\]\ncommand=([^\n]+)", text))
        assert programs_ == {d.name: f"vragent-launch --root %(ENV_VRAGENT_ROOT)s {d.name}"}
        assert "autostart=false" in text and f"priority={d.start_order}\n" in text
        # None of them is also written by hand.
        assert f"[program:{d.name}]" not in conf
    assert programs.write(s) == []  # nothing changed, nothing rewritten


def test_a_daemon_no_longer_declared_loses_its_program(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    programs.directory(s).mkdir(parents=True)
    (programs.directory(s) / "gone.conf").write_text("[program:gone]\n")
    assert "gone.conf removed" in programs.write(s)


def test_checker_argv_places_the_candidate() -> None:
    reg = registry(Settings(root=ROOT))
    cand = Path("/tmp/c")
    assert reg.get("dnsmasq").check_argv(cand) == ["dnsmasq", "--test", "--conf-file=/tmp/c"]
    assert reg.get("keepalived").check_argv(cand) == [
        "keepalived", "--config-test", "--use-file", "/tmp/c"]
