"""Kernel parameters under /proc/sys (vragent.system.sysctl)."""

from __future__ import annotations

from pathlib import Path

import pytest
from vragent.system import sysctl


def test_read_write_and_a_parameter_that_went_away(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sysctl, "PROC", tmp_path)
    (tmp_path / "net/ipv4/conf/eth1.10").mkdir(parents=True)
    (tmp_path / "net/ipv4/conf/eth1.10/rp_filter").write_text("0\n")
    assert sysctl.read("net/ipv4/conf/eth1.10/rp_filter") == "0"
    sysctl.write("net/ipv4/conf/eth1.10/rp_filter", "2")
    assert sysctl.read("net/ipv4/conf/eth1.10/rp_filter") == "2"
    assert sysctl.read("net/ipv4/conf/eth9/rp_filter") is None


def test_this_hosts_forwarding_setting_reads() -> None:
    assert sysctl.read("net/ipv4/ip_forward") in ("0", "1")
