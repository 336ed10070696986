"""ipaliases bags on the isolated router: extra addresses on the guest NIC.

upstream: merge.py process_ipaliases (each alias filed in the ips bag on the
first guest NIC as a guest address, ``revoke`` as ``add: false``; ``count``
ignored) and cs/CsAddress.py CsIP.compare (addresses no longer backed are
deleted). Java: CreateIpAliasConfigItem / DeleteIpAliasConfigItem (a delete
bag carries the revoked aliases and the remaining ones).
"""

from __future__ import annotations

from vragent_lab.netns import in_ns

from ..harness import Router
from .conftest import addrs, apply_bags, eventually_pings, iso_ips, pings

ALIAS = "10.1.2.1"


def aliases(*items: tuple[str, bool]) -> dict[str, object]:
    return {"type": "ipaliases", "aliases": [
        {"revoke": revoke, "ip_address": ip, "netmask": "255.255.255.0", "count": n}
        for n, (ip, revoke) in enumerate(items, 1)]}


def test_alias_added_on_the_guest_nic_and_revoked(iso: Router) -> None:
    apply_bags(iso, iso_ips(), aliases((ALIAS, False), ("10.1.3.1", False)))
    assert f"{ALIAS}/24" in addrs(iso, "eth0")
    assert "10.1.3.1/24" in addrs(iso, "eth0")
    assert "10.1.1.1/24" in addrs(iso, "eth0")  # the boot address is untouched
    # A VM on the alias subnet reaches it (the lab's vm sits on eth0's link).
    vm = f"{iso.lab.prefix}vm"
    in_ns(vm, ["ip", "addr", "add", "10.1.2.50/24", "dev", "eth0"])
    assert eventually_pings(iso, "vm", ALIAS)
    # DeleteIpAliasConfigItem: the revoked one, and the one that stays.
    apply_bags(iso, aliases((ALIAS, True), ("10.1.3.1", False)))
    assert f"{ALIAS}/24" not in addrs(iso, "eth0")
    assert "10.1.3.1/24" in addrs(iso, "eth0")
    assert not pings(iso, "vm", ALIAS, timeout=0.5)
    in_ns(vm, ["ip", "addr", "del", "10.1.2.50/24", "dev", "eth0"])
