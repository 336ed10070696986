"""Injection corpus: every string the loadbalancer bag carries, with what could
smuggle a section, directive, socket, file path or bind into haproxy.cfg.
Each is refused whole, naming the field, never echoing a secret or a raw
control character; and what is accepted renders only what the template writes.

Upstream: core/src/main/java/com/cloud/network/HAProxyConfigurator.java (what
the lines can be), systemvm/debian/opt/cloud/bin/cs/CsLoadBalancer.py (which
writes them as sent).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from vragent.errors import BagError
from vragent.features.loadbalancer import subsystem
from vragent.features.loadbalancer.daemon import CONF
from vragent_lab import loadbalancer as lb

from tests.unit.builders import lb_bag, tls_pair

from .helpers import PASSWORD, PUBLIC, bag, command, desired, refused, rendered, rule_of

KEY = tls_pair()[1]
# The key's body (its base64 lines): none may ever be shown.
KEY_BODY = [line for line in KEY.splitlines() if line and not line.startswith("-----")]

# -- payloads ------------------------------------------------------------------------------

# Single characters: put inside a token (at its middle).
CHARACTERS = ["\n", "\r", "#", "{", "}", "'", '"', "\x00", "\\", "\x1b", "\u00e9"]
# Whole lines, sections, inline words: put right after a token.
APPENDED = [
    "\n\tlua-load /tmp/x.lua",
    "\tlua-load /tmp/x.lua",
    "\n\thttp-request redirect location http://evil",
    "\thttp-request redirect location http://evil",
    "\n\thttp-request set-header X-A b",
    "\n\ttcp-request content accept",
    "\nfrontend x",
    "\nbackend y",
    "\nuserlist u",
    "\nprogram p",
    "\npeers p",
    "\nresolvers r",
    "\ncache c",
    "\nglobal",
    "\ndefaults",
    "\n\tbind 100.64.10.11:8080",
    "\n\tbind 100.64.10.11:80",
    "\n\tbind unix@/tmp/s",
    "\n\tbind 100.64.10.11:80 ssl crt /etc/shadow",
    " ssl crt /etc/shadow",
    "\n\tstats socket /tmp/evil.sock",
    "\n\tstats socket ipv4@0.0.0.0:9999",
    "\tstats socket /tmp/evil.sock",
    "\n\tchroot /",
    "\n\terrorfile 503 /etc/shadow",
    "\n\tca-file /etc/shadow",
    "\n\tserver x 10.0.0.1:80 check\n\tlisten evil",
    "\n\tserver x 10.0.0.1:80 check\nlisten evil",
    "\tserver x 10.0.0.1:80 check\n\tlisten evil",
    "\nlisten evil\n\tbind 100.64.10.11:80\n\tserver x 10.0.0.1:80 check",
    "\nlisten evil\n\tbind 100.64.10.99:80\n\tserver x 10.0.0.1:80 check",
]
PAYLOADS = [("in", p) for p in CHARACTERS] + [("after", p) for p in APPENDED]


def _inject(value: str, anchor: str, where: str, payload: str) -> str:
    i = value.index(anchor)
    cut = i + len(anchor) // 2 if where == "in" else i + len(anchor)
    return value[:cut] + payload + value[cut:]


# -- the bag's configuration lines ---------------------------------------------------------


def _app_cookie() -> dict[str, Any]:
    return bag(command(lb.Rule(PUBLIC, 8080, [("10.10.1.10", 8080)], sticky=(
        "AppCookie", {"cookie-name": "JSESSIONID", "request-learn": "",
                      "mode": "query-string"}))))


def _dummy() -> dict[str, Any]:
    return bag(command())


# label -> (bag, the item holding it (equal, else containing), the token)
LINES: dict[str, tuple[Callable[[], dict[str, Any]], str, str]] = {
    "global": (lb_bag, "global", "global"),
    "global log": (lb_bag, "\tlog 127.0.0.1:3914   local0 warning", "127.0.0.1:3914"),
    "global maxconn": (lb_bag, "\tmaxconn 4096", "4096"),
    "global maxpipes": (lb_bag, "\tmaxpipes 1024", "1024"),
    "global chroot": (lb_bag, "\tchroot /var/lib/haproxy", "/var/lib/haproxy"),
    "global user": (lb_bag, "\tuser haproxy", "haproxy"),
    "global daemon": (lb_bag, "\tdaemon", "daemon"),
    "defaults": (lb_bag, "defaults", "defaults"),
    "defaults mode": (lb_bag, "\tmode    tcp", "tcp"),
    "defaults retries": (lb_bag, "\tretries 3", "3"),
    "defaults option": (lb_bag, "\toption redispatch", "redispatch"),
    "defaults forceclose": (lb_bag, "\toption forceclose", "forceclose"),
    "timeout connect": (lb_bag, "\ttimeout connect    5000", "5000"),
    "timeout client": (lb_bag, "\ttimeout client     50000", "50000"),
    "timeout server": (lb_bag, "\ttimeout server     50000", "50000"),
    "listen name": (lb_bag, "listen 100_64_10_11-80", "100_64_10_11-80"),
    "bind": (lb_bag, "\tbind 100.64.10.11:80", "100.64.10.11:80"),
    "ssl bind crt": (lb_bag, "\tbind 100.64.10.11:443", "/etc/cloudstack/ssl/"),
    "ssl bind options": (lb_bag, "\tbind 100.64.10.11:443", "no-tls-tickets"),
    "ssl bind ciphers": (lb_bag, "\tbind 100.64.10.11:443", "ECDHE-RSA-AES256"),
    "balance": (lb_bag, "\tbalance roundrobin", "roundrobin"),
    "server name": (lb_bag, "\tserver 100_64_10_11-80_0", "100_64_10_11-80_0"),
    "server address": (lb_bag, "\tserver 100_64_10_11-80_0", "10.10.1.10:80"),
    "server options": (lb_bag, "\tserver 100_64_10_11-80_0", "cookie 10_10_1_10-80"),
    "cookie": (lb_bag, "\tcookie SRVID", "SRVID"),
    "cookie options": (lb_bag, "\tcookie SRVID", "nocache"),
    "listen mode": (lb_bag, "\tmode http", "http"),
    "option httpclose": (lb_bag, "\toption httpclose", "httpclose"),
    "stick-table": (lb_bag, "\tstick-table", "200k"),
    "stick-table expire": (lb_bag, "\tstick-table", "30m"),
    "stick on": (lb_bag, "\tstick-table", "src"),
    "appsession": (_app_cookie, "\tappsession", "JSESSIONID"),
    "appsession timeout": (_app_cookie, "\tappsession", "3h"),
    "appsession mode": (_app_cookie, "\tappsession", "query-string"),
    "stats listen name": (lb_bag, "stats enable", "stats_on_guest"),
    "stats bind": (lb_bag, "stats enable", "10.10.1.1:8081"),
    "stats enable": (lb_bag, "stats enable", "enable"),
    "stats uri": (lb_bag, "stats enable", "/admin?stats"),
    "stats realm": (lb_bag, "stats enable", "Haproxy"),
    "stats auth user": (lb_bag, "stats enable", "admin1"),
    "stats auth password": (lb_bag, "stats enable", PASSWORD),
    "dummy listen": (_dummy, "listen  vmops", "vmops"),
    "dummy bind": (_dummy, "\tbind 0.0.0.0:9", "0.0.0.0:9"),
    "dummy option": (_dummy, "\toption transparent", "transparent"),
}
# haproxy reads a single-quoted password whole: braces in it are its own characters.
HARMLESS = {("stats auth password", "{"), ("stats auth password", "}")}


def _item(items: list[str], marker: str) -> int:
    for i, item in enumerate(items):
        if item == marker:
            return i
    return next(i for i, item in enumerate(items) if marker in item)


def _config_cases() -> list[Any]:
    return [pytest.param(label, where, payload, id=f"{label}-{where}-{payload!r}")
            for label in LINES for where, payload in PAYLOADS
            if (label, payload) not in HARMLESS]


def _assert_clean(exc: BagError, *fields: str) -> str:
    text = str(exc)
    for f in fields:
        assert f in text, f"{f!r} not named in {text!r}"
    assert PASSWORD not in text
    assert "BEGIN PRIVATE KEY" not in text
    assert not any(body in text for body in KEY_BODY)
    for problem in exc.problems:
        assert problem.isprintable(), problem
    # The message's own line breaks are its only control characters.
    assert all(c.isprintable() or c == "\n" for c in text)
    return text


@pytest.mark.parametrize(("label", "where", "payload"), _config_cases())
def test_configuration_injection_is_refused(label: str, where: str, payload: str) -> None:
    make, marker, anchor = LINES[label]
    raw = make()
    rule_of(raw)  # the bag as CloudStack builds it is accepted
    items = raw["rules"][0]["configuration"]
    n = _item(items, marker)
    items[n] = _inject(items[n], anchor, where, payload)
    text = _assert_clean(refused(raw), "rules.0")
    # The item, or (a payload that is itself a valid line, such as a whole
    # listen) the next where it breaks the grammar.
    named = {int(m) for m in re.findall(r"configuration\[(\d+)\]", text)}
    assert named & {n, n + 1, n + 2}, text


# -- the bag's other fields ---------------------------------------------------------------

CERT = tls_pair()[0]


# label -> (path in the rule, a valid value, the token to inject at, the field named)
FIELDS: dict[str, tuple[tuple[Any, ...], str, str, str]] = {
    "add_rules": (("add_rules", 0), "100.64.10.11:2200:", "2200", "rules.0.add_rules"),
    "add_rules ip": (("add_rules", 0), "100.64.10.11:2200:", "100.64", "rules.0.add_rules"),
    "remove_rules": (("remove_rules",), "100.64.10.11:8000:", "8000", "rules.0.remove_rules"),
    "stat_rules": (("stat_rules", 0), "10.10.1.1:8081:0/0:,", "8081", "rules.0.stat_rules"),
    "stat_rules cidrs": (("stat_rules", 0), "10.10.1.1:8081:10.1.0.0/16:,", "10.1.0.0/16",
                         "rules.0.stat_rules"),
    "router_ip": (("router_ip",), "10.10.1.1", "10.10", "rules.0.router_ip"),
    "network_cidr": (("network_cidr",), "10.10.1.0/24", "10.10.1.0", "rules.0.network_cidr"),
    "ssl name": (("ssl_certs", 0, "name"), "100_64_10_11-443", "100_64_10_11",
                 "rules.0.ssl_certs.0.name"),
    "ssl cert": (("ssl_certs", 0, "cert"), CERT, "-----\n", "rules.0.ssl_certs.0.cert"),
    "ssl cert end": (("ssl_certs", 0, "cert"), CERT, "-----END", "rules.0.ssl_certs.0.cert"),
    "ssl key": (("ssl_certs", 0, "key"), KEY, "-----\n", "rules.0.ssl_certs.0.key"),
    "ssl key end": (("ssl_certs", 0, "key"), KEY, "-----END", "rules.0.ssl_certs.0.key"),
    "ssl chain": (("ssl_certs", 0, "chain"), CERT, "-----\n", "rules.0.ssl_certs.0.chain"),
    "ssl password": (("ssl_certs", 0, "password"), PASSWORD, PASSWORD,
                     "rules.0.ssl_certs.0.password"),
}


def _set(raw: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = raw["rules"][0]
    for step in path[:-1]:
        node = node[step]
    if isinstance(node, list) and path[-1] == len(node):
        node.append(value)
    elif isinstance(node, dict) and not isinstance(path[-1], int) and path[-1] not in node:
        node[path[-1]] = value
    elif isinstance(path[-1], str) and isinstance(node[path[-1]], list):
        node[path[-1]] = [value]
    else:
        node[path[-1]] = value


def _field_cases() -> list[Any]:
    return [pytest.param(label, where, payload, id=f"{label}-{where}-{payload!r}")
            for label in FIELDS for where, payload in PAYLOADS]


@pytest.mark.parametrize(("label", "where", "payload"), _field_cases())
def test_field_injection_is_refused(label: str, where: str, payload: str) -> None:
    path, valid, anchor, named = FIELDS[label]
    raw = lb_bag()
    if label != "ssl password":  # any password is refused: no valid one to start from
        _set(raw, path, valid)
        rule_of(raw)
    _set(raw, path, _inject(valid, anchor, where, payload))
    _assert_clean(refused(raw), named)


@pytest.mark.parametrize("payload", ["true", "false\n", "1", "yes", "\x00", "false\tlua-load"])
def test_is_transparent_takes_a_boolean_only(payload: str) -> None:
    raw = lb_bag()
    raw["rules"][0]["is_transparent"] = payload
    _assert_clean(refused(raw), "rules.0.is_transparent")


@pytest.mark.parametrize("field", ["cert", "chain"])
def test_a_key_sent_as_a_certificate_is_not_shown(field: str) -> None:
    raw = lb_bag()
    raw["rules"][0]["ssl_certs"][0][field] = KEY
    _assert_clean(refused(raw), f"rules.0.ssl_certs.0.{field}")


def test_a_key_sent_with_its_certificate_in_one_field_is_not_shown() -> None:
    raw = lb_bag()
    raw["rules"][0]["ssl_certs"][0]["cert"] = CERT + KEY
    _assert_clean(refused(raw), "rules.0.ssl_certs.0.cert")


@pytest.mark.parametrize("line", [
    "\tstats auth admin1:AdMiN123 #",
    "\tstats auth admin1:AdMiN123\tlua-load /tmp/x.lua",
    "\tstats auth admin1:AdMiN123 extra",
    "\tstats auth admin1 :AdMiN123",
    "\tstats auth admin1:AdMiN123\x00",
    "\tstats  auth\tadmin1:AdMiN123 ''",
    "\tstats\x00auth admin1:AdMiN123",
    "\tstats auth\\ admin1:AdMiN123",
    "stats auth admin1:AdMiN123",
])
def test_a_stats_password_line_refused_is_never_shown(line: str) -> None:
    raw = lb_bag()
    items = raw["rules"][0]["configuration"]
    n = _item(items, "stats enable")
    items[n] = items[n].replace("\tstats auth    admin1:AdMiN123", line)
    assert line in items[n]
    _assert_clean(refused(raw), "rules.0", f"configuration[{n}]")


@pytest.mark.parametrize(("section", "extra"), [
    ("global", ""), ("global", " x"), ("defaults", " x"), ("listen 100_64_10_11-80", " x")])
def test_a_stats_password_in_another_section_is_never_shown(section: str, extra: str) -> None:
    raw = lb_bag()
    items = raw["rules"][0]["configuration"]
    n = items.index(section)
    items[n] = f"{section}\n\tstats auth admin1:{PASSWORD}{extra}"
    text = _assert_clean(refused(raw), "rules.0", f"configuration[{n}] line 2")
    assert "admin1:(secret, not shown)" in text or "stats auth (secret, not shown)" in text


def test_a_password_cut_by_a_line_break_is_never_shown() -> None:
    raw = lb_bag()
    items = raw["rules"][0]["configuration"]
    n = _item(items, "stats enable")
    items[n] = items[n].replace("admin1:AdMiN123", "admin1:Ad\nMiN123x")
    text = _assert_clean(refused(raw), "rules.0", f"configuration[{n}]")
    assert "MiN123" not in text and "it follows 'stats auth'" in text


def test_a_section_refused_does_not_swallow_the_next() -> None:
    # The stats listen (item 20) is refused at its header because defaults'
    # stats are incomplete: its lines are still read as the listen's.
    raw = lb_bag()
    items = raw["rules"][0]["configuration"]
    items[9] = "defaults\n\tstats uri /x"
    text = str(refused(raw))
    assert "stats settings without 'stats enable'" in text
    assert "'bind 10.10.1.1:8081': defaults" not in text
    assert text.count("configuration[") == 1


def test_a_configuration_line_not_a_string_is_refused_without_echo() -> None:
    raw = lb_bag()
    raw["rules"][0]["configuration"].append({"stats auth": PASSWORD})
    _assert_clean(refused(raw), "rules.0.configuration")


# -- what is accepted renders only what the template writes ---------------------------------

# The first word of each line our template writes; some with their whole line fixed.
ALLOWED = {"global", "defaults", "listen", "bind", "mode", "balance", "option", "timeout",
           "server", "stats", "cookie", "stick-table", "stick", "maxconn", "fullconn",
           "http-request", "log", "chroot", "user", "group", "server-state-file",
           "load-server-state-from-file", "retries", "maxpipes", "ssl-default-bind-options",
           "default-server", "tcp-request"}
OPTIONS = {"httpclose", "forwardfor", "redispatch", "dontlognull"}
STATS = {"enable", "uri", "realm", "auth", "socket"}


def _check_allowed(text: str, d: Any) -> None:
    sections = 0
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        assert all(c.isprintable() or c == "\t" for c in line), line
        key = words[0]
        assert key in ALLOWED, line
        assert line.startswith("\t") == (key not in ("global", "defaults", "listen")), line
        if key in ("global", "defaults"):
            assert len(words) == 1
            sections += 1
        elif key == "listen":
            # The agent's own hold listener (system.haproxy.HOLD), or one the bag named.
            assert len(words) == 2 and (words[1] == "vragent-hold" or
                                        any(lst.name == words[1] for lst in d.listens))
        elif key == "option":
            assert len(words) == 2 and words[1] in OPTIONS, line
        elif key == "http-request":
            assert words == ["http-request", "set-header", "X-Forwarded-Proto", "https"]
        elif key == "stats":
            assert words[1] in STATS, line
            if words[1] == "socket":
                assert words == ["stats", "socket", d.socket, "mode", "600", "level", "admin"]
        elif key == "bind" and words[1].startswith("unix@"):
            assert words == ["bind", f"unix@{d.hold}", "mode", "600"], line
        elif key == "tcp-request":
            assert words in (["tcp-request", "inspect-delay", "120s"],
                             ["tcp-request", "content", "accept", "if", "WAIT_END"]), line
        elif key == "bind":
            assert re.fullmatch(r"[0-9.]+:[0-9]+", words[1]) and words[2] == "transparent"
            if len(words) > 3:
                assert words[3:5] == ["ssl", "crt"] and words[5].startswith(d.cert_dir + "/")
                assert words[5].removeprefix(d.cert_dir + "/") in d.certs
        elif key == "log":
            assert words[1:] in (["global"], ["stdout", "format", "raw", "daemon", "warning"])
        elif key == "chroot":
            assert words[1:] == [d.chroot]
        elif key in ("user", "group"):
            assert words[1:] == [d.user]
        elif key == "server-state-file":
            assert words[1:] == [d.server_state]
        elif key == "timeout":
            assert words[1] in ("connect", "client", "server") and len(words) == 3
        elif key == "mode":
            assert words[1:] in (["tcp"], ["http"]), line
        elif key == "default-server":
            assert words[1:] == ["downinter", "250ms", "fastinter", "250ms"], line
        elif key in ("load-server-state-from-file", "ssl-default-bind-options"):
            assert words[1:] in (["global"], ["ssl-min-ver", "TLSv1.2"]), line
    assert sections == 2


ACCEPTED = {
    "sample": lb_bag,
    "app cookie": _app_cookie,
    "keepalive": lambda: bag(command(
        lb.Rule(PUBLIC, 80, [("10.10.1.10", 80)], sticky=("LbCookie", {})),
        stats=lb.Stats("10.10.1.1", keepalive=True), keepalive=True)),
    "public stats": lambda: bag(command(
        lb.Rule(PUBLIC, 8000, [("10.10.1.10", 8000)]),
        stats=lb.Stats(PUBLIC, visibility="global", port=8081, cidrs="198.51.100.0/24"))),
    "braces in the stats password": lambda: _with_password("{Ad}MiN123"),
    "harmless ends of lines": lambda: _harmless_ends(),
    # "auth" in the uri is no password: the realm and auth lines after it are read.
    "auth in the stats uri": lambda: bag(command(
        lb.Rule(PUBLIC, 80, [("10.10.1.10", 80)]),
        stats=lb.Stats("10.10.1.1", uri="/stats/auth?x=1"))),
}


def _with_password(password: str) -> dict[str, Any]:
    return bag(command(lb.Rule(PUBLIC, 80, [("10.10.1.10", 80)]),
                       stats=lb.Stats("10.10.1.1", auth=f"admin1:{password}")))


def _harmless_ends() -> dict[str, Any]:
    # A CR at a line's end and an empty line are haproxy's own blanks.
    raw = lb_bag()
    items = raw["rules"][0]["configuration"]
    items[items.index("\tbalance roundrobin")] = "\tbalance roundrobin\r\n\t\n"
    return raw


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_bags_render_only_the_templates_directives(name: str) -> None:
    raw = ACCEPTED[name]()
    d = desired(raw)
    text = subsystem.render(d)[CONF.name]
    assert text
    _check_allowed(text, d)
    # All the render shows besides: the certificates' file names.
    assert rendered(raw) == f"# ==> {CONF.name} <==\n{text}" + "".join(
        f"# ==> certificates <==\n{name}\n" for name in d.certs)


def test_a_quoted_password_keeps_its_braces_inside_the_quotes() -> None:
    text = rendered(_with_password("{Ad}MiN123"))
    assert "\tstats auth admin1:'{Ad}MiN123'\n" in text


def test_the_allow_list_check_catches_an_injected_line() -> None:
    raw = lb_bag()
    d = desired(raw)
    text = subsystem.render(d)[CONF.name]
    _check_allowed(text, d)
    for evil in ("\tlua-load /tmp/x.lua\n", "frontend x\n", "\tstats socket /tmp/evil.sock\n",
                 "\toption transparent\n", "\tbind unix@/tmp/s transparent\n"):
        with pytest.raises(AssertionError):
            _check_allowed(text + evil, d)


@pytest.mark.parametrize("field", ["tmp_cfg_file_path", "tmp_cfg_file_name"])
def test_upstreams_file_paths_are_ignored(field: str) -> None:
    raw = lb_bag()
    raw["rules"][0][field] = "/etc/shadow\n\tlua-load /tmp/x.lua"
    text = rendered(raw)
    assert "/etc/shadow" not in text and "lua-load" not in text
    assert rendered(lb_bag()) == text
