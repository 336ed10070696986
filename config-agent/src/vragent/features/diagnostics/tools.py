"""diagnostics.py's arguments: the tool, the address and the options, each
held to an allow-list before anything runs, and the answer's layout.

Upstream (apache/cloudstack):

- ``systemvm/debian/opt/cloud/bin/diagnostics.py``: ``<type> <address>
  [<params>]``, joined and re-split with shlex, run with ``-c 4`` (ping,
  arping) or ``-m 20`` (traceroute) appended when the count or the hop limit
  is not given; anything but ping, traceroute and arping runs nothing. It
  prints ``<stdout>&&``, ``<stderr>&&`` and the exit code on three lines and
  exits 0 itself.
- ``server/.../diagnostics/DiagnosticsServiceImpl.java``: ``prepareShellCmd``
  builds ``"<type> <address> <params>"``; ``hasValidChars`` lets through only
  params matching ``^[\\w\\-\\s.]+$`` (the documentation: no metacharacter but
  "-" and "."). The address itself is checked only for being non-empty
  (``RunDiagnosticsCmd``, "The IP/Domain address to test connection to"),
  and the type against ``DiagnosticsType`` (ping, traceroute, arping).
- ``core/.../diagnostics/DiagnosticsAnswer.java``: ``getExecutionDetails``
  splits the script's output on ``&&`` into stdout, stderr and exit code
  (trimmed); ``VirtualRoutingResource.execute(DiagnosticsCommand)`` gives the
  script 60 s.

Here every argument is checked, whatever the caller checked: the type is one
of the three; the address an IP address (IPv4 only for arping) or a host
name (letters, digits and hyphens in dot-separated labels, whose last label
is not all digits); every option one the tool's allow-list below names, with
its value in range. Upstream's character rule holds for every option and
value too. What is refused runs nothing: the answer, in the same layout, has
an empty stdout, the reason (naming the field and the value, escaped) on
stderr and exit code 2. The tool runs as an argument list (no shell), the
options before the address, for at most ``BUDGET`` seconds.

Differences: the options are an allow-list (upstream passes anything its
character rule lets through: ``ping -f`` floods, ``arping -U`` rewrites the
neighbours' caches); the output is text (upstream's Python 3 script prints
the bytes' repr, ``b'PING ...\\n...'``); ``&&`` inside a tool's output is
written ``& &`` so that the answer always splits into three.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

# The management server waits 60 s for the script (VirtualRoutingResource):
# the tool is interrupted before, so that what it printed still gets back.
BUDGET = 50.0
MAX_ARGS = 32
MAX_ARG = 255
SCRIPT = "diagnostics.py"
REFUSED = 2  # the exit code of a refused command, as a tool's usage error
NOT_FOUND = 127

# DiagnosticsServiceImpl.hasValidChars: "^[\\w\\-\\s.]+$" (Java's \w is ASCII).
_UPSTREAM_CHARS = re.compile(r"[A-Za-z0-9_.\-]+", re.ASCII)
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)", re.ASCII)
_IFNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}", re.ASCII)
_UINT = re.compile(r"[0-9]{1,9}", re.ASCII)
_DECIMAL = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?|\.[0-9]{1,6}", re.ASCII)
_HEX = re.compile(r"[0-9a-fA-F]{1,32}", re.ASCII)


class Refused(ValueError):
    """An argument outside what may run: ``field`` is the API's parameter
    (type, ipaddress, params), ``value`` what was given."""

    def __init__(self, field: str, value: str, reason: str) -> None:
        self.field, self.value, self.reason = field, value, reason
        super().__init__(f"{SCRIPT}: {field} {shown(value)}: {reason}")


def shown(value: str, limit: int = 64) -> str:
    """A value as the answer may show it: quoted, escaped, cut; never an
    ``&`` (the answer is split on ``&&``) nor a line break."""
    text = value if len(value) <= limit else f"{value[:limit]}... ({len(value)} characters)"
    return repr(text).replace("&", "\\x26")


# -- values --------------------------------------------------------------------------


def integer(low: int, high: int) -> Callable[[str], str]:
    def check(v: str) -> str:
        if not _UINT.fullmatch(v) or not low <= int(v) <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return str(int(v))
    return check


def decimal(low: float, high: float) -> Callable[[str], str]:
    def check(v: str) -> str:
        if not _DECIMAL.fullmatch(v) or not low <= float(v) <= high:
            raise ValueError(f"must be a number from {low:g} to {high:g}")
        return v
    return check


def choice(*words: str) -> Callable[[str], str]:
    def check(v: str) -> str:
        if v not in words:
            raise ValueError(f"must be one of {', '.join(words)}")
        return v
    return check


def ifname(v: str) -> str:
    if not _IFNAME.fullmatch(v):
        raise ValueError("must be an interface name")
    return v


def ipv4(v: str) -> str:
    try:
        return str(ipaddress.IPv4Address(v))
    except ValueError:
        raise ValueError("must be an IPv4 address") from None


def ip(v: str) -> str:
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        raise ValueError("must be an IP address") from None


def ifname_or_ip(v: str) -> str:
    try:
        return ip(v)
    except ValueError:
        pass
    if not _IFNAME.fullmatch(v):
        raise ValueError("must be an interface name or an IP address")
    return v


def hexbytes(v: str) -> str:
    if not _HEX.fullmatch(v):
        raise ValueError("must be up to 16 bytes in hex")
    return v


def tos(v: str) -> str:
    number = int(v, 16) if v.lower().startswith("0x") and _HEX.fullmatch(v[2:]) else (
        int(v) if _UINT.fullmatch(v) else -1)
    if not 0 <= number <= 255:
        raise ValueError("must be a type of service from 0 to 255 (decimal or 0x hex)")
    return v


# -- the tools -----------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    name: str
    # Option letter -> None (a flag) or the check of its value.
    options: dict[str, Callable[[str], str] | None]
    # Appended when ``default[0]`` is not given (upstream's get_command).
    default: tuple[str, ...]
    ipv6: bool = True
    what: dict[str, str] = field(default_factory=dict)


# iputils-ping 20221126. Not allowed: -f (flood), -l (preload), -A (adaptive:
# as fast as replies come), -i below 0.2 s, and what changes nothing a
# diagnosis needs (-a -C -d -e -F -L -m -N -S -T -V -h).
PING = Tool("ping", {
    "4": None, "6": None, "b": None, "D": None, "n": None, "O": None, "q": None,
    "R": None, "U": None, "v": None,
    "c": integer(1, 100), "i": decimal(0.2, 10), "W": decimal(0.1, 30),
    "w": integer(1, 50), "s": integer(0, 65507), "t": integer(1, 255),
    "I": ifname_or_ip, "M": choice("do", "dont", "want", "probe"), "Q": tos,
    "p": hexbytes,
}, default=("-c", "4"))

# traceroute 2.1 (Debian's "modern traceroute"). Not allowed: -A (asks a
# whois server on the Internet), -g (source routing), -M/-O (other methods'
# modules), -r, -d, -V and the long options.
TRACEROUTE = Tool("traceroute", {
    "4": None, "6": None, "n": None, "I": None, "T": None, "U": None, "F": None,
    "e": None,
    "m": integer(1, 64), "f": integer(1, 64), "q": integer(1, 10), "w": decimal(0.1, 10),
    "N": integer(1, 32), "z": decimal(0, 10), "p": integer(1, 65535), "i": ifname,
    "s": ip, "t": integer(0, 255),
}, default=("-m", "20"))

# iputils-arping 20221126. Not allowed: -U and -A (they rewrite the
# neighbours' ARP caches: a diagnosis changes nothing), -V, -h.
ARPING = Tool("arping", {
    "f": None, "q": None, "b": None, "D": None,
    "c": integer(1, 100), "w": integer(1, 50), "i": decimal(0.2, 10), "I": ifname,
    "s": ipv4,
}, default=("-c", "4"), ipv6=False)

TOOLS = {t.name: t for t in (PING, TRACEROUTE, ARPING)}


@dataclass(frozen=True)
class Command:
    tool: Tool
    options: tuple[str, ...]
    address: str

    def argv(self) -> list[str]:
        return [self.tool.name, *self.options, self.address]


def address(value: str, tool: Tool) -> str:
    """An IP address or a host name, as ``ipaddress`` of the API
    (RunDiagnosticsCmd: "The IP/Domain address")."""
    try:
        ip_addr = ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        if ip_addr.version == 6 and not tool.ipv6:
            raise Refused("ipaddress", value, f"{tool.name} takes an IPv4 address or host name")
        return str(ip_addr)
    name = value[:-1] if value.endswith(".") else value
    labels = name.split(".")
    if (0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in labels)
            and not labels[-1].isdigit()):
        return value
    raise Refused("ipaddress", value, "not an IP address or a host name")


def parse(argv: list[str]) -> Command:
    """The command ``argv`` (``<type> <address> [<params>...]``, as the
    management server's command line is split) stands for, or ``Refused``."""
    if not argv:
        raise Refused("type", "", f"missing (one of {', '.join(TOOLS)})")
    kind, rest = argv[0], argv[1:]
    if kind not in TOOLS:
        raise Refused("type", kind, f"not one of {', '.join(TOOLS)}")
    tool = TOOLS[kind]
    if len(argv) > MAX_ARGS:
        raise Refused("params", " ".join(rest), f"more than {MAX_ARGS} arguments")
    options: list[str] = []
    given: set[str] = set()
    target: str | None = None
    i = 0
    while i < len(rest):
        word = rest[i]
        i += 1
        is_option = word.startswith("-") and word != "-"
        if len(word) > MAX_ARG:
            raise Refused("params" if is_option or target is not None else "ipaddress", word,
                          f"longer than {MAX_ARG} characters")
        if not is_option:
            if target is not None:
                raise Refused("params", word, f"not an option, and the address is already "
                              f"{shown(target)}")
            target = address(word, tool)
            continue
        if not _UPSTREAM_CHARS.fullmatch(word) or word.startswith("--"):
            raise Refused("params", word, _not_allowed(tool))
        # Short options, getopt's way: flags may be grouped (-nq), a value
        # follows in the same word (-c4) or is the next one (-c 4).
        j = 1
        while j < len(word):
            letter = word[j]
            j += 1
            if letter not in tool.options:
                raise Refused("params", f"-{letter}", _not_allowed(tool))
            check = tool.options[letter]
            given.add(letter)
            if check is None:
                options.append(f"-{letter}")
                continue
            if j < len(word):
                value, j = word[j:], len(word)
            elif i < len(rest):
                value = rest[i]
                i += 1
            else:
                raise Refused("params", f"-{letter}", "needs a value")
            if len(value) > MAX_ARG or not _UPSTREAM_CHARS.fullmatch(value):
                raise Refused("params", f"-{letter} {value}", "not a value: letters, digits, "
                              "'-', '_' and '.' only")
            try:
                options += [f"-{letter}", check(value)]
            except ValueError as exc:
                raise Refused("params", f"-{letter} {value}", str(exc)) from None
    if target is None:
        raise Refused("ipaddress", "", "missing")
    if tool.default[0][1:] not in given:
        options += tool.default
    return Command(tool, tuple(options), target)


def _not_allowed(tool: Tool) -> str:
    allowed = " ".join(f"-{o}" for o in sorted(tool.options, key=lambda o: (o.lower(), o)))
    return f"not an option diagnostics may give {tool.name} (allowed: {allowed})"


def answer(stdout: str, stderr: str, code: int) -> str:
    """The three-part answer DiagnosticsAnswer.getExecutionDetails splits on
    ``&&``: stdout, stderr, exit code, each on its own line."""
    def part(text: str) -> str:
        return text.strip().replace("&&", "& &")
    return f"{part(stdout)}&&\n{part(stderr)}&&\n{code}\n"
