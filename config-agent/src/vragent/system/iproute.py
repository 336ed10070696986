"""Reading links, addresses, routes and rules through ``ip -json``."""

from __future__ import annotations

from dataclasses import dataclass, field

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
