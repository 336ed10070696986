"""Injection corpus: every string the three VPN bags carry, with what could
smuggle a section, a setting, a secret, an include or a path into swanctl.conf.
What reaches the configuration is refused whole, naming the field, never
echoing a secret nor a raw control character; PSKs and passwords take any
printable character and reach swanctl.conf only hex-encoded.

Upstream: the facades (core/.../virtualnetwork/facade/Site2SiteVpnConfigItem.java,
RemoteAccessVpnConfigItem.java, VpnUsersConfigItem.java) and
systemvm/debian/opt/cloud/bin/configure.py, which writes the values into ipsec.conf.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from vragent.bags import parse_bag
from vragent.errors import BagError
from vragent.features.vpn import subsystem

from .helpers import (
    PSK,
    chap_secrets,
    desired,
    ra,
    refused,
    s2s,
    sections,
    structure,
    swanctl,
    users,
)

PASSWORD = "Alice-Pw-1"
RA_PSK = "l2tp-psk"

# (Spaces around items of a list or range are CloudStack's own: stripped.)
CHARACTERS = ["\n", "\r", "\x00", '"', "'", "{", "}", "#", "\t", "\x1b", "\u2028", "\x85"]
WORDS = ["secret = x", "include /etc/passwd", "connections {", "children", "auth = never",
         "%any", "include", "/etc/shadow", "../x", "}\nsecrets {", "\n\tid = %any"]
# (where, payload): a character inside the value or after it, a word after a
# line break or a space, or in place of the value.
PAYLOADS = ([("in", c) for c in CHARACTERS] + [("end", c) for c in CHARACTERS]
            + [("line", w) for w in WORDS] + [("space", w) for w in WORDS]
            + [("replace", w) for w in WORDS])


def _base(bag: str) -> dict[str, Any]:
    if bag == "site2sitevpn":
        return s2s(peer_id="vpn.example.org")
    if bag == "remoteaccessvpn":
        return ra()
    return users(("alice", PASSWORD, True), vpn_type="l2tp")


# label -> (bag, path in it, the field named in the error)
FIELDS: dict[str, tuple[str, tuple[Any, ...], str]] = {
    **{f: ("site2sitevpn", (f,), f) for f in (
        "local_public_ip", "local_guest_cidr", "local_public_gateway", "peer_gateway_ip",
        "peer_guest_cidr_list", "esp_policy", "ike_policy", "ike_version", "peer_id")},
    **{f: ("remoteaccessvpn", (f,), f) for f in (
        "ip_range", "vpn_server_ip", "local_ip", "local_cidr", "public_interface")},
    "user": ("vpnuserlist", ("vpn_users", 0, "user"), "vpn_users.0.user"),
    "vpn_type": ("vpnuserlist", ("vpn_type",), "vpn_type"),
}
SECRETS: dict[str, tuple[str, tuple[Any, ...], str]] = {
    "ipsec_psk": ("site2sitevpn", ("ipsec_psk",), "ipsec_psk"),
    "preshared_key": ("remoteaccessvpn", ("preshared_key",), "preshared_key"),
    "password": ("vpnuserlist", ("vpn_users", 0, "password"), "vpn_users.0.password"),
}
# A bare word is a legitimate host name, identity or user name ("include" is
# a host): accepted, and test_bare_words_are_only_names shows it stays a value.
NAMES = {"peer_gateway_ip", "peer_id", "user", "vpn_type", "public_interface"}


def _poison(value: str, where: str, payload: str) -> str:
    if where == "in":
        return value[:len(value) // 2] + payload + value[len(value) // 2:]
    if where == "end":
        return value + payload
    if where == "start":
        return payload + value
    if where == "line":
        return value + "\n" + payload
    if where == "space":
        return value + " " + payload
    return payload


def _set(raw: dict[str, Any], path: tuple[Any, ...], value: str) -> str:
    parent: Any = raw
    for key in path[:-1]:
        parent = parent[key]
    old: str = parent[path[-1]]
    parent[path[-1]] = value
    return old


def _assert_clean(exc: BagError, field: str, *secrets: str) -> None:
    text = str(exc)
    assert any(p.startswith(f"{field}: ") for p in exc.problems), text
    for s in (PSK, PASSWORD, RA_PSK, *secrets):
        assert s not in text, f"{s!r} shown in {text!r}"
    for problem in exc.problems:
        assert problem.isprintable(), problem
    # The message's own line breaks are its only control characters.
    assert all(c.isprintable() or c == "\n" for c in text)


def _cases() -> list[Any]:
    return [pytest.param(label, where, payload, id=f"{label}-{where}-{payload!r}")
            for label in FIELDS for where, payload in PAYLOADS
            if not (where == "replace" and label in NAMES and payload.isalpha())]


def test_the_bases_are_accepted() -> None:
    for bag in ("site2sitevpn", "remoteaccessvpn", "vpnuserlist"):
        parse_bag(_base(bag))
    assert len(FIELDS) + len(SECRETS) == 19  # every string field of the three bags


@pytest.mark.parametrize(("label", "where", "payload"), _cases())
def test_configuration_injection_is_refused(label: str, where: str, payload: str) -> None:
    bag, path, field = FIELDS[label]
    raw = _base(bag)
    old = _set(raw, path, "")
    _set(raw, path, _poison(old, where, payload))
    _assert_clean(refused(raw), field)


# -- secrets: any printable character, hex-encoded -------------------------------------------

PRINTABLE = ['"', "'", "{", "}", "#", "\\", "include /etc/passwd", "secret = x", "connections {",
             "auth = never", "%any", "children", "/etc/shadow", "../x", " ", "=", "é"]
CONTROL = ["\n", "\r", "\x00", "\t", "\x1b", "\x7f", "\u2028", "\x85"]


def _full(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [s2s(), ra(), users(("alice", PASSWORD, True)), *extra]


BASELINE = structure(swanctl(*_full()))


def test_the_baseline_structure() -> None:
    peer, remote = ("connections", "vpn-100-64-30-1"), ("connections", "remote-access")
    l2tp = ("connections", "L2TP-PSK")
    assert sections(swanctl(*_full())) == {
        ("connections",), peer, (*peer, "local"), (*peer, "remote"), (*peer, "children"),
        (*peer, "children", "vpn-100-64-30-1"), remote, (*remote, "local"),
        (*remote, "remote"), (*remote, "children"), (*remote, "children", "remote-access"),
        ("pools",), ("pools", "remote-access"), ("secrets",),
        ("secrets", "ike-vpn-100-64-30-1"),
        ("secrets", "eap-0-alice"), l2tp, (*l2tp, "local"), (*l2tp, "remote"),
        (*l2tp, "children"), (*l2tp, "children", "L2TP-PSK"), ("secrets", "ike-L2TP-PSK")}
    assert [p for p in BASELINE if p[0] == "secrets" and p[-1] == "secret="] == [
        ("secrets", "ike-vpn-100-64-30-1", "secret="), ("secrets", "eap-0-alice", "secret="),
        ("secrets", "ike-L2TP-PSK", "secret=")]


@pytest.mark.parametrize("payload", PRINTABLE)
@pytest.mark.parametrize("where", ["in", "end", "start"])
@pytest.mark.parametrize("label", sorted(SECRETS))
def test_a_printable_secret_is_accepted_and_hex_encoded(label: str, where: str,
                                                        payload: str) -> None:
    bag, path, _ = SECRETS[label]
    bags = _full()
    raw = next(b for b in bags if b["type"] == bag)
    secret = _poison(_set(raw, path, ""), where, payload)
    _set(raw, path, secret)
    parse_bag(copy.deepcopy(raw))
    files = subsystem.render(desired(*bags))
    text = files["swanctl.conf"]
    assert "secret = 0x" + secret.encode().hex() in text
    for name, body in files.files + files.index:
        if name != "chap-secrets":  # it holds the passwords as pppd reads them
            assert secret not in body, name
    assert structure(text) == BASELINE
    # pppd reads back exactly the users and passwords, one line each.
    assert chap_secrets(files["chap-secrets"]) == [
        ("alice", "*", secret if label == "password" else PASSWORD, "*")]


@pytest.mark.parametrize("payload", CONTROL)
@pytest.mark.parametrize("where", ["in", "end", "replace"])
@pytest.mark.parametrize("label", sorted(SECRETS))
def test_a_control_character_in_a_secret_is_refused_unshown(label: str, where: str,
                                                            payload: str) -> None:
    bag, path, field = SECRETS[label]
    raw = _base(bag)
    secret = _poison(_set(raw, path, ""), where, "Qz7x" + payload + "Kw9y")
    _set(raw, path, secret)
    exc = refused(raw)
    _assert_clean(exc, field, secret, "Qz7x", "Kw9y")


@pytest.mark.parametrize("label", sorted(SECRETS))
def test_a_long_or_empty_secret_is_refused_unshown(label: str) -> None:
    bag, path, field = SECRETS[label]
    for secret in ("", "S" * 257):
        raw = _base(bag)
        _set(raw, path, secret)
        _assert_clean(refused(raw), field, "S" * 20)


def test_bare_words_are_only_names() -> None:
    # A host called "include", a peer known as "children", a user "include":
    # values of their settings, never statements.
    text = swanctl(s2s(peer_gateway_ip="include"),
                   s2s(peer_gateway_ip="0.0.0.0", peer_id="children",
                       peer_guest_cidr_list="10.50.0.0/24"),
                   ra(), users(("include", PASSWORD, True), ("children", "pw", True)))
    got = sections(text)
    assert ("connections", "vpn-include") in got
    assert ("connections", "vpn-id-children", "children", "vpn-id-children") in got
    assert {p[1] for p in got if p[0] == "secrets" and len(p) == 2} == {
        "ike-vpn-include", "ike-vpn-id-children", "eap-0-children",
        "eap-1-include", "ike-L2TP-PSK"}
    assert not any(line.strip().startswith("include") for line in text.splitlines())
    assert "\t\tremote_addrs = include\n" in text and "\t\tid-remote = children\n" in text
    assert "\teap-1-include {\n\t\tid = include\n" in text


def test_every_field_named_with_several_problems() -> None:
    raw = s2s(local_public_ip="1.2.3.4\n", ike_policy="aes128-sha1", ipsec_psk="a\nb")
    exc = refused(raw)
    assert sorted(p.split(":")[0] for p in exc.problems) == [
        "ike_policy", "ipsec_psk", "local_public_ip"]
    _assert_clean(exc, "ipsec_psk", "a\nb")
