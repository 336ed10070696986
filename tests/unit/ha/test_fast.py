"""The fast takeover's resignation packet (ha/fast.py), checked as a receiver would."""

from __future__ import annotations

import socket
import struct

from vragent.features.vrrp.resign import Peer, _checksum, bfd_down, resignation

PEER = Peer(dev="eth5", peer="10.255.0.2", local="10.255.0.1", vrid=51, vip="10.255.0.254",
            advert_cs=100)


def test_resignation_is_a_valid_vrrpv3_advert_of_priority_zero() -> None:
    packet = resignation(PEER)
    header, body = packet[:20], packet[20:]
    version_ihl, _tos, length, _id, _frag, ttl, proto, _sum, src, dst = struct.unpack(
        "!BBHHHBBH4s4s", header)
    assert (version_ihl, length, ttl, proto) == (0x45, len(packet), 255, 112)
    assert (socket.inet_ntoa(src), socket.inet_ntoa(dst)) == ("10.255.0.2", "10.255.0.1")
    assert _checksum(header) == 0  # a header whose checksum is right sums to zero
    ver_type, vrid, priority, count, interval = struct.unpack("!BBBBH", body[:6])
    assert (ver_type, vrid, priority, count, interval) == (0x31, 51, 0, 1, 100)
    assert socket.inet_ntoa(body[8:12]) == "10.255.0.254"
    # RFC 5798 5.2.8: over the IPv4 pseudo-header and the VRRP message.
    pseudo = src + dst + struct.pack("!BBH", 0, 112, len(body))
    assert _checksum(pseudo + body) == 0


def test_bfd_down_is_one_below_the_base_priority() -> None:
    assert bfd_down(99, 100)
    assert not bfd_down(100, 100)
    assert not bfd_down(1, 100)  # a switchover's yield
    assert not bfd_down(254, 100)  # a takeover's boost
