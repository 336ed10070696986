"""The haproxy configuration CloudStack sends, read into a model (pure).

CloudStack's management server builds a whole haproxy.cfg as a list of
lines (core/.../network/HAProxyConfigurator.java: ``generateConfiguration``,
``getRulesForPool``, ``getLbSubRuleForStickiness``, ``generateStatsRule``);
upstream's router writes them to /etc/haproxy/haproxy.cfg as they came
(systemvm/debian/opt/cloud/bin/cs/CsLoadBalancer.py). Here every line is
read against the grammar of what HAProxyConfigurator produces, into the
model below, and the router renders its own configuration from the model
(``subsystem.render``). So a bag can add no section, directive, socket,
file path or bind of its own: a line outside the grammar, a value outside
its type, is refused, naming the line. Reading rather than allow-listing
lines as text is also what lets the router run a current haproxy: the lines
are written for haproxy 1.5 (``option forceclose``, ``appsession`` and the
``daemon`` mode are gone or refused by 2.6), and the global section must be
the router's own (master-worker mode, its admin socket, the server-state
file).

Tokens are split as haproxy splits them: on blanks, with ``\\ `` an escaped
space (``stats realm   Haproxy\\ Statistics``). Quotes, other escapes and
``#`` never occur in what CloudStack writes and are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ...models.common import _IPV4_RE as _IPV4

T = TypeVar("T")


def _with(obj: T, name: str, value: Any) -> T:
    """``replace`` with the field named at run time (a keyword the line names)."""
    out: T = replace(obj, **{name: value})  # type: ignore[type-var]
    return out

# -- values -------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}", re.ASCII)
_INT = re.compile(r"[0-9]{1,9}", re.ASCII)
# haproxy time: a number and an optional unit (HAProxyConfigurator passes the
# management server's values through: "5000", "30m", "3h").
_TIME = re.compile(r"[0-9]{1,9}(?:us|ms|s|m|h|d)?", re.ASCII)
_SIZE = re.compile(r"[0-9]{1,9}[kmg]?", re.ASCII)
# RFC 6265 cookie-name characters, less those haproxy's parser gives a meaning.
_COOKIE = re.compile(r"[A-Za-z0-9!$%&*+.^_`|~-]{1,64}", re.ASCII)
_DOMAIN = re.compile(r"\.?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                     r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*", re.ASCII)
_URI = re.compile(r"/[A-Za-z0-9/_.?=&%+-]{0,200}", re.ASCII)
_REALM = re.compile(r"[A-Za-z0-9 _.-]{1,64}", re.ASCII)
_USER = re.compile(r"[A-Za-z0-9_.@-]{1,64}", re.ASCII)
# A password is shown to haproxy single-quoted, where nothing is special but
# the quote itself; blanks and '#' would need quoting upstream too.
_PASSWORD = re.compile(r"[!$%&()*+,./0-9:;<=>?@A-Z\[\]^_`a-z{|}~-]{1,128}", re.ASCII)
_CIPHERS = re.compile(r"[A-Za-z0-9_+:!.-]{1,1024}", re.ASCII)
_CERT_NAME = re.compile(r"[0-9_]{7,15}-[0-9]{1,5}", re.ASCII)

ALGORITHMS = ("roundrobin", "leastconn", "source")  # VirtualRouterElement's capability
TIMEOUTS = ("connect", "client", "server")
COOKIE_MODES = ("insert", "rewrite", "prefix")
TLS_VERSIONS = ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
ALPN = ("h2", "http/1.1", "http/1.0")
TLS_FLAGS = ("no-tls-tickets", "no-sslv3", "no-tlsv10", "no-tlsv11", "no-tlsv12")
# Where each upstream version put a rule's certificate (PR #11468 for 4.22;
# the LB-customisation branch; CsLoadBalancer's older pem writer): a bind
# names its certificate by the file name alone, which ssl_certs must hold.
CERT_DIRS = ("/etc/cloudstack/ssl/", "/etc/ssl/cloudstack/", "/etc/ssl/private/")
# HAProxyConfigurator's dummy listener, written when there is no rule:
# haproxy 1.5 could not start without one. Nothing to serve: not realised.
DUMMY = ("vmops", "0.0.0.0", 9)
# The only global values HAProxyConfigurator writes (globalSection).
CHROOT = "/var/lib/haproxy"
STATS_SOCKETS = ("/var/run/haproxy.socket", "/run/haproxy/admin.sock")
REDACTED = "(secret, not shown)"


class LineError(ValueError):
    pass


def _int(value: str, what: str, low: int = 0, high: int = 10**9) -> int:
    if not _INT.fullmatch(value) or not low <= int(value) <= high:
        raise LineError(f"{what} must be an integer {low}-{high}, got {value!r}")
    return int(value)


def _match(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise LineError(f"{what}: {value!r} is not valid")
    return value


def _endpoint(value: str, what: str) -> tuple[str, int]:
    ip, sep, port = value.rpartition(":")
    if not sep or not _IPV4.fullmatch(ip):
        raise LineError(f"{what} must be IPv4:port, got {value!r}")
    return ip, _int(port, f"{what}'s port", 0 if ip == DUMMY[1] else 1, 65535)


def tokens(line: str) -> list[str]:
    """haproxy's split of one line: blanks separate, ``\\ `` is a space."""
    out: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(line):
        c = line[i]
        if c in " \t":
            if cur:
                out.append("".join(cur))
                cur = []
        elif c == "\\":
            if line[i + 1:i + 2] != " ":
                raise LineError("a backslash escapes nothing but a space here")
            cur.append(" ")
            i += 1
        elif c in "\"'#":
            raise LineError(f"{c!r} is never part of what the management server writes")
        elif not (c.isascii() and c.isprintable()):
            raise LineError(f"{c!r}: only printable ASCII is read")
        else:
            cur.append(c)
        i += 1
    if cur:
        out.append("".join(cur))
    return out


