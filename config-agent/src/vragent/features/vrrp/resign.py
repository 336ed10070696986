"""The master's resignation, forged for fast takeover (ha/fast.py).

keepalived 2.2.7 reacts to a BFD session going down only by changing the
instance's priority (``track_bfd``); its takeover still waits for three
missed adverts. So the resident agent, told of the priority change on the
notify FIFO, does what a dying master would have done had it had the time:

1. it raises this router's priority to the top (``vragent_boost``), which
   shortens keepalived's skew time to 2/256 of advert_int;
2. once keepalived reports the raised priority (the skew is computed when the
   resignation arrives: at priority 99 it would be 61 % of advert_int), it
   hands keepalived the master's resignation, a VRRPv3 advert of priority 0
   from the master's address, received on the sync NIC (system/inject.py).

keepalived, per RFC 5798 6.4.2, then becomes master after its skew time: a
few milliseconds. If the master was in fact alive (BFD lost on a busy host),
the pair still has one master: the old one sees this router's higher
priority and steps down, as in any election.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

VRRP = 112
# What keepalived reports once the boost applies (its ceiling below an owner's 255).
BOOSTED = 254


@dataclass(frozen=True)
class Peer:
    """What the resignation carries: the peer's and this router's sync addresses."""

    dev: str
    peer: str  # the master's address (the packet's source)
    local: str  # this router's (its destination)
    vrid: int
    vip: str
    advert_cs: int  # advert_int in centiseconds


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total >> 16) + (total & 0xFFFF)
    return ~total & 0xFFFF


def resignation(p: Peer) -> bytes:
    """The IPv4 packet of a VRRPv3 advert with priority 0 from ``p.peer``."""
    body = struct.pack("!BBBBHH", 0x31, p.vrid, 0, 1, p.advert_cs & 0x0FFF, 0) \
        + socket.inet_aton(p.vip)
    pseudo = socket.inet_aton(p.peer) + socket.inet_aton(p.local) \
        + struct.pack("!BBH", 0, VRRP, len(body))
    body = body[:6] + struct.pack("!H", _checksum(pseudo + body)) + body[8:]
    # TTL 255: keepalived drops adverts that crossed a router (RFC 5798 5.1.1.3).
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(body), 0, 0, 255, VRRP, 0,
                         socket.inet_aton(p.peer), socket.inet_aton(p.local))
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + body


def bfd_down(priority: int, base: int) -> bool:
    """keepalived's reported priority says the peer's BFD session is down
    (track_bfd weight -1; only read while nothing else moves the priority)."""
    return priority == down_priority(base)


def down_priority(base: int) -> int:
    return max(1, base - 1)
