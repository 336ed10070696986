"""Value types shared by the databag models.

Values keep the text CloudStack sent (so a stored bag round-trips unchanged);
validators only check them. Every check raises ``ValueError`` with a message
that reads well after the field path pydantic prepends.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
)

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$", re.ASCII)
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$", re.ASCII)
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$", re.ASCII)

PROTOCOLS = ("tcp", "udp", "icmp", "all")


class Bag(BaseModel):
    """A CloudStack databag: unknown fields are kept and ignored."""

    model_config = ConfigDict(extra="allow", frozen=True)


# Regexes rather than ipaddress: bags carry tens of thousands of these, and a
# single compiled match is several times cheaper than building an object.
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4_RE = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}", re.ASCII)
_CIDR_RE = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}(?:/(?:3[0-2]|[12]?\d))?", re.ASCII)
# An IPv6 network with its prefix, RFC 3986's IPv6address grammar: a fast path
# only (what it accepts, ipaddress accepts too; anything else is still judged
# by ipaddress), as an ACL of 10,000 items can carry as many IPv6 networks.
# Tuned for speed without changing what it accepts: an h16 never gives back a
# digit (possessive: what follows one is ":", "/" or the end, never a hex
# digit), and the shapes of networks ("fd00:1::/64", "fe80::1/64": "::" last
# or near it) come first, so they match before the other shapes are tried;
# together this makes a usual network 3 to 5 times cheaper to check.
_H16 = r"[0-9a-fA-F]{1,4}+"
_LS32 = rf"(?:{_H16}:{_H16}|{_OCTET}(?:\.{_OCTET}){{3}})"
_IPV6 = "|".join([
    rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
    rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
    rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
    rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
    rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
    rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
    rf"::(?:{_H16}:){{5}}{_LS32}",
    rf"(?:{_H16}:){{6}}{_LS32}",
])
_PREFIX6 = r"/(?:12[0-8]|1[01]\d|[1-9]?\d)"
_CIDR6_RE = re.compile(rf"(?:{_IPV6}){_PREFIX6}", re.ASCII)
# A comma-separated list of IPv4 and IPv6 networks, each with its prefix and
# without spaces: one match for what would otherwise be split and checked a
# part at a time (a both-families ACL item carries two). A fast path too:
# every part it accepts, _any_cidr accepts.
_ANY_CIDR = (rf"(?:{_OCTET}(?:\.{_OCTET}){{3}}/(?:3[0-2]|[12]?\d)"
             rf"|(?:{_IPV6}){_PREFIX6})")
_CIDR_LIST_RE = re.compile(rf"{_ANY_CIDR}(?:,{_ANY_CIDR})*", re.ASCII)


def _is_ascii_int(text: str) -> bool:
    """Digits 0-9 only: str.isdigit() and int() also take other scripts' digits
    ("²", "٣"), which nft, ip and the daemons do not."""
    return text.isascii() and text.isdigit()


def _ipv4(value: str) -> str:
    if not _IPV4_RE.fullmatch(value):
        raise ValueError("not an IPv4 address")
    return value


def _ipv6(value: str) -> str:
    # Only what ipaddress reads as IPv6, and never a scope ("fe80::1%eth0"):
    # the address reaches nft and ip as it is.
    if "%" in value or not value.isascii():
        raise ValueError("not an IPv6 address")
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        raise ValueError("not an IPv6 address") from None
    return value


def _network(value: str, parse: Callable[[str], object], family: str) -> str:
    try:
        parse(value)
    except ValueError:
        raise ValueError(f"not an {family} CIDR") from None
    if "/" not in value:
        raise ValueError(f"not an {family} CIDR (missing /prefix)")
    return value


def _cidr(value: str) -> str:
    return _network(value, lambda v: ipaddress.IPv4Network(v, strict=False), "IPv4")


def _cidr6(value: str) -> str:
    if _CIDR6_RE.fullmatch(value):
        return value
    if not value.isascii():
        raise ValueError("not an IPv6 CIDR")
    return _network(value, lambda v: ipaddress.IPv6Network(v, strict=False), "IPv6")


def _any_cidr(value: str) -> str:
    """An IPv4 or IPv6 CIDR: the management server writes "any" as both families."""
    if "/" in value and (_CIDR_RE.fullmatch(value) or _CIDR6_RE.fullmatch(value)):
        return value
    return _network(value, lambda v: ipaddress.ip_network(v, strict=False), "IPv4 or IPv6")


def _cidr_list(value: str) -> str:
    """CloudStack sends several CIDRs as one comma-separated string.

    Upstream's SetNetworkACLCommand writes an empty source list as
    "0.0.0.0/0,::/0", so IPv6 entries are part of the format even on an
    IPv4-only router.
    """
    # The list pattern first: it takes every usual value in one match; a lone
    # IPv4 address without its prefix (which _CIDR_RE lets through) still passes.
    if _CIDR_LIST_RE.fullmatch(value) or _CIDR_RE.fullmatch(value):
        return value
    for part in value.split(","):
        try:
            _any_cidr(part.strip())
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not an IPv4 or IPv6 CIDR") from None
    return value


def split_cidrs(items: str | list[str] | None) -> tuple[list[str], list[str]]:
    """(IPv4, IPv6) CIDRs of a comma-separated string or a list, in order."""
    parts = items.split(",") if isinstance(items, str) else (items or [])
    v4: list[str] = []
    v6: list[str] = []
    for part in (p.strip() for p in parts):
        if part:
            (v6 if ":" in part else v4).append(part)
    return v4, v6


def _empty_is_none(value: Any) -> Any:
    return None if value == "" else value


def _netmask(value: Any) -> str:
    """Dotted netmask or prefix length: both occur in real bags."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str):
        raise ValueError("not a netmask")
    try:
        ipaddress.IPv4Network(f"0.0.0.0/{text}")
    except ValueError:
        raise ValueError("not a netmask or prefix length") from None
    return text


