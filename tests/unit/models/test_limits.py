"""Untrusted JSON and values: every bad input is a clean, field-level error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vragent import cli
from vragent.bags import parse_bag
from vragent.errors import BagError
from vragent.models.limits import MAX_DEPTH, MAX_ITEMS, MAX_STRING, escape, load_json

from tests.unit.builders import sample_bag


def _problem(data: bytes, **kw: object) -> str:
    with pytest.raises(BagError) as info:
        load_json(data, "bag.json", **kw)  # type: ignore[arg-type]
    return "\n".join(info.value.problems)


def test_invalid_utf8() -> None:
    assert "not valid UTF-8 (byte 10)" in _problem(b'{"type": "\xff\xfe"}')


def test_duplicate_keys_are_an_error_except_in_boot_parameters() -> None:
    data = b'{"type": "staticroutes", "type": "ips"}'
    assert "key 'type' appears twice" in _problem(data)
    assert load_json(data, "cmd_line.json", duplicates_allowed=True) == {"type": "ips"}


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000, 200_000])
def test_deep_nesting(depth: int) -> None:
    data = b"[" * depth + b"]" * depth
    assert "nested deeper than" in _problem(data, limit=10**7)


def test_sizes() -> None:
    assert "more than the limit" in _problem(b" " * 11, limit=10)
    assert f"at most {MAX_ITEMS}" in _problem(json.dumps([0] * (MAX_ITEMS + 1)).encode())
    assert f"at most {MAX_STRING}" in _problem(json.dumps("x" * (MAX_STRING + 1)).encode(),
                                                 limit=10**8)


def test_not_json() -> None:
    assert "not valid JSON" in _problem(b'{"type": ')
    assert "not valid JSON" in _problem(b"NaN]")


def test_escape_shows_control_characters_and_truncates() -> None:
    assert escape("a\nb\x00") == "'a\\nb\\x00'"
    assert len(escape("x" * 10_000)) == 80


@pytest.mark.parametrize(("bag", "field"), [
    # A trailing newline would become a line of its own in dnsmasq's files.
    ({**sample_bag("vm_dhcp_entry_vm1.json"), "mac_address": "02:00:0a:01:00:0a\n"},
     "mac_address"),
    ({**sample_bag("guest_network_tier1.json"), "device": "eth2\n"}, "device"),
    ({**sample_bag("guest_network_tier1.json"), "domain_name": "vpc.lab\nserver=/x/"},
     "domain_name"),
    # Other scripts' digits pass str.isdigit() and int(), never nft or ip.
    ({**sample_bag("vm_dhcp_entry_vm1.json"), "ipv4_address": "10.10.1.\u0661\u0660"},
     "ipv4_address"),
    ({"type": "forwardrules", "rules": [{
        "source_ip_address": "100.64.10.11", "source_port_range": "\u00b2\u00b2:22",
        "destination_ip_address": "10.10.1.10", "destination_port_range": "22:22",
        "protocol": "tcp", "revoke": False}]}, "rules.0.source_port_range"),
    ({"type": "cmdline", "cmd_line": {"type": "vpcrouter", "router_pr": "\u0661\u0660\u0660"}},
     "cmd_line"),
    ({"type": "cmdline", "cmd_line": {"type": "vpcrouter", "router_id": "1_000"}}, "cmd_line"),
    ({"type": "cmdline", "cmd_line": {"type": "vpcrouter", "advert_int": "1e1"}}, "cmd_line"),
    ({"type": "cmdline", "cmd_line": {"type": "vpcrouter", "eth9ip": "10.0.0.1",
                                      "sync_dev": "eth\u0661"}}, "cmd_line"),
])
def test_values_looser_than_the_daemons_are_rejected(bag: dict[str, object], field: str) -> None:
    with pytest.raises(BagError) as info:
        parse_bag(bag)
    assert any(p.startswith(f"{field}: ") for p in info.value.problems), info.value.problems


def test_an_error_never_shows_the_router_password() -> None:
    bag = {"type": "cmdline", "cmd_line": {"type": "vpcrouter", "router_pr": "999",
                                           "router_password": "hunter2-secret"}}
    with pytest.raises(BagError) as info:
        parse_bag(bag)
    assert "hunter2" not in str(info.value)
    assert "router_pr='999'" in str(info.value)


@pytest.mark.parametrize("content", [
    b'{"type": "staticroutes", "routes": [], "routes": []}', b"\xff\xfe{}",
    b"[" * 100_000, b'{"type": "staticroutes", "routes": "' + b"\x00" * 1000 + b'"}'])
def test_cli_rejects_with_exit_2_and_no_traceback(content: bytes, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bag = tmp_path / "bag.json"
    bag.write_bytes(content)
    assert cli.main(["--root", str(tmp_path / "root"), "apply", str(bag)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("vragent: rejected")
    assert len(err) < 2000
    assert not (tmp_path / "root/var/lib/vragent/revisions").exists()  # nothing stored
