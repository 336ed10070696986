"""DHCPv6 leases of removed entries are released at once, with a real client.

Upstream releases a removed entry's IPv4 lease (cs/CsDhcp.py delete_leases,
edithosts.sh: ``dhcp_release <dev> <ip> <mac>``) but never an IPv6 one: its
address stays leased to the old DUID (infinite leases) until dnsmasq
restarts, and dnsmasq gives no address that another client holds. Here the
resident agent releases it with ``dhcp_release6`` once dnsmasq has re-read
its hosts (vragent/system/dnsmasq.py), so the address is the next owner's
at once. ISC dhclient -6 with the DUID CloudStack sends (DUID-LL of the
MAC, VmDhcpConfig.java) is the client, as in test_ipv6.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from vragent_lab.netns import in_ns, wait_for

from .conftest import Appliance, vm_ns
from .test_ipv6 import DHCLIENT_SCRIPT, VM1_DHCP6, VM1_DUID, _octal_duid, _sample, give_ipv6

# The next owner: another VM (its own MAC, so its own DUID-LL) given vm1's IPv6 address.
NEW_MAC = "02:00:0a:01:00:63"
NEW_DUID = "00:03:00:01:" + NEW_MAC
NEW_IP4 = "10.10.1.99"


def dhcp6(app: Appliance, tmp: Path, duid: str, tag: str) -> dict[str, str] | None:
    """One DHCPv6 exchange from vm1's link as the client ``duid``: the lease
    bound, or None. The client is ended at once (it would renew), without
    releasing anything itself (SIGTERM, not dhclient -r)."""
    ns = vm_ns(app.router, "vm1")
    out = tmp / f"{tag}.out"
    script = tmp / f"{tag}.sh"
    script.write_text(DHCLIENT_SCRIPT.replace("{out}", str(out)))
    script.chmod(0o755)
    leases = tmp / f"{tag}.leases"
    leases.write_text(f'default-duid "{_octal_duid(duid)}";\n')
    pidfile = tmp / f"{tag}.pid"

    def link_local_ready() -> bool:
        shown = in_ns(ns, ["ip", "-6", "addr", "show", "dev", "eth0", "scope", "link"])
        return "inet6 fe80:" in shown and "tentative" not in shown
    wait_for(link_local_ready, 20, "vm1's link-local address to leave duplicate detection")
    # -1: one try; dhclient -6 waits for an answer up to its own timeout.
    subprocess.run(["ip", "netns", "exec", ns, "dhclient", "-6", "-1", "-lf", str(leases),
                    "-pf", str(pidfile), "-sf", str(script), "eth0"],
                   capture_output=True, text=True, check=False, timeout=90)
    if pidfile.exists() and pidfile.read_text().strip().isdigit():
        try:
            os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
        except ProcessLookupError:
            pass
    if not out.exists():
        return None
    lease = dict(line.split("=", 1) for line in out.read_text().splitlines())
    # The address goes with the client: the next one configures its own.
    in_ns(ns, ["ip", "-6", "addr", "flush", "dev", "eth0", "scope", "global"])
    return lease


def _entry(tmp: Path, name: str, **fields: object) -> Path:
    path = tmp / name
    path.write_text(json.dumps({**_sample("vm_dhcp_entry_vm1.json"), **fields}))
    return path


def _lease_lines(app: Appliance) -> list[str]:
    path = app.router.root / "var/lib/vragent/dnsmasq.leases"
    return [ln for ln in path.read_text().splitlines() if f" {VM1_DHCP6} " in ln]


def test_removed_entry_releases_its_dhcpv6_lease_for_the_next_owner(
        appliance: Appliance, tmp_path: Path) -> None:
    router = appliance.router
    give_ipv6(appliance, tmp_path)
    log = router.root / "var/log/vragent/dnsmasq.log"
    first = dhcp6(appliance, tmp_path, VM1_DUID, "first")
    assert first is not None, log.read_text()
    assert first["new_ip6_address"] == VM1_DHCP6
    (held,) = _lease_lines(appliance)
    assert held.endswith(f" {VM1_DUID}")
    pid = appliance.pid("dnsmasq")

    # vm1 expunged: its entry removed (VmDhcpConfig remove=true).
    router.apply(_entry(tmp_path, "gone.json", ipv6_address=VM1_DHCP6, ipv6_duid=VM1_DUID,
                        remove=True))
    wait_for(lambda: _lease_lines(appliance) == [], 15,
             "vm1's DHCPv6 lease to leave dnsmasq's lease file")
    # Released in the running dnsmasq (no restart), as the agent reports it.
    assert appliance.pid("dnsmasq") == pid
    wait_for(lambda: f"{VM1_DHCP6} ({VM1_DUID})" in appliance.agent_log(), 10,
             "the agent's report of the release")

    # A new VM with another DUID is given the address: it is its own at once.
    router.apply(_entry(tmp_path, "new.json", host_name="vm9", mac_address=NEW_MAC,
                        ipv4_address=NEW_IP4, ipv6_address=VM1_DHCP6, ipv6_duid=NEW_DUID))
    second = dhcp6(appliance, tmp_path, NEW_DUID, "second")
    assert second is not None, log.read_text()
    assert second["new_ip6_address"] == VM1_DHCP6
    (held,) = _lease_lines(appliance)
    assert held.endswith(f" {NEW_DUID}")


def test_changed_ipv6_address_releases_the_old_lease(appliance: Appliance,
                                                     tmp_path: Path) -> None:
    router = appliance.router
    give_ipv6(appliance, tmp_path)
    assert dhcp6(appliance, tmp_path, VM1_DUID, "first") is not None
    assert _lease_lines(appliance)
    # The same VM given another address (same DUID): the old lease goes.
    moved = "fd10:10:1::11"
    router.apply(_entry(tmp_path, "moved.json", ipv6_address=moved, ipv6_duid=VM1_DUID))
    wait_for(lambda: _lease_lines(appliance) == [], 15, "the old address's lease to go")
    again = dhcp6(appliance, tmp_path, VM1_DUID, "again")
    assert again is not None and again["new_ip6_address"] == moved