def _mac(value: str) -> str:
    if not _MAC.fullmatch(value.lower()):
        raise ValueError("not a MAC address")
    return value.lower()


def _ifname(value: str) -> str:
    if not _IFNAME.fullmatch(value):
        raise ValueError("not an interface name")
    return value


def _hostname(value: str) -> str:
    if value and not _HOSTNAME.fullmatch(value):
        raise ValueError("not a domain name")
    return value


def _rfc1123(value: str) -> str:
    if not _HOSTNAME.fullmatch(value) or value.endswith("."):
        raise ValueError("not a host name (RFC 1123: letters, digits and '-', "
                         "labels of 1-63 separated by '.')")
    return value


# Strict: lax mode would turn 5 into "5"; an address sent as a number is a bug upstream.
Str = StrictStr
IPv4 = Annotated[StrictStr, AfterValidator(_ipv4)]
Cidr = Annotated[StrictStr, AfterValidator(_cidr)]
AnyCidr = Annotated[StrictStr, AfterValidator(_any_cidr)]
CidrList = Annotated[StrictStr, AfterValidator(_cidr_list)]
# CloudStack writes "no address" as "" in some fields (egress rules' src_ip).
OptionalIPv4 = Annotated[IPv4 | None, BeforeValidator(_empty_is_none)]
IPv6 = Annotated[StrictStr, AfterValidator(_ipv6)]
OptionalIPv6 = Annotated[IPv6 | None, BeforeValidator(_empty_is_none)]
Cidr6 = Annotated[StrictStr, AfterValidator(_cidr6)]
OptionalCidr6 = Annotated[Cidr6 | None, BeforeValidator(_empty_is_none)]
Netmask = Annotated[str, BeforeValidator(_netmask)]
Mac = Annotated[StrictStr, AfterValidator(_mac)]
IfName = Annotated[StrictStr, AfterValidator(_ifname)]
DomainName = Annotated[StrictStr, AfterValidator(_hostname)]
Hostname = Annotated[StrictStr, AfterValidator(_rfc1123)]
Port = Annotated[int, Field(ge=1, le=65535)]
# ACL ports: 0 occurs, "0"-"0" being how the management server says "every port".
AclPort = Annotated[int, Field(ge=0, le=65535)]
Bool = StrictBool


def prefixlen(netmask: str) -> int:
    return ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen


def parse_port_range(value: str) -> tuple[int, int]:
    """CloudStack's "first:last" port range; "0:0" means every port."""
    parts = value.split(":")
    if len(parts) != 2 or not all(_is_ascii_int(p.strip()) for p in parts):
        raise ValueError("port range must look like 'first:last'")
    first, last = int(parts[0]), int(parts[1])
    if (first, last) == (0, 0):
        return first, last
    if not (1 <= first <= 65535 and 1 <= last <= 65535):
        raise ValueError("port outside 1-65535")
    if first > last:
        raise ValueError("port range is reversed")
    return first, last


def check_protocol(value: str, allowed: tuple[str, ...] = PROTOCOLS) -> str:
    low = value.lower()
    if low in allowed:
        return low
    if _is_ascii_int(low) and 0 <= int(low) <= 255:
        return low
    raise ValueError(f"unknown protocol (expected one of {', '.join(allowed)} or 0-255)")
