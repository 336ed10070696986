"""Shared by the VPN's unit tests: bags as CloudStack builds them, merged over
the sample VPC, rendered; and a tiny reader of swanctl.conf's structure."""

from __future__ import annotations

import copy
import re
from typing import Any

from vragent.bags import parse_bag
from vragent.config import RouterConfig
from vragent.errors import BagError
from vragent.features.vpn import subsystem
from vragent.reconcile import desired_states
from vragent.topology import resolve

from tests.unit.builders import SAMPLE_ORDER, apply_bags, sample_bag, sample_links, settings

PUBLIC = "100.64.10.10"  # the sample VPC's source-NAT address
VPC = "10.10.0.0/16"
PSK = "psk-one"


def s2s(**over: Any) -> dict[str, Any]:
    """A site-to-site peer as Site2SiteVpnConfigItem sends it."""
    return {"type": "site2sitevpn", "local_public_ip": PUBLIC, "local_guest_cidr": VPC,
            "local_public_gateway": "100.64.10.1", "peer_gateway_ip": "100.64.30.1",
            "peer_guest_cidr_list": "10.30.0.0/24,10.31.0.0/24",
            "esp_policy": "aes128-sha1;modp1536", "ike_policy": "aes128-sha256;modp2048",
            "ipsec_psk": PSK, "ike_lifetime": 86400, "esp_lifetime": 3600, "create": True,
            "dpd": False, "passive": False, "encap": False, "split_connections": False,
            "ike_version": "ikev2", **over}


def ra(**over: Any) -> dict[str, Any]:
    """Remote access as RemoteAccessVpnConfigItem sends it."""
    return {"type": "remoteaccessvpn", "create": True, "ip_range": "10.1.2.2-10.1.2.8",
            "preshared_key": "l2tp-psk", "vpn_server_ip": PUBLIC, "local_ip": "10.1.2.1",
            "local_cidr": VPC, "public_interface": "eth1", **over}


def users(*entries: tuple[str, str, bool], **over: Any) -> dict[str, Any]:
    """VpnUsersConfigItem's list: (user, password, add) each."""
    return {"type": "vpnuserlist",
            "vpn_users": [{"user": u, "password": p, "add": a} for u, p, a in entries],
            **over}


def refused(raw: dict[str, Any]) -> BagError:
    try:
        parse_bag(copy.deepcopy(raw))
    except BagError as exc:
        return exc
    raise AssertionError("the bag was accepted")


def desired(*bags: dict[str, Any], check: bool = True) -> subsystem.Desired:
    """The VPN's desired state of the sample VPC with ``bags`` merged after its own."""
    docs = apply_bags([*(sample_bag(n) for n in SAMPLE_ORDER), *bags])
    cfg = RouterConfig.from_docs(docs)
    d = desired_states(cfg, resolve(cfg, sample_links()), settings())[subsystem.NAME]
    assert isinstance(d, subsystem.Desired)
    if check:
        assert subsystem.verify(d) == []
    return d


def netfilter(*bags: dict[str, Any]) -> str:
    from vragent.features.netfilter import subsystem as nf

    docs = apply_bags([*(sample_bag(n) for n in SAMPLE_ORDER), *bags])
    cfg = RouterConfig.from_docs(docs)
    d = desired_states(cfg, resolve(cfg, sample_links()), settings())[nf.NAME]
    assert nf.verify(d) == []
    return nf.render(d).text()


def swanctl(*bags: dict[str, Any]) -> str:
    return subsystem.render(desired(*bags))["swanctl.conf"]


# -- swanctl.conf's structure ---------------------------------------------------------------

_OPEN = re.compile(r"([A-Za-z0-9_-]+) \{")
_SETTING = re.compile(r"([a-z_-]+) = ([^{}#\"'\s][^{}#\"']*)")


def structure(text: str) -> list[tuple[str, ...]]:
    """Every section and setting of a swanctl.conf as its path (settings end
    with ``key=``), in order. Refuses what the template never writes: a line
    that is neither a section, its end, a ``key = value`` (no braces, quotes
    or '#' in the value), a comment nor blank, and unbalanced braces."""
    path: list[str] = []
    out: list[tuple[str, ...]] = []
    for n, line in enumerate(text.split("\n"), 1):
        s = line.strip()
        assert s == line.strip(" \t"), f"line {n}: a stray control character: {line!r}"
        if not s or s.startswith("#"):
            continue
        if m := _OPEN.fullmatch(s):
            path.append(m.group(1))
            out.append(tuple(path))
        elif s == "}":
            assert path, f"line {n}: '}}' closes nothing"
            path.pop()
        elif m := _SETTING.fullmatch(s):
            assert path, f"line {n}: a setting outside any section: {s!r}"
            out.append((*path, m.group(1) + "="))
        else:
            raise AssertionError(f"line {n}: not swanctl.conf as rendered: {s!r}")
    assert not path, f"unclosed sections: {path}"
    return out


def sections(text: str) -> set[tuple[str, ...]]:
    return {p for p in structure(text) if not p[-1].endswith("=")}


# -- chap-secrets as pppd reads it --------------------------------------------------------

_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "s": " ", "t": "\t"}


def ppp_words(text: str) -> list[list[str]]:
    """The words of a pppd secrets or options file, line by line, as pppd's
    getword (ppp-project/ppp pppd/options.c) reads them: words split by white
    space or quoted with " or '; '#' starts a comment outside a word; '\\'
    escapes (C escapes, octal, hex, any other character as itself) inside
    quotes too. A port, so the render's quoting can be checked."""
    lines: list[list[str]] = []
    words: list[str] = []
    i, n = 0, len(text)
    while True:
        # Skip white space and comments; a newline ends the line's words.
        while i < n:
            c = text[i]
            if c == "\n":
                lines.append(words)
                words = []
                i += 1
            elif c == "#":
                while i < n and text[i] != "\n":
                    i += 1
            elif c.isspace():
                i += 1
            else:
                break
        if i >= n:
            break
        quote = text[i] if text[i] in "\"'" else ""
        if quote:
            i += 1
        word = []
        while i < n:
            c = text[i]
            if c == "\\" and i + 1 < n:
                i += 1
                c = text[i]
                if c == "\n":
                    i += 1
                elif c in _ESCAPES:
                    word.append(_ESCAPES[c])
                    i += 1
                elif c in "01234567":
                    j = i
                    while j < n and j < i + 3 and text[j] in "01234567":
                        j += 1
                    word.append(chr(int(text[i:j], 8)))
                    i = j
                elif c == "x":
                    j = i + 1
                    while j < n and j < i + 3 and text[j] in "0123456789abcdefABCDEF":
                        j += 1
                    word.append(chr(int(text[i + 1:j] or "0", 16)))
                    i = j
                else:
                    word.append(c)
                    i += 1
                continue
            if quote and c == quote:
                i += 1
                break
            if not quote and (c.isspace() or c == "#"):
                break
            word.append(c)
            i += 1
        words.append("".join(word))
    if words:
        lines.append(words)
    return [w for w in lines if w]


def chap_secrets(text: str) -> list[tuple[str, ...]]:
    """Each entry of chap-secrets as pppd reads it (client, server, secret, addresses)."""
    return [tuple(w) for w in ppp_words(text)]
