"""Raw ARP on an Ethernet interface: gratuitous announcements and duplicate-address probes.

A new master announces its virtual addresses so that neighbours repoint their
caches at once instead of waiting for entries to expire, and probes them to find
out whether its peer also holds them (two masters during a partition). Both go
through an AF_PACKET socket in the calling process's network namespace: no
helper tools, so nothing to install on the appliance and no fork on failover.
"""

from __future__ import annotations

import fcntl
import ipaddress
import re
import socket
import struct
import time
from dataclasses import dataclass

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ARPHRD_ETHER = 1
REQUEST = 1
REPLY = 2

BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
ZERO_MAC = "00:00:00:00:00:00"

_SIOCGIFHWADDR = 0x8927
_PACKET_OUTGOING = 4
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$", re.ASCII)
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$", re.ASCII)
# Ethernet header, then the fixed part of an ARP packet for Ethernet/IPv4.
_ETH = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
FRAME_LEN = _ETH.size + _ARP.size  # 42: shorter frames cannot hold an ARP packet


@dataclass(frozen=True)
class ArpPacket:
    op: int
    sender_mac: str  # lower-case "aa:bb:cc:dd:ee:ff"
    sender_ip: str
    target_mac: str
    target_ip: str


def _check_ifname(ifname: str) -> str:
    if not isinstance(ifname, str) or not _IFNAME.fullmatch(ifname):
        raise ValueError(f"invalid interface name: {ifname!r}")
    return ifname


def _ipv4(ip: str) -> ipaddress.IPv4Address:
    if not isinstance(ip, str):
        raise ValueError(f"invalid IPv4 address: {ip!r}")
    try:
        return ipaddress.IPv4Address(ip)
    except ValueError:
        raise ValueError(f"invalid IPv4 address: {ip!r}") from None


def _unicast_ipv4(ip: str) -> ipaddress.IPv4Address:
    # 0.0.0.0 as a sender marks a probe, and neighbours never cache multicast
    # or broadcast addresses: announcing or probing those is always a mistake.
    addr = _ipv4(ip)
    if addr.is_unspecified or addr.is_multicast or addr == ipaddress.IPv4Address("255.255.255.255"):
        raise ValueError(f"not a unicast IPv4 address: {ip!r}")
    return addr


def _mac_bytes(mac: str) -> bytes:
    if not isinstance(mac, str) or not _MAC.fullmatch(mac):
        raise ValueError(f"invalid MAC address: {mac!r}")
    return bytes.fromhex(mac.replace(":", ""))


def _mac_str(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def build_arp(op: int, src_mac: str, src_ip: str, dst_mac: str, dst_ip: str,
              eth_dst: str | None = None) -> bytes:
    """An Ethernet frame carrying one ARP packet.

    ``dst_mac`` is the ARP target hardware address. The frame goes to ``eth_dst``;
    by default requests are broadcast (that is how they find their target) and
    replies go straight to ``dst_mac``.
    """
    if op not in (REQUEST, REPLY):
        raise ValueError(f"invalid ARP opcode: {op!r}")
    sha, tha = _mac_bytes(src_mac), _mac_bytes(dst_mac)
    spa, tpa = _ipv4(src_ip).packed, _ipv4(dst_ip).packed
    if eth_dst is None:
        eth_dst = BROADCAST_MAC if op == REQUEST else dst_mac
    header = _ETH.pack(_mac_bytes(eth_dst), sha, ETH_P_ARP)
    return header + _ARP.pack(ARPHRD_ETHER, ETH_P_IP, 6, 4, op, sha, spa, tha, tpa)


def parse_arp(frame: bytes) -> ArpPacket | None:
    """The ARP packet in an Ethernet frame, or None when it holds no Ethernet/IPv4 ARP."""
    if len(frame) < FRAME_LEN:
        return None
    _, _, ethertype = _ETH.unpack_from(frame)
    if ethertype != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(frame, _ETH.size)
    if (htype, ptype, hlen, plen) != (ARPHRD_ETHER, ETH_P_IP, 6, 4):
        return None
    return ArpPacket(
        op=op,
        sender_mac=_mac_str(sha),
        sender_ip=str(ipaddress.IPv4Address(spa)),
        target_mac=_mac_str(tha),
        target_ip=str(ipaddress.IPv4Address(tpa)),
    )


def _open(ifname: str) -> socket.socket:
    # Protocol 0 at creation receives nothing; bind then starts the ARP feed from
    # this one interface only, so no frame from another interface is ever queued.
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((ifname, ETH_P_ARP))
    except BaseException:
        sock.close()
        raise
    return sock


def _hwaddr(sock: socket.socket, ifname: str) -> str:
    # The ioctl answers for the socket's namespace; /sys/class/net answers for
    # whichever namespace mounted /sys, which need not be ours.
    ifreq = struct.pack("16sH14s", ifname.encode(), 0, b"")
    res = fcntl.ioctl(sock.fileno(), _SIOCGIFHWADDR, ifreq)
    family, data = struct.unpack_from("H14s", res, 16)
    if family != ARPHRD_ETHER:
        raise ValueError(f"not an Ethernet interface: {ifname!r} (hardware type {family})")
    return _mac_str(data[:6])


def gratuitous(ifname: str, ip: str, count: int = 1, interval: float = 0.2) -> None:
    """Announce ``ip`` as ours on ``ifname`` with ``count`` gratuitous ARP requests.

    Requests rather than replies: Linux and most other stacks refresh an existing
    cache entry from either, but some ignore unsolicited replies. Successive
    announcements are ``interval`` seconds apart because a loss burst that eats
    one frame usually eats its back-to-back twins too.
    """
    _check_ifname(ifname)
    addr = str(_unicast_ipv4(ip))
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"invalid count: {count!r} (must be at least 1)")
    if not interval >= 0:
        raise ValueError(f"invalid interval: {interval!r}")
    with _open(ifname) as sock:
        frame = build_arp(REQUEST, _hwaddr(sock, ifname), addr, ZERO_MAC, addr)
        for i in range(count):
            if i:
                time.sleep(interval)
            sock.send(frame)


def duplicate_holders(ifname: str, ip: str, timeout: float = 0.3) -> set[str]:
    """MACs of the other hosts on ``ifname`` that answer ARP for ``ip`` within ``timeout``.

    The probe's sender address is 0.0.0.0 (RFC 5227) so that it does not
    overwrite anybody's cache entry for ``ip`` while we are still asking.
    """
    _check_ifname(ifname)
    addr = str(_unicast_ipv4(ip))
    if not timeout > 0:
        raise ValueError(f"invalid timeout: {timeout!r}")
    holders: set[str] = set()
    # Bound before the probe leaves, so a fast answer cannot arrive unheard.
    with _open(ifname) as sock:
        ours = _hwaddr(sock, ifname)
        sock.send(build_arp(REQUEST, ours, "0.0.0.0", ZERO_MAC, addr))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                frame, where = sock.recvfrom(65535)
            except TimeoutError:
                break
            if where[2] == _PACKET_OUTGOING:
                continue
            pkt = parse_arp(frame)
            if (pkt is not None and pkt.op == REPLY and pkt.sender_ip == addr
                    and pkt.sender_mac != ours):
                holders.add(pkt.sender_mac)
    return holders
