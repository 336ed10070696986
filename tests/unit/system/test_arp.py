"""ARP frames: building and parsing, and the argument checks done before any socket opens."""

from __future__ import annotations

import re

import pytest
from vragent.system import arp
from vragent.system.arp import REPLY, REQUEST, ArpPacket, build_arp, parse_arp

MAC = "02:00:0a:4d:00:01"
PEER = "02:00:0a:4d:00:02"


def test_round_trip_request_and_reply() -> None:
    req = build_arp(REQUEST, MAC, "10.77.0.1", arp.ZERO_MAC, "10.77.0.2")
    assert parse_arp(req) == ArpPacket(REQUEST, MAC, "10.77.0.1", arp.ZERO_MAC, "10.77.0.2")
    rep = build_arp(REPLY, PEER, "10.77.0.2", MAC, "10.77.0.1")
    assert parse_arp(rep) == ArpPacket(REPLY, PEER, "10.77.0.2", MAC, "10.77.0.1")


def test_upper_case_mac_comes_back_lower_case() -> None:
    frame = build_arp(REPLY, "02:AB:CD:EF:00:01", "10.77.0.2", MAC, "10.77.0.1")
    pkt = parse_arp(frame)
    assert pkt is not None and pkt.sender_mac == "02:ab:cd:ef:00:01"


def test_gratuitous_request_byte_layout() -> None:
    frame = build_arp(REQUEST, MAC, "10.77.0.9", arp.ZERO_MAC, "10.77.0.9")
    mac = bytes.fromhex("02000a4d0001")
    ip = bytes([10, 77, 0, 9])
    assert len(frame) == 42
    assert frame[0:6] == b"\xff" * 6  # broadcast: every neighbour must see it
    assert frame[6:12] == mac
    assert frame[12:14] == b"\x08\x06"
    assert frame[14:16] == b"\x00\x01"  # hardware type Ethernet
    assert frame[16:18] == b"\x08\x00"  # protocol type IPv4
    assert frame[18:20] == b"\x06\x04"  # address lengths
    assert frame[20:22] == b"\x00\x01"  # request
    assert frame[22:28] == mac
    assert frame[28:32] == ip
    assert frame[32:38] == b"\x00" * 6
    assert frame[38:42] == ip


def test_reply_goes_to_target_and_eth_dst_overrides() -> None:
    rep = build_arp(REPLY, PEER, "10.77.0.2", MAC, "10.77.0.1")
    assert rep[0:6] == bytes.fromhex("02000a4d0001")
    req = build_arp(REQUEST, MAC, "10.77.0.1", arp.ZERO_MAC, "10.77.0.2", eth_dst=PEER)
    assert req[0:6] == bytes.fromhex("02000a4d0002")


def test_parse_accepts_padded_frames() -> None:
    # Ethernet pads to 60 bytes on the wire; the padding is not part of the packet.
    frame = build_arp(REPLY, PEER, "10.77.0.2", MAC, "10.77.0.1") + b"\x00" * 18
    pkt = parse_arp(frame)
    assert pkt is not None and pkt.sender_ip == "10.77.0.2"


def test_parse_rejects_short_frames() -> None:
    frame = build_arp(REPLY, PEER, "10.77.0.2", MAC, "10.77.0.1")
    assert parse_arp(frame[:-1]) is None
    assert parse_arp(frame[:14]) is None
    assert parse_arp(b"") is None


def test_parse_rejects_other_ethertypes() -> None:
    frame = bytearray(build_arp(REPLY, PEER, "10.77.0.2", MAC, "10.77.0.1"))
    frame[12:14] = b"\x08\x00"  # IPv4
    assert parse_arp(bytes(frame)) is None
    frame[12:14] = b"\x86\xdd"  # IPv6
    assert parse_arp(bytes(frame)) is None


@pytest.mark.parametrize("offset,value", [
    (14, b"\x00\x06"),  # hardware type IEEE 802 instead of Ethernet
    (16, b"\x86\xdd"),  # protocol type IPv6
    (18, b"\x08\x04"),  # hardware address length
    (19, b"\x10"),      # protocol address length
])
def test_parse_rejects_arp_for_other_address_types(offset: int, value: bytes) -> None:
    frame = bytearray(build_arp(REPLY, PEER, "10.77.0.2", MAC, "10.77.0.1"))
    frame[offset:offset + len(value)] = value
    assert parse_arp(bytes(frame)) is None


@pytest.mark.parametrize("args,named", [
    ((3, MAC, "10.77.0.1", arp.ZERO_MAC, "10.77.0.2"), "opcode: 3"),
    ((REQUEST, "02:00:0a:4d:00", "10.77.0.1", arp.ZERO_MAC, "10.77.0.2"), "'02:00:0a:4d:00'"),
    ((REQUEST, MAC, "10.77.0.1", "zz:00:00:00:00:00", "10.77.0.2"), "'zz:00:00:00:00:00'"),
    ((REQUEST, MAC, "10.77.0.256", arp.ZERO_MAC, "10.77.0.2"), "'10.77.0.256'"),
    ((REQUEST, MAC, "10.77.0.1", arp.ZERO_MAC, "fd00::1"), "'fd00::1'"),
])
def test_build_rejects_bad_fields(args: tuple[int, str, str, str, str], named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        build_arp(*args)


BAD_IFNAMES = ["", "eth0; reboot", "a" * 16, "eth 0", "eth0/1", "ëth0"]
BAD_IPS = ["", "10.77.0", "10.77.0.1/24", "fd00::1", "10.77.0.01", " 10.77.0.1", "eth0"]
NOT_UNICAST = ["0.0.0.0", "224.0.0.18", "255.255.255.255"]


@pytest.mark.parametrize("ifname", BAD_IFNAMES)
def test_bad_interface_names_are_named(ifname: str) -> None:
    with pytest.raises(ValueError, match="interface name") as err:
        arp.gratuitous(ifname, "10.77.0.1")
    assert repr(ifname) in str(err.value)
    with pytest.raises(ValueError, match="interface name") as err:
        arp.duplicate_holders(ifname, "10.77.0.1")
    assert repr(ifname) in str(err.value)


@pytest.mark.parametrize("ip", BAD_IPS + NOT_UNICAST)
def test_bad_addresses_are_named(ip: str) -> None:
    with pytest.raises(ValueError) as err:
        arp.gratuitous("eth0", ip)
    assert repr(ip) in str(err.value)
    with pytest.raises(ValueError) as err:
        arp.duplicate_holders("eth0", ip)
    assert repr(ip) in str(err.value)


@pytest.mark.parametrize("count", [0, -1, True])
def test_gratuitous_rejects_bad_count(count: int) -> None:
    with pytest.raises(ValueError, match="count"):
        arp.gratuitous("eth0", "10.77.0.1", count=count)


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("nan")])
def test_duplicate_holders_rejects_bad_timeout(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        arp.duplicate_holders("eth0", "10.77.0.1", timeout=timeout)
