"""Pure helpers and value types shared by every model."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError
from vragent.models.common import (
    PROTOCOLS,
    Cidr,
    CidrList,
    DomainName,
    IfName,
    IPv4,
    Mac,
    Netmask,
    check_protocol,
    parse_port_range,
    prefixlen,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("22:22", (22, 22)),
        ("22:80", (22, 80)),
        ("1:65535", (1, 65535)),
        ("65535:65535", (65535, 65535)),
        ("0:0", (0, 0)),  # CloudStack's "every port"
        (" 22 : 80 ", (22, 80)),
        ("0080:0443", (80, 443)),
    ],
)
def test_parse_port_range_accepts(text: str, expected: tuple[int, int]) -> None:
    assert parse_port_range(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("22", "first:last"),
        ("22-80", "first:last"),
        ("1:2:3", "first:last"),
        ("a:b", "first:last"),
        (":", "first:last"),
        ("", "first:last"),
        ("-1:5", "first:last"),
        ("22:", "first:last"),
        ("0:22", "outside 1-65535"),
        ("22:0", "outside 1-65535"),
        ("65536:65536", "outside 1-65535"),
        ("1:70000", "outside 1-65535"),
        ("80:22", "reversed"),
        ("65535:1", "reversed"),
    ],
)
def test_parse_port_range_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_port_range(text)


@pytest.mark.parametrize(
    ("netmask", "length"),
    [
        ("255.255.255.0", 24),
        ("255.255.0.0", 16),
        ("255.255.255.252", 30),
        ("255.255.255.255", 32),
        ("0.0.0.0", 0),
        ("24", 24),
        ("0", 0),
        ("32", 32),
    ],
)
def test_prefixlen(netmask: str, length: int) -> None:
    assert prefixlen(netmask) == length


@pytest.mark.parametrize("netmask", ["255.0.255.0", "33", "-1", "mask", "255.255.255.256"])
def test_prefixlen_rejects_non_masks(netmask: str) -> None:
    with pytest.raises(ValueError):
        prefixlen(netmask)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("tcp", "tcp"),
        ("TCP", "tcp"),
        ("Udp", "udp"),
        ("icmp", "icmp"),
        ("ALL", "all"),
        ("0", "0"),
        ("6", "6"),
        ("112", "112"),
        ("255", "255"),
    ],
)
def test_check_protocol_accepts(value: str, expected: str) -> None:
    assert check_protocol(value) == expected


@pytest.mark.parametrize("value", ["gre", "", "256", "-1", "tcp ", "6a", "ipv6-icmp"])
def test_check_protocol_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="unknown protocol"):
        check_protocol(value)


def test_check_protocol_restricted_names() -> None:
    assert check_protocol("UDP", ("tcp", "udp")) == "udp"
    with pytest.raises(ValueError, match=r"expected one of tcp, udp or 0-255"):
        check_protocol("icmp", ("tcp", "udp"))
    # Numbers always pass the helper; models that need a name check it themselves.
    assert check_protocol("17", ("tcp", "udp")) == "17"


def test_protocols_constant() -> None:
    assert PROTOCOLS == ("tcp", "udp", "icmp", "all")


# -- annotated value types ----------------------------------------------------


def _ok(tp: object, value: object) -> object:
    return TypeAdapter(tp).validate_python(value)


def _bad(tp: object, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TypeAdapter(tp).validate_python(value)


def test_ipv4_keeps_text_and_is_strict() -> None:
    assert _ok(IPv4, "10.0.0.1") == "10.0.0.1"
    _bad(IPv4, "10.0.0.256", "not an IPv4 address")
    _bad(IPv4, "::1", "not an IPv4 address")
    _bad(IPv4, "10.0.0.0/24", "not an IPv4 address")
    _bad(IPv4, 167772161, "valid string")


def test_cidr_needs_a_prefix_but_tolerates_host_bits() -> None:
    assert _ok(Cidr, "10.10.1.1/24") == "10.10.1.1/24"  # kept as sent
    _bad(Cidr, "10.10.1.0", "missing /prefix")
    _bad(Cidr, "10.10.1.0/33", "not an IPv4 CIDR")
    _bad(Cidr, 10, "valid string")


def test_cidr_list_is_comma_separated() -> None:
    assert _ok(CidrList, "10.0.0.0/8, 192.168.0.0/16") == "10.0.0.0/8, 192.168.0.0/16"
    _bad(CidrList, "10.0.0.0/8,nope", "'nope' is not an IPv4 or IPv6 CIDR")
    # SetNetworkACLCommand writes "any" as both families.
    assert _ok(CidrList, "0.0.0.0/0,::/0") == "0.0.0.0/0,::/0"
    _bad(CidrList, "10.0.0.0/8,fd00::/129", "'fd00::/129' is not an IPv4 or IPv6 CIDR")


def test_netmask_accepts_dotted_and_prefix_forms() -> None:
    assert _ok(Netmask, "255.255.255.0") == "255.255.255.0"
    assert _ok(Netmask, "24") == "24"
    assert _ok(Netmask, 24) == "24"
    _bad(Netmask, True, "not a netmask")
    _bad(Netmask, "255.0.255.0", "not a netmask or prefix length")
    _bad(Netmask, None, "not a netmask")


def test_mac_is_lowercased() -> None:
    assert _ok(Mac, "02:00:0A:00:00:FF") == "02:00:0a:00:00:ff"
    for bad in ("02:00:0a:00:00", "02-00-0a-00-00-01", "0200.0a00.0001", "g2:00:0a:00:00:01"):
        _bad(Mac, bad, "not a MAC address")


def test_ifname_and_domain_name() -> None:
    assert _ok(IfName, "eth10") == "eth10"
    assert _ok(IfName, "bond0.100") == "bond0.100"
    _bad(IfName, "a-very-long-ifname", "not an interface name")
    _bad(IfName, "eth 1", "not an interface name")
    assert _ok(DomainName, "vpc.lab") == "vpc.lab"
    assert _ok(DomainName, "") == ""
    _bad(DomainName, "bad_domain..lab", "not a domain name")
