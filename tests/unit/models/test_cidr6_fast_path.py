"""The IPv6 CIDR fast path (models.common._CIDR6_RE): everything it accepts,
ipaddress accepts too (it only skips ipaddress for well-formed networks), and
the usual spellings of real networks take it. Likewise the CIDR list fast path
(_CIDR_LIST_RE) against the part-by-part check it skips."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vragent.models.common import _CIDR6_RE, _CIDR_LIST_RE, _any_cidr, _cidr6, _cidr_list


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


def _parts_accepted(text: str) -> bool:
    """What _cidr_list's part-by-part check says of ``text``."""
    try:
        for part in text.split(","):
            _any_cidr(part.strip())
    except ValueError:
        return False
    return True


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.one_of(
    st.text(alphabet="0123456789abcdefABCDEF:./, ", max_size=24),
    st.builds(lambda a, p: f"{ipaddress.IPv4Address(a)}/{p}", st.integers(0, 2**32 - 1),
              st.integers(0, 40)),
    st.builds(lambda a, p: f"{ipaddress.IPv6Address(a).compressed}/{p}",
              st.integers(0, 2**128 - 1), st.integers(0, 140)),
), min_size=1, max_size=4))
def test_list_fast_path_never_accepts_what_the_parts_check_refuses(parts: list[str]) -> None:
    text = ",".join(parts)
    if _CIDR_LIST_RE.fullmatch(text):
        assert _parts_accepted(text), text


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 32), st.integers(0, 2**128 - 1),
       st.integers(0, 128))
def test_both_families_lists_take_the_list_fast_path(a4: int, p4: int, a6: int, p6: int) -> None:
    v4 = f"{ipaddress.IPv4Address(a4)}/{p4}"
    v6 = f"{ipaddress.IPv6Address(a6).compressed}/{p6}"
    for text in (v4, v6, f"{v4},{v6}", f"{v6},{v4}", f"{v4},{v6},{v4}", "0.0.0.0/0,::/0"):
        assert _CIDR_LIST_RE.fullmatch(text), text
        assert _cidr_list(text) == text


def test_list_refusals_unchanged() -> None:
    """What the list pattern does not take is judged part by part, as before."""
    assert _cidr_list("10.0.0.1") == "10.0.0.1"  # a lone address: _CIDR_RE's, as before
    assert _cidr_list("10.0.0.0/8 , fd00::/8") == "10.0.0.0/8 , fd00::/8"
    for bad, named in (("10.0.0.1,fd00::/64", "'10.0.0.1'"), ("10.0.0.0/8,", "''"),
                       ("fd00::/64,fd00::/129", "'fd00::/129'"), ("10.0.0.0/33", "'10.0.0.0/33'")):
        assert not _CIDR_LIST_RE.fullmatch(bad)
        with pytest.raises(ValueError, match=named):
            _cidr_list(bad)
