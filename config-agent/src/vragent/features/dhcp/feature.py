"""The dhcp feature: dnsmasq serves the tiers' VMs their static leases and
names, from the ``dhcpentry`` bags (cs_dhcp.py, cs/CsDhcp.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ...feature import BagType, Docs, Feature, Opening, Traffic, raw
from . import subsystem
from .model import DhcpEntry

# DNS (udp and tcp) and DHCP, on every tier (CsAddress.fw_router / fw_vpcrouter).
DNS_PORT = 53
DHCP_SERVER_PORT = 67


def view(docs: Docs, v: Any) -> list[DhcpEntry]:
    return [v(DhcpEntry, e) for _, e in sorted(docs.get("dhcpentry", {}).items())]


DHCP6_SERVER_PORT = 547


def traffic(cfg: Any, settings: Any, d: Any) -> Traffic:
    accept: tuple[Opening, ...] = (
        Opening("guests", "udp", (DNS_PORT, DHCP_SERVER_PORT)),
        Opening("guests", "tcp", (DNS_PORT,)),
    )
    if d is not None and any(t.network6 for t in d.tiers):
        # DHCPv6 (a dual-stack tier): its clients send from their link-local
        # address to ff02::1:2, port 547.
        accept += (Opening("guests", "udp", (DHCP6_SERVER_PORT,)),)
    return Traffic(accept=accept)


def dhcp_key(entry: dict[str, Any]) -> str:
    """Entries are filed by IPv4 address (cs_dhcp.py); one without, by its MAC."""
    return str(entry.get("ipv4_address") or f"mac-{entry['mac_address']}")


def merge_dhcpentry(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    assert isinstance(bag, DhcpEntry)
    # A shallow copy: a batch of thousands of entries merges one by one, and
    # the entries themselves are never changed in place.
    entries = dict(docs.get("dhcpentry", {}))
    entry = raw(bag)
    key = dhcp_key(entry)
    # One lease per NIC: a MAC re-sent with a new address loses its old one.
    stale = [k for k, e in entries.items() if e["mac_address"] == bag.mac_address]
    for k in stale:
        del entries[k]
    if bag.remove:
        entries.pop(key, None)
    else:
        entries[key] = entry
    return {**docs, "dhcpentry": entries}


FEATURE = Feature(
    name=subsystem.NAME,
    bags=(BagType("dhcpentry", DhcpEntry, merge_dhcpentry),),
    view=view,
    subsystem=subsystem,
    traffic=traffic,
)
