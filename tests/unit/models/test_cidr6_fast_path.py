"""The IPv6 CIDR fast path (models.common._CIDR6_RE): everything it accepts,
ipaddress accepts too (it only skips ipaddress for well-formed networks), and
the usual spellings of real networks take it."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st
from vragent.models.common import _CIDR6_RE, _cidr6, _cidr_list


def _accepted(text: str) -> bool:
    try:
        ipaddress.IPv6Network(text, strict=False)
    except ValueError:
        return False
    return "/" in text


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="0123456789abcdefABCDEFg:./%", max_size=48))
def test_fast_path_never_accepts_what_ipaddress_refuses(text: str) -> None:
    if _CIDR6_RE.fullmatch(text):
        assert _accepted(text), text


@settings(max_examples=1000, deadline=None)
@given(st.integers(0, 2**128 - 1), st.integers(0, 128))
def test_real_networks_take_the_fast_path(address: int, prefix: int) -> None:
    ip = ipaddress.IPv6Address(address)
    for text in (ip.compressed, ip.exploded, ip.compressed.upper()):
        assert _CIDR6_RE.fullmatch(f"{text}/{prefix}"), text
    mapped = ipaddress.IPv6Address(f"::ffff:{ipaddress.IPv4Address(address >> 96)}")
    assert _CIDR6_RE.fullmatch(f"::ffff:{mapped.ipv4_mapped}/{prefix}")


def test_fast_path_refusals_still_explained() -> None:
    for bad in ("fd00::/129", "fd00::1", "fd00:::/64", "fd00::/64\n", "fd00::/64 }",
                "1:2:3:4:5:6:7:8:9/64"):
        assert not _CIDR6_RE.fullmatch(bad)
    assert _cidr6("fd00::/64") == "fd00::/64"
    assert _cidr_list("10.0.0.0/8, fd00::/8,::/0") == "10.0.0.0/8, fd00::/8,::/0"
