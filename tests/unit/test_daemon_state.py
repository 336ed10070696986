"""What a supervised daemon should be doing and what it last loaded (vragent.daemon_state)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from vragent import daemon_state
from vragent.features.dhcp.daemon import CONF as DNSMASQ_CONF
from vragent.settings import Settings
from vragent.supervised import registry


def test_digests_of_the_files_and_missing_ones(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    dnsmasq = registry(s).get("dnsmasq")
    s.conf_dir.mkdir(parents=True)
    DNSMASQ_CONF.of(s).write_text("port=53\n")
    assert daemon_state.digests(dnsmasq) == {
        "dnsmasq.conf": hashlib.sha256(b"port=53\n").hexdigest(),
        "dnsmasq.dhcp-hosts": "-",
        "dnsmasq.hosts": "-",
    }


def test_loaded_record_is_sha256sum_format_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "dnsmasq.loaded"
    loaded = {"dnsmasq.conf": "ab" * 32, "dnsmasq.hosts": "-"}
    daemon_state.write_loaded(path, loaded)
    assert path.read_text() == f"{'ab' * 32}  dnsmasq.conf\n-  dnsmasq.hosts\n"
    assert daemon_state.read_loaded(path) == loaded
    assert daemon_state.read_loaded(tmp_path / "none") == {}


@pytest.mark.parametrize(("redundant", "status", "dnsmasq", "keepalived"), [
    (False, "UNKNOWN", True, True),
    (True, "PRIMARY", True, True),
    (True, "BACKUP", False, True),
    (True, "FAULT", False, True),
])
def test_wanted(tmp_path: Path, redundant: bool, status: str, dnsmasq: bool,
                keepalived: bool) -> None:
    daemons = registry(Settings(root=tmp_path))
    for name in ("dnsmasq", "keepalived"):
        # Without its main file a daemon has nothing to do.
        assert not daemon_state.wanted(daemons.get(name), redundant, status)
        conf = daemons.get(name).conf
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text("x\n")
    assert daemon_state.wanted(daemons.get("dnsmasq"), redundant, status) is dnsmasq
    assert daemon_state.wanted(daemons.get("keepalived"), redundant, status) is keepalived
