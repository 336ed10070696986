"""Hand keepalived a packet as if it had arrived on a NIC.

A veth pair (``vrinj0`` → ``vrinj1``) whose far end redirects everything it
receives into the ingress of the VRRP NIC (tc mirred): a frame sent on
``vrinj0`` addressed to ``vrinj1``'s MAC is received by the VRRP NIC, so
keepalived reads it like any advert. Used for the fast takeover (ha/fast.py).
"""

from __future__ import annotations

import socket

from ..errors import ApplyError
from .cmd import spawn
from .iproute import mac_of

SEND = "vrinj0"
RECEIVE = "vrinj1"


def _run(argv: list[str]) -> None:
    proc = spawn(argv)
    if proc.returncode != 0:
        raise ApplyError(f"{' '.join(argv)}: {proc.stderr.strip()}")


def ensure(target: str) -> None:
    """The pair exists, up, and redirects into ``target``."""
    if mac_of(SEND) is None:
        _run(["ip", "link", "add", SEND, "type", "veth", "peer", "name", RECEIVE])
    for dev in (SEND, RECEIVE):
        # No IPv6 on it: no router solicitations, no addresses of its own.
        _run(["sysctl", "-q", "-w", f"net.ipv6.conf.{dev}.disable_ipv6=1"])
        _run(["ip", "link", "set", "dev", dev, "up"])
    # Replacing the qdisc drops any filter of an earlier target.
    spawn(["tc", "qdisc", "del", "dev", RECEIVE, "ingress"])
    _run(["tc", "qdisc", "add", "dev", RECEIVE, "ingress"])
    _run(["tc", "filter", "add", "dev", RECEIVE, "parent", "ffff:", "protocol", "all",
          "u32", "match", "u32", "0", "0", "action", "mirred", "ingress", "redirect",
          "dev", target])


def remove() -> None:
    if mac_of(SEND) is not None:
        _run(["ip", "link", "del", SEND])


def send(ip_packet: bytes) -> None:
    """One IPv4 packet, received by the target NIC a moment later."""
    dst = mac_of(RECEIVE)
    src = mac_of(SEND)
    if dst is None or src is None:
        raise ApplyError(f"{SEND}: the injection link does not exist")
    frame = bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) \
        + b"\x08\x00" + ip_packet
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((SEND, 0))
        sock.send(frame)
