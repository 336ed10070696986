"""DHCP and DNS from the router's dnsmasq, with a real DHCP client (busybox
udhcpc) and a real resolver client (dig) in the VM namespaces.

The entries are dhcpentry bags as VmDhcpConfig.java builds them (the sample
bags and ``entry()``). upstream (systemvm/debian/opt/cloud/bin/):
cs_dhcp.py (merge: by IPv4 address, ``remove``), cs/CsDhcp.py (add: static
host lines, the per-address tag that empties options 3/6/15 of a non-default
NIC; configure_server: ``dhcp-range=…,static``, options 3/6/15 per tier;
delete_leases: ``dhcp_release``; write_hosts: names and ``data-server``),
cs/CsGuestNetwork.py get_dns (the router first, then the tier's servers).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from vragent_lab.netns import wait_for

from .conftest import Appliance, in_vm, udhcpc, vm_ns


def dhcp(app: Appliance, vm: str, tmp: Path, requested: str | None = None,
         tries: int = 3) -> dict[str, str] | None:
    """One DHCP exchange from ``vm``'s eth0: what it was offered, or None (no answer)."""
    return udhcpc(vm_ns(app.router, vm), tmp, requested, tries, options=("staticroutes",))


def dig(app: Appliance, vm: str, server: str, name: str, rtype: str = "A") -> str:
    return in_vm(app.router, vm, ["dig", f"@{server}", name, rtype, "+short", "+time=2",
                                  "+tries=2"], check=False).strip()


def bag(app: Appliance, tmp: Path, doc: dict[str, object], name: str) -> None:
    path = tmp / name
    path.write_text(json.dumps(doc))
    app.router.apply(path)


def entry(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "type": "dhcpentry", "host_name": "vm1", "mac_address": "02:00:0a:01:00:0a",
        "ipv4_address": "10.10.1.10", "default_gateway": "10.10.1.1", "default_entry": True,
        "remove": False}
    return {**base, **fields}


def test_vm_gets_its_address_gateway_dns_and_domain(appliance: Appliance, tmp_path: Path) -> None:
    lease = dhcp(appliance, "vm1", tmp_path)
    assert lease is not None, appliance.router.sh("cat", str(appliance.router.root /
                                                             "var/log/vragent/dnsmasq.log"))
    assert lease["ip"] == "10.10.1.10"
    assert lease["router"] == "10.10.1.1"
    assert lease["dns"] == "10.10.1.1"
    assert lease["domain"] == "vpc.lab"
    assert lease["serverid"] == "10.10.1.1"
    assert lease["subnet"] == "255.255.255.0"
    # The lease is recorded in the state directory, where it survives restarts.
    leases = (appliance.router.root / "var/lib/vragent/dnsmasq.leases").read_text()
    assert "02:00:0a:01:00:0a 10.10.1.10 vm1" in leases


def test_vm_names_resolve_through_the_router(appliance: Appliance) -> None:
    # From vm2's tier, vm1 by its name in the tier domain, by short name, and back.
    assert dig(appliance, "vm2", "10.10.2.1", "vm1.vpc.lab") == "10.10.1.10"
    assert dig(appliance, "vm2", "10.10.2.1", "vm1") == "10.10.1.10"
    assert dig(appliance, "vm2", "10.10.2.1", "10.1.10.10.in-addr.arpa", "PTR") == "vm1.vpc.lab."
    # cloud-init finds the router by this name: the gateway of the asking VM's tier.
    assert dig(appliance, "vm1", "10.10.1.1", "data-server") == "10.10.1.1"
    assert dig(appliance, "vm2", "10.10.2.1", "data-server") == "10.10.2.1"
    # A name in the tier domain that no VM has is not forwarded anywhere.
    assert dig(appliance, "vm2", "10.10.2.1", "nosuchvm.vpc.lab") == ""


def test_an_unknown_mac_gets_no_offer(appliance: Appliance, tmp_path: Path) -> None:
    ns = vm_ns(appliance.router, "vm1")
    subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "address",
                    "02:00:0a:01:00:99"], check=True)
    assert dhcp(appliance, "vm1", tmp_path, tries=2) is None


def test_removed_entry_gets_no_offer_and_loses_its_lease(appliance: Appliance,
                                                         tmp_path: Path) -> None:
    assert dhcp(appliance, "vm1", tmp_path) is not None
    pid = appliance.pid("dnsmasq")
    bag(appliance, tmp_path, entry(remove=True), "remove.json")
    leases = appliance.router.root / "var/lib/vragent/dnsmasq.leases"
    wait_for(lambda: "10.10.1.10" not in leases.read_text(), 10, "the lease to be released")
    wait_for(lambda: "10.10.1.10" not in dig(appliance, "vm2", "10.10.2.1", "vm1.vpc.lab"),
             10, "vm1's name to go")
    assert dhcp(appliance, "vm1", tmp_path, tries=2) is None
    assert appliance.pid("dnsmasq") == pid  # reloaded, never restarted


