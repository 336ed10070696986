"""L2TP/IPsec, the client type CloudStack's own clients use: the IKEv1
transport-mode connection, xl2tpd.conf, the ppp options and chap-secrets, the
pool shared with IKEv2, the render without L2TP (a kernel without ESP or
PPP), and an injection corpus through the users' names and passwords as pppd
reads chap-secrets.

Upstream: systemvm/debian/opt/cloud/bin/configure.py (CsRemoteAccessVpn,
CsVpnUser: "%s * %s *" % (user, password) into /etc/ppp/chap-secrets),
systemvm/debian/opt/cloud/bin/cs/CsRemoteAccessVpn.py (conn L2TP-PSK:
keyexchange=ikev1, type=transport, leftprotoport=17/1701, forceencaps=yes,
authby=psk), systemvm/debian/etc/xl2tpd/xl2tpd.conf and
systemvm/debian/etc/ppp/options.xl2tpd; pppd's reading of the file:
ppp-project/ppp pppd/options.c getword and pppd/auth.c scan_authfile.
"""

from __future__ import annotations

import json

import pytest
from vragent.bags import parse_bag
from vragent.features.vpn import subsystem

from tests.unit.subsystems.golden_files import check_golden

from .helpers import (
    PUBLIC,
    chap_secrets,
    desired,
    ppp_words,
    ra,
    refused,
    s2s,
    sections,
    structure,
    users,
)

L2TP = ("connections", "L2TP-PSK")