# -- the model ----------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    uri: str
    realm: str
    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Server:
    name: str
    ip: str
    port: int
    maxconn: int = 0
    minconn: int = 0
    maxqueue: int = 0
    send_proxy: bool = False
    cookie: str = ""
    tls: bool = False  # "check ssl verify none": the backend speaks HTTPS


@dataclass(frozen=True)
class Sticky:
    kind: str  # "cookie" (LbCookie), "app" (AppCookie), "source" (SourceBased)
    name: str = ""
    mode: str = "insert"
    indirect: bool = False
    nocache: bool = False
    postonly: bool = False
    domains: tuple[str, ...] = ()
    size: str = "200k"
    expire: str = "30m"
    length: int = 52
    request_learn: bool = False
    prefix: bool = False
    query_string: bool = False  # AppCookie mode query-string


@dataclass(frozen=True)
class Tls:
    cert: str  # the ssl_certs entry's name
    alpn: tuple[str, ...] = ()
    min_version: str = ""
    flags: tuple[str, ...] = ()
    ciphers: str = ""
    ciphersuites: str = ""


@dataclass(frozen=True)
class Listen:
    name: str
    ip: str = ""
    port: int = 0
    balance: str = ""
    http: bool = False
    close: str = ""  # "close" (option httpclose), "keep" (no option forceclose)
    timeouts: tuple[tuple[str, str], ...] = ()
    maxconn: int = 0
    fullconn: int = 0
    servers: tuple[Server, ...] = ()
    sticky: Sticky | None = None
    tls: Tls | None = None
    forwarded_proto: bool = False  # http-request add-header X-Forwarded-Proto https
    stats: Stats | None = None
    transparent: bool = False  # "source 0.0.0.0 usesrc clientip"
    # The configuration item its header came in (errors name it).
    item: int = field(default=-1, compare=False, repr=False)

    @property
    def where(self) -> str:
        return f"listen {self.name}" + (f" (configuration[{self.item}])" if self.item >= 0
                                         else "")

    @property
    def endpoint(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def dummy(self) -> bool:
        return (self.name, self.ip, self.port) == DUMMY


@dataclass(frozen=True)
class Defaults:
    http: bool = False
    retries: int = 3
    redispatch: bool = False
    forwardfor: bool = False
    dontlognull: bool = False
    close: str = ""
    timeouts: tuple[tuple[str, str], ...] = ()
    stats: Stats | None = None


@dataclass(frozen=True)
class Config:
    maxconn: int = 4096
    maxpipes: int = 1024
    root_user: bool = False  # "user root": only with transparent mode
    defaults: Defaults = Defaults()
    listens: tuple[Listen, ...] = ()


# -- reading ------------------------------------------------------------------------


class _Reader:
    def __init__(self) -> None:
        self.section = ""
        self.cfg = Config()
        self.listen: Listen | None = None
        self.defaults = Defaults()
        self.stats: dict[str, str] = {}
        self.stats_on = False
        self.seen: set[str] = set()
        self.item = -1  # the configuration item being read

    # sections

    def header(self, words: list[str]) -> None:
        problems = []
        try:
            self.close()
        except LineError as exc:
            # The section before is refused; what follows is still read in the
            # section this header opens, not in the one before.
            problems.append(str(exc))
            self.section, self.listen, self.stats, self.stats_on = "", None, {}, False
        try:
            self._open(words)
        except LineError as exc:
            problems.append(str(exc))
        if problems:
            raise LineError("; ".join(problems))

    def _open(self, words: list[str]) -> None:
        kind = words[0]
        if kind in ("global", "defaults") and len(words) == 1:
            if kind in self.seen:
                raise LineError(f"a second {kind} section")
            self.seen.add(kind)
            self.section = kind
            return
        if kind == "listen" and len(words) == 2:
            name = _match(_NAME, words[1], "listen's name")
            if name in self.seen:
                raise LineError(f"a second listen {name}")
            self.seen.add(name)
            self.section = "listen"
            self.listen = Listen(name, item=self.item)
            return
        raise LineError(f"unknown section {_said(words)!r} (global, defaults and "
                        f"listen <name> are read)")

    def close(self) -> None:
        stats = self._stats()
        if self.section == "defaults":
            self.defaults = replace(self.defaults, stats=stats)
        elif self.section == "listen" and self.listen is not None:
            lst = replace(self.listen, stats=stats)
            if lst.stats is None and not lst.dummy:
                if not lst.ip:
                    raise LineError(f"{lst.where} has no bind")
                if not lst.servers:
                    raise LineError(f"{lst.where} has no server")
            if lst.sticky is not None and lst.sticky.kind in ("cookie", "app"):
                lst = replace(lst, http=True)
            self.cfg = replace(self.cfg, listens=(*self.cfg.listens, lst))
        self.section, self.listen, self.stats, self.stats_on = "", None, {}, False

    def _stats(self) -> Stats | None:
        if not self.stats_on and not self.stats:
            return None
        if not self.stats_on:
            raise LineError("stats settings without 'stats enable'")
        missing = [k for k in ("uri", "auth") if k not in self.stats]
        if missing:
            raise LineError(f"stats enable without stats {' and '.join(missing)}")
        user, _, password = self.stats["auth"].partition(":")
        return Stats(self.stats["uri"], self.stats.get("realm", "Haproxy Statistics"),
                     user, password)

    # lines

    def line(self, words: list[str]) -> None:
        if not self.section:
            raise LineError("a setting outside any section")
        getattr(self, f"_{self.section}")(words)

    def _global(self, w: list[str]) -> None:
        key = w[0]
        if key == "log" and len(w) == 4:
            _endpoint(w[1], "log server")
            return  # the router logs through supervisord: not realised
        if key in ("maxconn", "maxpipes") and len(w) == 2:
            self.cfg = _with(self.cfg, key, _int(w[1], key, 1, 1_000_000))
            return
        if key == "chroot" and w[1:] == [CHROOT]:
            return  # the router's own render always has it
        if key in ("user", "group") and w[1:] == ["haproxy"]:
            return
        if key in ("user", "group") and w[1:] == ["root"]:
            self.cfg = replace(self.cfg, root_user=True)
            return
        if key == "daemon" and len(w) == 1:
            return  # supervised in the foreground, in master-worker mode
        if w[:2] == ["stats", "socket"] and len(w) == 3 and w[2] in STATS_SOCKETS:
            return  # the router's admin socket is always there, root-only
        if key == "tune.ssl.default-dh-param" and len(w) == 2:
            _int(w[1], key, 1024, 8192)
            return
        raise LineError(f"global: {_said(w)!r} is not a setting the router takes")

    def _defaults(self, w: list[str]) -> None:
        d = self.defaults
        if self._stats_line(w):
            return
        if w == ["log", "global"] or w == ["option", "dontlognull"]:
            self.defaults = replace(d, dontlognull=d.dontlognull or w[1] == "dontlognull")
        elif w[0] == "mode" and len(w) == 2 and w[1] in ("tcp", "http"):
            self.defaults = replace(d, http=w[1] == "http")
        elif w[0] == "retries" and len(w) == 2:
            self.defaults = replace(d, retries=_int(w[1], "retries", 0, 100))
        elif w in (["option", "redispatch"], ["option", "forwardfor"]):
            self.defaults = _with(d, w[1], True)
        elif self._close(w) is not None:
            self.defaults = replace(d, close=self._close(w) or "")
        elif w[0] == "timeout":
            self.defaults = replace(d, timeouts=self._timeout(d.timeouts, w))
        else:
            raise LineError(f"defaults: {_said(w)!r} is not a setting the router takes")

    @staticmethod
    def _close(w: list[str]) -> str | None:
        if w in (["option", "httpclose"], ["option", "forceclose"]):
            return "close"
        if w in (["no", "option", "forceclose"], ["no", "option", "httpclose"]):
            return "keep"
        return None

    @staticmethod
    def _timeout(have: tuple[tuple[str, str], ...],
                 w: list[str]) -> tuple[tuple[str, str], ...]:
        if len(w) != 3 or w[1] not in TIMEOUTS:
            raise LineError(f"timeout must be 'timeout {'|'.join(TIMEOUTS)} <time>'")
        value = _match(_TIME, w[2], f"timeout {w[1]}")
        return (*((k, v) for k, v in have if k != w[1]), (w[1], value))

    def _stats_line(self, w: list[str]) -> bool:
        if w[0] != "stats" or len(w) < 2:
            return False
        if w == ["stats", "enable"]:
            self.stats_on = True
        elif w[1] == "uri" and len(w) == 3:
            self.stats["uri"] = _match(_URI, w[2], "stats uri")
        elif w[1] == "realm" and len(w) == 3:
            self.stats["realm"] = _match(_REALM, w[2], "stats realm")
        elif w[1] == "auth" and len(w) == 3:
            user, sep, password = w[2].partition(":")
            if not sep or not _USER.fullmatch(user):
                raise LineError("stats auth must be <user>:<password>, the user of letters, "
                                "digits and '_.@-'")
            if not _PASSWORD.fullmatch(password):
                raise LineError("stats auth: the password must be 1-128 printable ASCII "
                                "characters without blanks, quotes, '#' or backslashes")
            self.stats["auth"] = w[2]
        else:
            raise LineError(f"{self.section}: {_said(w)!r} is not a stats setting the "
                            f"router takes")
        return True

    def _listen(self, w: list[str]) -> None:
        lst = self.listen
        assert lst is not None
        key = w[0]
        if self._stats_line(w):
            return
        if key == "bind":
            if lst.ip:
                raise LineError(f"listen {lst.name}: a second bind")
            self.listen = self._bind(lst, w)
        elif key == "balance" and len(w) == 2:
            if w[1] not in ALGORITHMS:
                raise LineError(f"balance: {w[1]!r} is not one of {', '.join(ALGORITHMS)}")
            self.listen = replace(lst, balance=w[1])
        elif key == "mode" and len(w) == 2 and w[1] in ("tcp", "http"):
            self.listen = replace(lst, http=w[1] == "http")
        elif self._close(w) is not None:
            self.listen = replace(lst, close=self._close(w) or "")
        elif key == "timeout":
            self.listen = replace(lst, timeouts=self._timeout(lst.timeouts, w))
        elif key in ("maxconn", "fullconn") and len(w) == 2:
            self.listen = _with(lst, key, _int(w[1], key, 1, 1_000_000))
        elif key == "server":
            self.listen = replace(lst, servers=(*lst.servers, self._server(lst, w)))
        elif key in ("cookie", "appsession", "stick-table", "stick"):
            self.listen = replace(lst, sticky=self._sticky(lst, w))
        elif w == ["option", "transparent"] and lst.dummy:
            pass
        elif w == ["source", "0.0.0.0", "usesrc", "clientip"]:
            self.listen = replace(lst, transparent=True)
        elif w == ["http-request", "add-header", "X-Forwarded-Proto", "https"]:
            self.listen = replace(lst, forwarded_proto=True)
        else:
            raise LineError(f"listen {lst.name}: {_said(w)!r} is not a setting the "
                            f"router takes")

    def _bind(self, lst: Listen, w: list[str]) -> Listen:
        if len(w) < 2:
            raise LineError("bind without an address")
        ip, port = _endpoint(w[1], "bind")
        lst = replace(lst, ip=ip, port=port)
        rest = w[2:]
        if not rest:
            return lst
        if rest[:2] != ["ssl", "crt"] or len(rest) < 3:
            raise LineError(f"bind {w[1]}: only 'ssl crt <file>' and its TLS settings may "
                            f"follow the address")
        path = rest[2]
        folder, _, name = path.rpartition("/")
        if f"{folder}/" not in CERT_DIRS or not name.endswith(".pem"):
            raise LineError(f"bind {w[1]}: certificate {path!r} is not in "
                            f"{' or '.join(CERT_DIRS)} as <name>.pem")
        tls = Tls(cert=_match(_CERT_NAME, name.removesuffix(".pem"), "certificate name"))
        i = 3
        while i < len(rest):
            opt = rest[i]
            arg = rest[i + 1] if i + 1 < len(rest) else ""
            if opt == "alpn" and arg and all(p in ALPN for p in arg.split(",")):
                tls = replace(tls, alpn=tuple(arg.split(",")))
                i += 2
            elif opt == "ssl-min-ver" and arg in TLS_VERSIONS:
                tls = replace(tls, min_version=arg)
                i += 2
            elif opt in ("ciphers", "ciphersuites") and arg:
                tls = _with(tls, opt, _match(_CIPHERS, arg, opt))
                i += 2
            elif opt in TLS_FLAGS:
                tls = replace(tls, flags=(*tls.flags, opt))
                i += 1
            else:
                raise LineError(f"bind {w[1]}: {opt!r} is not a TLS setting the router takes")
        return replace(lst, tls=tls)

    def _server(self, lst: Listen, w: list[str]) -> Server:
        if len(w) < 4 or w[3] != "check":
            raise LineError("server must be 'server <name> <ip>:<port> check ...'")
        name = _match(_NAME, w[1], "server name")
        if any(s.name == name for s in lst.servers):
            raise LineError(f"server {name} twice")
        ip, port = _endpoint(w[2], f"server {name}")
        srv = Server(name, ip, port)
        rest = w[4:]
        i = 0
        while i < len(rest):
            opt = rest[i]
            arg = rest[i + 1] if i + 1 < len(rest) else ""
            if opt in ("maxconn", "minconn", "maxqueue") and arg:
                srv = _with(srv, opt, _int(arg, f"server {name} {opt}", 0, 1_000_000))
                i += 2
            elif opt == "cookie" and arg:
                srv = replace(srv, cookie=_match(_COOKIE, arg, f"server {name} cookie"))
                i += 2
            elif opt == "send-proxy":
                srv = replace(srv, send_proxy=True)
                i += 1
            elif rest[i:i + 3] == ["ssl", "verify", "none"]:
                srv = replace(srv, tls=True)
                i += 3
            else:
                raise LineError(f"server {name}: {opt!r} is not a server setting the router "
                                f"takes")
        return srv

    def _sticky(self, lst: Listen, w: list[str]) -> Sticky:
        key = w[0]
        have = lst.sticky
        if key == "stick":
            if w != ["stick", "on", "src"] or have is None or have.kind != "source":
                raise LineError("'stick on src' only follows its stick-table")
            return have
        if have is not None:
            raise LineError(f"listen {lst.name}: a second stickiness policy")
        if key == "cookie":
            if len(w) < 3 or w[2] not in COOKIE_MODES:
                raise LineError(f"cookie must be 'cookie <name> {'|'.join(COOKIE_MODES)} ...'")
            s = Sticky("cookie", name=_match(_COOKIE, w[1], "cookie name"), mode=w[2])
            rest = w[3:]
            i = 0
            while i < len(rest):
                opt = rest[i]
                if opt in ("indirect", "nocache", "postonly"):
                    s = _with(s, opt, True)
                    i += 1
                elif opt == "domain" and i + 1 < len(rest):
                    s = replace(s, domains=(*s.domains,
                                            _match(_DOMAIN, rest[i + 1], "cookie domain")))
                    i += 2
                else:
                    raise LineError(f"cookie: {opt!r} is not a cookie setting")
            return s
        if key == "stick-table":
            if (len(w) != 7 or w[1:3] != ["type", "ip"] or w[3] != "size"
                    or w[5] != "expire"):
                raise LineError("stick-table must be 'stick-table type ip size <n> "
                                "expire <time>'")
            return Sticky("source", size=_match(_SIZE, w[4], "stick-table size"),
                          expire=_match(_TIME, w[6], "stick-table expire"))
        # appsession <cookie> len <length> timeout <holdtime> [prefix] [request-learn]
        # [mode path-parameters|query-string]: haproxy 1.6 removed it; rendered
        # as a stick table on the cookie.
        if len(w) < 6 or w[2] != "len" or w[4] != "timeout":
            raise LineError("appsession must be 'appsession <cookie> len <n> timeout <time>'")
        s = Sticky("app", name=_match(_COOKIE, w[1], "appsession cookie"),
                   length=_int(w[3], "appsession len", 1, 4096),
                   expire=_match(_TIME, w[5], "appsession timeout"))
        rest = w[6:]
        i = 0
        while i < len(rest):
            opt = rest[i]
            if opt in ("prefix", "request-learn"):
                s = _with(s, opt.replace("-", "_"), True)
                i += 1
            elif opt == "mode" and i + 1 < len(rest) and rest[i + 1] in (
                    "path-parameters", "query-string"):
                s = replace(s, query_string=rest[i + 1] == "query-string")
                i += 2
            else:
                raise LineError(f"appsession: {opt!r} is not an appsession setting")
        return s


# A line that may hold a stats password: anything after a leading "stats auth",
# however the words are separated, escaped or followed.
_AUTH = re.compile(r"\W*stats\W*auth", re.ASCII)


def shown_line(line: str) -> str:
    """A line as an error may show it: a stats password never."""
    auth = _AUTH.match(line)
    if auth is not None:
        words = line[auth.end():].replace("\\ ", " ").split()
        user, sep, _ = words[0].partition(":") if len(words) == 1 else ("", "", "")
        return f"stats auth {user}:{REDACTED}" if sep and _USER.fullmatch(user) else (
            f"stats auth {REDACTED}")
    text = " ".join(line.split())
    text = repr(text)[1:-1] if not text.isprintable() else text
    return text if len(text) <= 100 else f"{text[:97]}..."


def _said(words: list[str]) -> str:
    """A line's words as an error message may repeat them (``shown_line``)."""
    return shown_line(" ".join(words))


def read(configuration: list[str]) -> tuple[Config, list[str]]:
    """The model of CloudStack's lines, and every line refused (each naming
    the item and line it came from)."""
    reader = _Reader()
    problems: list[str] = []
    for i, item in enumerate(configuration):
        reader.item = i
        # A line after "stats auth" in the same item may be the rest of a
        # password a line break cut off. HAProxyConfigurator ends its stats
        # item with that line: any after it is refused, and not shown.
        after_auth = False
        for j, line in enumerate(item.split("\n")):
            where = f"configuration[{i}]" + (f" line {j + 1}" if "\n" in item else "")
            hidden = f"{where}: not valid (not shown: it follows 'stats auth')"
            if not line.strip():
                if any(not (c.isascii() and c.isprintable()) and c not in " \t\r"
                       for c in line):
                    problems.append(hidden if after_auth else
                                    f"{where}: {line!r}: only printable ASCII is read")
                continue
            if after_auth:
                problems.append(hidden)
                continue
            try:
                words = tokens(line.rstrip("\r"))
                if line[0] not in " \t":
                    reader.header(words)
                else:
                    reader.line(words)
            except LineError as exc:
                problems.append(f"{where} {shown_line(line)!r}: {exc}")
            after_auth = after_auth or _AUTH.match(line) is not None
    try:
        reader.close()
    except LineError as exc:
        problems.append(f"configuration: {exc}")
    cfg = replace(reader.cfg, defaults=reader.defaults)
    return cfg, problems