def test_new_entry_is_served_after_a_reload_not_a_restart(appliance: Appliance,
                                                          tmp_path: Path) -> None:
    pid = appliance.pid("dnsmasq")
    before = appliance.agent_log().count("reloading dnsmasq")
    bag(appliance, tmp_path, entry(host_name="web-1", ipv4_address="10.10.1.77"), "new.json")
    wait_for(lambda: dig(appliance, "vm2", "10.10.2.1", "web-1.vpc.lab") == "10.10.1.77",
             10, "the new name")
    lease = dhcp(appliance, "vm1", tmp_path)
    assert lease is not None and lease["ip"] == "10.10.1.77"
    assert appliance.pid("dnsmasq") == pid
    assert appliance.agent_log().count("reloading dnsmasq") > before


def test_lease_survives_a_dnsmasq_restart(appliance: Appliance, tmp_path: Path) -> None:
    assert dhcp(appliance, "vm1", tmp_path) is not None
    leases = appliance.router.root / "var/lib/vragent/dnsmasq.leases"
    before = leases.read_text()
    pid = appliance.pid("dnsmasq")
    appliance.supervisorctl("restart", "dnsmasq")
    wait_for(lambda: appliance.pid("dnsmasq") not in (0, pid), 10, "dnsmasq to restart")
    assert "02:00:0a:01:00:0a 10.10.1.10" in leases.read_text()
    assert leases.read_text().splitlines() == before.splitlines()
    # The client renews the address it holds, and the restarted server agrees.
    renewed = dhcp(appliance, "vm1", tmp_path, requested="10.10.1.10")
    assert renewed is not None and renewed["ip"] == "10.10.1.10"


def test_non_default_nic_gets_no_gateway_dns_or_domain(appliance: Appliance,
                                                       tmp_path: Path) -> None:
    bag(appliance, tmp_path, entry(default_entry=False), "nondefault.json")
    lease = dhcp(appliance, "vm1", tmp_path)
    assert lease is not None and lease["ip"] == "10.10.1.10"
    assert "router" not in lease and "dns" not in lease and "domain" not in lease


def test_classless_static_routes_include_the_default_route(appliance: Appliance,
                                                           tmp_path: Path) -> None:
    bag(appliance, tmp_path, entry(static_routes="10.99.0.0/16,10.10.1.254"), "routes.json")
    lease = dhcp(appliance, "vm1", tmp_path)
    assert lease is not None
    # RFC 3442: a client taking option 121 ignores option 3, so the default is in it.
    assert lease["staticroutes"] == "10.99.0.0/16 10.10.1.254 0.0.0.0/0 10.10.1.1"


@pytest.mark.parametrize("field,value", [("host_name", "bad_name!"), ("host_name", "a" * 64),
                                         ("mac_address", "02:00:0a:01:00"),
                                         ("ipv4_address", "10.10.1.300")])
def test_bad_entry_is_rejected_and_changes_nothing(appliance: Appliance, tmp_path: Path,
                                                   field: str, value: str) -> None:
    hosts = appliance.router.root / "etc/vragent/dnsmasq.dhcp-hosts"
    before = hosts.read_text()
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(entry(**{field: value})))
    proc = appliance.router.apply(path, check=False)
    assert proc.returncode == 2
    assert f"{field}:" in proc.stderr and "Traceback" not in proc.stderr
    assert hosts.read_text() == before


def test_reload_after_a_custom_entry_got_its_lease_keeps_dnsmasq_up(appliance: Appliance,
                                                                   tmp_path: Path) -> None:
    """dnsmasq 2.90 crashes on SIGHUP once a host tagged from a hosts file holds
    a lease: entries with options of their own live in the main file instead."""
    bag(appliance, tmp_path, entry(default_entry=False), "nondefault.json")
    wait_for(lambda: "set:vr-custom" in (appliance.router.root / "etc/vragent/dnsmasq.conf")
             .read_text() and appliance.running("dnsmasq"), 10, "the custom entry")
    wait_for(lambda: dhcp(appliance, "vm1", tmp_path) is not None, 10, "a lease")
    pid = appliance.pid("dnsmasq")
    reloads = appliance.agent_log().count("reloading dnsmasq")
    bag(appliance, tmp_path, entry(host_name="other", mac_address="02:00:0a:01:00:55",
                                   ipv4_address="10.10.1.55"), "other.json")
    wait_for(lambda: appliance.agent_log().count("reloading dnsmasq") > reloads, 10,
             "the reload")
    wait_for(lambda: dig(appliance, "vm2", "10.10.2.1", "other.vpc.lab") == "10.10.1.55", 10,
             "the new name")
    assert appliance.pid("dnsmasq") == pid