def _conn(text: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index("\tL2TP-PSK {")
    end = lines.index("\t}", start)
    return [line.strip() for line in lines[start + 1:end]]


def test_the_l2tp_connection() -> None:
    files = subsystem.render(desired(ra(), users(("alice", "Alice-Pw-1", True))))
    text = files["swanctl.conf"]
    conn = _conn(text)
    for setting in ("version = 1", f"local_addrs = {PUBLIC}", "remote_addrs = %any",
                    "encap = yes", "mode = transport", "local_ts = dynamic[udp/1701]",
                    "remote_ts = dynamic[udp]", "auth = psk"):
        assert setting in conn, setting
    assert {L2TP, (*L2TP, "local"), (*L2TP, "remote"), (*L2TP, "children"),
            (*L2TP, "children", "L2TP-PSK")} <= sections(text)
    # The PSK is the wildcard secret: no identities, so every peer's own PSK outranks it.
    secret = text[text.index("\tike-L2TP-PSK {"):]
    secret = secret[:secret.index("\t}") + 2]
    assert secret.splitlines()[1:] == ["\t\tsecret = 0x" + b"l2tp-psk".hex(), "\t}"]
    index = json.loads(files["ipsec-index.json"])["conns"]["L2TP-PSK"]
    assert index["initiate"] is False and index["children"] == ["L2TP-PSK"]


def test_xl2tpd_ppp_and_chap_secrets() -> None:
    files = subsystem.render(desired(ra(), users(("bob", "b-pw", True),
                                                 ("alice", "a-pw", True))))
    conf = [line for line in files["xl2tpd.conf"].splitlines() if not line.startswith(";")]
    assert conf == [
        "[global]", f"listen-addr = {PUBLIC}", "port = 1701", "force userspace = yes", "",
        "[lns default]",
        "ip range = 10.1.2.2-10.1.2.4", "local ip = 10.1.2.1", "require chap = yes",
        "refuse pap = yes", "require authentication = yes", "name = vragent-l2tp",
        "pppoptfile = /nonexistent/vragent-unit/etc/vragent/options.xl2tpd", "length bit = yes"]
    options = ppp_words(files["options.xl2tpd"])
    assert ["ms-dns", "10.1.2.1"] in options and ["auth"] in options
    assert ["logfile", "/nonexistent/vragent-unit/var/log/vragent/pppd.log"] in options
    assert chap_secrets(files["chap-secrets"]) == [("alice", "*", "a-pw", "*"),
                                                   ("bob", "*", "b-pw", "*")]


@pytest.mark.parametrize(("ip_range", "l2tp", "ikev2"), [
    ("10.1.2.2-10.1.2.8", "10.1.2.2-10.1.2.4", "10.1.2.5-10.1.2.8"),
    ("10.1.2.2-10.1.2.9", "10.1.2.2-10.1.2.5", "10.1.2.6-10.1.2.9"),
    ("10.1.2.2-10.1.2.3", "10.1.2.2-10.1.2.2", "10.1.2.3-10.1.2.3"),
    ("10.1.2.250-10.1.3.5", "10.1.2.250-10.1.2.255", "10.1.3.0-10.1.3.5"),
])
def test_l2tp_and_ikev2_share_the_range(ip_range: str, l2tp: str, ikev2: str) -> None:
    d = desired(ra(ip_range=ip_range))
    assert d.remote is not None and d.remote.l2tp is not None
    assert (d.remote.l2tp.pool, d.remote.pool, d.remote.range) == (l2tp, ikev2, ip_range)


def test_one_address_is_ikev2s() -> None:
    d = desired(ra(ip_range="10.1.2.2-10.1.2.2"))
    assert d.remote is not None and d.remote.l2tp is None
    assert d.remote.pool == "10.1.2.2-10.1.2.2"


@pytest.mark.parametrize("missing", ["preshared_key", "local_ip"])
def test_no_l2tp_without_its_psk_or_local_ip(missing: str) -> None:
    raw = ra()
    del raw[missing]
    d = desired(raw)
    assert d.remote is not None and d.remote.l2tp is None
    assert d.remote.pool == "10.1.2.2-10.1.2.8"
    files = subsystem.render(d)
    assert "L2TP-PSK" not in files["swanctl.conf"] + files["ipsec-index.json"]
    assert files["xl2tpd.conf"] == files["options.xl2tpd"] == files["chap-secrets"] == ""


def test_a_local_ip_inside_the_range_is_refused() -> None:
    d = desired(ra(local_ip="10.1.2.4"), check=False)
    problems = subsystem.verify(d)
    assert problems == ["remoteaccessvpn: local_ip 10.1.2.4 is inside ip_range "
                        "10.1.2.2-10.1.2.8"]


def test_without_l2tp_is_the_render_of_a_kernel_without_esp_or_ppp() -> None:
    d = desired(s2s(), ra(), users(("alice", "Alice-Pw-1", True)))
    files = subsystem.render(subsystem.without_l2tp(d))
    assert files["xl2tpd.conf"] == files["options.xl2tpd"] == files["chap-secrets"] == ""
    assert "L2TP" not in files["swanctl.conf"] + files["ipsec-index.json"]
    assert "\t\taddrs = 10.1.2.2-10.1.2.8\n" in files["swanctl.conf"]
    assert structure(files["swanctl.conf"])
    # Everything else is as with L2TP.
    with_it = subsystem.render(d)
    assert files["strongswan.conf"] == with_it["strongswan.conf"]
    # (In a folder of its own: the golden files of the folder are the subsystems'.)
    check_golden("vpn/vpc_without_l2tp.txt", files.text())


def test_the_status() -> None:
    d = desired(ra())
    assert subsystem.l2tp_status(d, "") == {"configured": True, "served": True, "why": ""}
    assert subsystem.l2tp_status(d, "no PPP") == {"configured": True, "served": False,
                                                  "why": "no PPP"}
    raw = ra()
    del raw["preshared_key"]
    assert subsystem.l2tp_status(desired(raw), "no PPP") == {
        "configured": False, "served": False, "why": ""}


# -- pppd's reading of the files -------------------------------------------------------------


@pytest.mark.parametrize(("text", "words"), [
    ('a "b c" d\n', [["a", "b c", "d"]]),
    ("a 'b\"c' # comment\nd", [["a", 'b"c'], ["d"]]),
    ('"a\\"b\\\\c"', [['a"b\\c']]),
    ("a\\sb \\101\\x42", [["a b", "AB"]]),
    ('"#x"#y', [["#x"]]),
])
def test_ppp_words(text: str, words: list[list[str]]) -> None:
    assert ppp_words(text) == words


# -- the injection corpus through chap-secrets ---------------------------------------------

PAYLOADS = ['"', "'", "\\", "*", " ", "  ", "#", "# x", "\\n", "\\\"", '" * "x" *', "-", "=",
            "include /etc/passwd", "file /etc/shadow", "x\\", "\\101", "\\x41", "é", "%any",
            "* *", "'\"'"]
CONTROL = ["\n", "\r", "\x00", "\t", "\x1b", "\x7f", "\u2028", "\x85"]


@pytest.mark.parametrize("where", ["start", "in", "end", "alone"])
@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_password_reaches_pppd_as_it_is(payload: str, where: str) -> None:
    password = {"start": payload + "Pw1", "in": "Pw" + payload + "1", "end": "Pw1" + payload,
                "alone": payload}[where]
    parse_bag(users(("alice", password, True)))
    files = subsystem.render(desired(ra(), users(("alice", password, True),
                                                 ("bob", "Bob-Pw-2", True))))
    assert chap_secrets(files["chap-secrets"]) == [("alice", "*", password, "*"),
                                                   ("bob", "*", "Bob-Pw-2", "*")]
    if where != "alone":  # (a lone "*" or "=" is in any file)
        for name, body in files.files:
            if name != "chap-secrets":  # nothing else holds it in the clear
                assert password not in body, name


def _password_refused(password: str, *unshown: str) -> str:
    exc = refused(users(("alice", password, True)))
    assert [p.split(":")[0] for p in exc.problems] == ["vpn_users.0.password"], exc.problems
    for s in (password, *unshown):
        assert s not in str(exc)
    return exc.problems[0]


@pytest.mark.parametrize("payload", CONTROL)
def test_a_control_character_in_a_password_is_refused(payload: str) -> None:
    _password_refused("Qz7x" + payload + "Kw9y", "Qz7x", "Kw9y")


@pytest.mark.parametrize("password", ["@/etc/shadow", "@x-Pw-1", "@../Pw"])
def test_a_password_that_names_a_file_is_refused(password: str) -> None:
    # pppd reads a secret that starts with '@' from the file it names, quoted or not.
    problem = _password_refused(password)
    assert "'@'" in problem


def test_a_password_pppd_would_cut_is_refused() -> None:
    parse_bag(users(("alice", "x" * 255, True)))
    assert "255 bytes" in _password_refused("é" * 128)


@pytest.mark.parametrize("payload", ['"', "'", "*", " ", "#", "\\", "\n", "\x00", "@", "é",
                                     "/", "%", "=", ":"])
@pytest.mark.parametrize("where", ["start", "in", "end"])
def test_a_user_name_that_pppd_could_misread_is_refused(payload: str, where: str) -> None:
    user = {"start": payload + "alice", "in": "al" + payload + "ice",
            "end": "alice" + payload}[where]
    if user[0].isalnum() and all(c.isascii() and (c.isalnum() or c in "_.@+-") for c in user):
        # '@' inside a name is an address's: quoted, it is a plain word.
        files = subsystem.render(desired(ra(), users((user, "Pw-1", True))))
        assert chap_secrets(files["chap-secrets"]) == [(user, "*", "Pw-1", "*")]
        return
    exc = refused(users((user, "Pw-1", True)))
    assert [p.split(":")[0] for p in exc.problems] == ["vpn_users.0.user"], exc.problems


def test_every_chap_secrets_line_is_one_entry() -> None:
    listed = [(f"user{i}", p + str(i), True) for i, p in enumerate(PAYLOADS)]
    files = subsystem.render(desired(ra(), users(*listed)))
    got = chap_secrets(files["chap-secrets"])
    assert got == sorted((u, "*", p, "*") for u, p, _ in listed)
    body = [line for line in files["chap-secrets"].splitlines() if not line.startswith("#")]
    assert len(body) == len(listed)


def test_chap_secrets_as_an_operator_sees_it() -> None:
    """getDiagnosticsData's zip: the users, no password (upstream's path names it)."""
    from vragent.features.vpn.daemon import chap_secrets as path_of
    from vragent.features.vpn.daemon import chap_shown, daemons

    from tests.unit.builders import settings

    listed = [(f"user{i}", p + str(i), True) for i, p in enumerate(PAYLOADS)]
    text = subsystem.render(desired(ra(), users(*listed)))["chap-secrets"]
    shown = chap_shown(text)
    for _, password, _ in listed:
        assert f'"{password}"' not in shown and password.replace('"', '\\"') not in shown
    assert chap_secrets(shown) == [(u, "*", "(secret, not shown)", "*") for u, _, _ in
                                   sorted(listed)]
    assert chap_shown('"alice" * "x" * 10.1.2.2\n') == "# (secret, not shown)\n"
    xl2tpd = next(d for d in daemons(settings()) if d.name == "xl2tpd")
    by_path = {s.path: s for s in xl2tpd.shown}
    assert by_path[path_of(settings())].upstream == ("/etc/ppp/chap-secrets",)
    assert by_path[path_of(settings())].redact is chap_shown
