"""What the VPN shows: the stored bags redacted, models' repr, checkbatchs2svpn.sh's
answer, the metrics and the health check, from charon's SAs (faked).

Upstream: systemvm/debian/opt/cloud/bin/checkbatchs2svpn.sh and checks2svpn.sh
(CheckS2SVpnConnectionsAnswer.parseDetails reads the answer).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from vragent.bags import parse_bag, redact
from vragent.features import checks as all_checks
from vragent.features.vpn import stats
from vragent.models.limits import REDACTED
from vragent.settings import Settings

from tests.unit.builders import apply_bags

from .helpers import PSK, ra, s2s, users

SETTINGS = Settings(root=Path("/nonexistent/vragent-unit"))


def test_redact_hides_every_secret() -> None:
    docs = apply_bags([s2s(), ra(), users(("alice", "Alice-Pw-1", True))])
    stored = json.dumps(docs)
    assert PSK in stored and "l2tp-psk" in stored and "Alice-Pw-1" in stored
    shown = redact(docs)
    text = json.dumps(shown)
    for secret in (PSK, "l2tp-psk", "Alice-Pw-1"):
        assert secret not in text
    assert shown["site2sitevpn"]["100.64.30.1"]["ipsec_psk"] == REDACTED
    assert shown["remoteaccessvpn"]["100.64.10.10"]["preshared_key"] == REDACTED
    assert shown["vpnuserlist"]["alice"] == {"user": "alice", "password": REDACTED, "add": True}
    # The rest as stored, and the stored docs untouched.
    assert shown["site2sitevpn"]["100.64.30.1"]["peer_guest_cidr_list"] == (
        "10.30.0.0/24,10.31.0.0/24")
    assert json.dumps(docs) == stored


def test_models_repr_hide_secrets() -> None:
    for raw, secret in ((s2s(), PSK), (ra(), "l2tp-psk"),
                        (users(("alice", "Alice-Pw-1", True)), "Alice-Pw-1")):
        bag = parse_bag(copy.deepcopy(raw))
        assert secret not in repr(bag) and secret not in str(bag)
    bag = parse_bag(s2s())
    assert "100.64.30.1" in repr(bag)  # the rest is shown


def test_desired_state_repr_hides_secrets() -> None:
    from .helpers import desired

    d = desired(s2s(), ra(), users(("alice", "Alice-Pw-1", True)))
    text = repr(d)
    for secret in (PSK, "l2tp-psk", "Alice-Pw-1"):
        assert secret not in text and secret.encode().hex() not in text


# -- charon's SAs ----------------------------------------------------------------------------

INDEX = {"conns": {
    "vpn-100-64-30-1": {"peer": "100.64.30.1", "initiate": True,
                        "children": ["vpn-100-64-30-1"]},
    "vpn-100-64-40-1": {"peer": "100.64.40.1", "initiate": True,
                        "children": ["vpn-100-64-40-1", "vpn-100-64-40-1-2"]},
    "vpn-id--b-example-org": {"peer": "id-@b.example.org", "initiate": False,
                              "children": ["vpn-id--b-example-org"]},
    "remote-access": {"peer": "", "initiate": False, "children": ["remote-access"]},
}}


def _ike(name: str, *children: str, state: str = "ESTABLISHED", child_state: str = "INSTALLED",
         **extra: Any) -> dict[str, Any]:
    return {"name": name, "state": state, **extra,
            "child-sas": {f"{c}-{i}": {"name": c, "state": child_state, "bytes-in": str(10 * i),
                                       "bytes-out": str(20 * i)}
                          for i, c in enumerate(children, 1)}}


ALL_UP = [_ike("vpn-100-64-30-1", "vpn-100-64-30-1"),
          _ike("vpn-100-64-40-1", "vpn-100-64-40-1", "vpn-100-64-40-1-2")]


def _fake(monkeypatch: pytest.MonkeyPatch, sas: list[dict[str, Any]] | None,
          index: dict[str, Any] | None = None) -> None:
    monkeypatch.setattr(stats, "_sas", lambda settings: sas)
    monkeypatch.setattr(stats, "_index", lambda settings: INDEX if index is None else index)


UP = "{}:0:IPsec SA found;Site-to-site VPN have connected&"
DOWN = "{}:11:IPsec SA not found;Site-to-site VPN have not connected&"


def test_check_batch_all_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, ALL_UP)
    assert stats.check_batch(SETTINGS, ["100.64.30.1", "100.64.40.1"]) == (
        "100.64.30.1:0:IPsec SA found;Site-to-site VPN have connected&"
        "100.64.40.1:0:IPsec SA found;Site-to-site VPN have connected&")


def test_check_batch_a_missing_child_is_not_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, [ALL_UP[0], _ike("vpn-100-64-40-1", "vpn-100-64-40-1")])
    assert stats.check_batch(SETTINGS, ["100.64.30.1", "100.64.40.1"]) == (
        UP.format("100.64.30.1") + DOWN.format("100.64.40.1"))


@pytest.mark.parametrize("sas", [
    [], None,
    [_ike("vpn-100-64-30-1", "vpn-100-64-30-1", state="CONNECTING")],
    [_ike("vpn-100-64-30-1", "vpn-100-64-30-1", child_state="REKEYING")],
    [_ike("vpn-100-64-30-1")],  # IKE SA only (upstream's check said connected)
    [_ike("vpn-100-64-40-1", "vpn-100-64-30-1")],  # someone else's SA
])
def test_check_batch_not_connected(monkeypatch: pytest.MonkeyPatch,
                                   sas: list[dict[str, Any]] | None) -> None:
    _fake(monkeypatch, sas)
    assert stats.check_batch(SETTINGS, ["100.64.30.1"]) == DOWN.format("100.64.30.1")


def test_check_batch_unknown_peer_and_no_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, ALL_UP)
    assert stats.check_batch(SETTINGS, ["100.64.99.9", "100.64.30.1"]) == (
        DOWN.format("100.64.99.9") + UP.format("100.64.30.1"))
    assert stats.check_batch(SETTINGS, []) == ""
    _fake(monkeypatch, ALL_UP, index={})
    assert stats.check_batch(SETTINGS, ["100.64.30.1"]) == DOWN.format("100.64.30.1")


def test_check_batch_parses_as_cloudstack_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # CheckS2SVpnConnectionsAnswer.parseDetails: split on '&', then on ':' into 3.
    _fake(monkeypatch, [ALL_UP[0]])
    out = stats.check_batch(SETTINGS, ["100.64.30.1", "100.64.40.1"])
    entries = [e.split(":") for e in out.split("&") if e]
    assert [(w[0], w[1] == "0") for w in entries] == [("100.64.30.1", True),
                                                      ("100.64.40.1", False)]
    assert all(len(w) == 3 for w in entries)


def test_peer_up_needs_every_child() -> None:
    children = ["vpn-100-64-40-1", "vpn-100-64-40-1-2"]
    assert stats.peer_up(ALL_UP, "vpn-100-64-40-1", children)
    assert not stats.peer_up([_ike("vpn-100-64-40-1", "vpn-100-64-40-1")], "vpn-100-64-40-1",
                             children)
    assert not stats.peer_up([], "vpn-100-64-40-1", children)


def test_main_prints_the_answer(monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    _fake(monkeypatch, ALL_UP)
    monkeypatch.setattr(Settings, "from_env", classmethod(lambda cls: SETTINGS))
    assert stats.main(["100.64.30.1"]) == 0
    assert capsys.readouterr().out == UP.format("100.64.30.1")
    assert stats.main(["100.64.30.1;reboot"]) == 1
    assert stats.main(["1.2.3.4\n"]) == 1
    assert capsys.readouterr().out == ""


def test_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    clients = [{"name": "remote-access", "state": "ESTABLISHED", "remote-eap-id": "alice",
                "child-sas": {}}] * 2
    _fake(monkeypatch, [ALL_UP[0], _ike("vpn-100-64-40-1", "vpn-100-64-40-1"), *clients])
    got = {m.name: m for m in stats.metrics(SETTINGS)}
    assert dict(got["vragent_ipsec_peer_up"].samples) == {
        ("100.64.30.1",): 1.0, ("100.64.40.1",): 0.0, ("id-@b.example.org",): 0.0}
    assert got["vragent_ipsec_peer_up"].kind == "gauge"
    assert dict(got["vragent_ipsec_bytes_in"].samples) == {
        ("100.64.30.1", "vpn-100-64-30-1"): 10.0, ("100.64.40.1", "vpn-100-64-40-1"): 10.0}
    assert dict(got["vragent_ipsec_bytes_out"].samples) == {
        ("100.64.30.1", "vpn-100-64-30-1"): 20.0, ("100.64.40.1", "vpn-100-64-40-1"): 20.0}
    assert got["vragent_ipsec_bytes_in"].kind == "counter"
    assert dict(got["vragent_ipsec_remote_access_clients"].samples) == {(): 2.0}


def test_metrics_without_charon_or_config(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, None)
    got = {m.name: m for m in stats.metrics(SETTINGS)}
    assert set(dict(got["vragent_ipsec_peer_up"].samples).values()) == {0.0}
    assert dict(got["vragent_ipsec_remote_access_clients"].samples) == {(): 0.0}
    _fake(monkeypatch, ALL_UP, index={})
    assert stats.metrics(SETTINGS) == []


# -- vpn_check.py -------------------------------------------------------------------------------

CHECK = next(c for c in all_checks() if c.name == "vpn_check.py")


class _Ctx:
    settings = SETTINGS


def _run(monkeypatch: pytest.MonkeyPatch, sas: list[dict[str, Any]] | None,
         index: dict[str, Any] | None = None) -> tuple[bool, str]:
    _fake(monkeypatch, sas, index)
    out = CHECK.run(_Ctx())
    return out.success, out.message


def test_check_all_up(monkeypatch: pytest.MonkeyPatch) -> None:
    assert CHECK.kind == "advanced"
    # The passive identity peer is not required up.
    assert _run(monkeypatch, ALL_UP) == (
        True, "All 3 site-to-site VPN(s) up (or waiting for passive peers)")


def test_check_a_peer_down(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(monkeypatch, [ALL_UP[0], _ike("vpn-100-64-40-1", "vpn-100-64-40-1")]) == (
        False, "site-to-site VPN down: 100.64.40.1")
    assert _run(monkeypatch, []) == (False, "site-to-site VPN down: 100.64.30.1, 100.64.40.1")


def test_check_charon_not_answering(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(monkeypatch, None) == (False, "charon is not answering: 3 site-to-site VPN(s) down")


def test_check_nothing_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    only_ra = {"conns": {"remote-access": INDEX["conns"]["remote-access"]}}
    for index in ({}, only_ra):
        assert _run(monkeypatch, None, index) == (
            True, "No site-to-site VPN configured, skipping")
