"""Reading links, addresses, routes and rules through ``ip -json``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .cmd import run_json


@dataclass(frozen=True)
class Link:
    name: str
    mac: str
    up: bool
    mtu: int
    ipv4: tuple[str, ...] = field(default=())  # "a.b.c.d/nn", global and link scope


def links() -> dict[str, Link]:
    found: dict[str, Link] = {}
    for item in run_json(["ip", "-json", "address", "show"]):
        name = item["ifname"]
        addrs = tuple(
            f"{a['local']}/{a['prefixlen']}"
            for a in item.get("addr_info", [])
            if a.get("family") == "inet" and a.get("scope") in ("global", "link")
        )
        found[name] = Link(
            name=name,
            mac=item.get("address", "").lower(),
            up="UP" in item.get("flags", []),
            mtu=int(item.get("mtu", 0)),
            ipv4=addrs,
        )
    return found


def rename(old: str, new: str) -> None:
    """Give link ``old`` the name ``new`` (a link is renamed only while down)."""
    from .cmd import run

    run(["ip", "link", "set", "dev", old, "down"])
    run(["ip", "link", "set", "dev", old, "name", new])
    run(["ip", "link", "set", "dev", new, "up"])


def mac_of(name: str) -> str | None:
    """The MAC of link ``name``, or None when no such link exists (read from
    sysfs: cheap enough for every tick of the resident agent)."""
    try:
        return (Path("/sys/class/net") / name / "address").read_text().strip().lower()
    except OSError:
        return None


def names() -> list[str]:
    """Every link by name and MAC, "eth0=02:..", from sysfs (no command):
    what tells the resident agent that a NIC came or went."""
    base = Path("/sys/class/net")
    try:
        return sorted(f"{n}={mac_of(n) or ''}" for n in os.listdir(base))
    except OSError:
        return []
