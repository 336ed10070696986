"""IPv6 on one router, with real daemons and clients in the VM namespaces.

The sample VPC (supervisord, the resident agent, dnsmasq) given IPv6 as
CloudStack 4.17+ gives it: guestnetwork bags with router_guest_ip6*, dns6 and
the VPC's public router_ip6* (SetGuestNetworkConfigItem.java), a dhcpentry
with ipv6_address/ipv6_duid (VmDhcpConfig.java). What must follow, as
upstream's cs/CsVpcGuestNetwork.py (addresses, default route, radvd) and
edithosts.sh (DHCPv6 by DUID) make it:

* a VM taking router advertisements (accept_ra=2) gets its SLAAC address and
  default route from radvd, learns the RDNSS address (rdisc6) and resolves
  names there: the router's dnsmasq answers DNS over IPv6;
* a DHCPv6 client (ISC dhclient -6, with the DUID CloudStack sent) gets the
  entry's static address;
* ping6 and TCP over IPv6 cross the router between tiers, and to the outside
  namespace through the public IPv6 and its default route (no NAT: the
  outside sees the VM's own address).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vragent_lab.netns import in_ns, wait_for

from ..harness import SAMPLE, Router
from .conftest import Appliance, vm_ns

PUBLIC6 = {"router_ip6": "fd64:10::10", "router_ip6_gateway": "fd64:10::1",
           "router_ip6_cidr": "fd64:10::/64"}
TIERS6 = {
    "eth2": {"router_guest_ip6": "fd10:10:1::1", "router_guest_ip6_gateway": "fd10:10:1::1",
             "router_guest_ip6_cidr": "fd10:10:1::/64", "cidr6": "64", **PUBLIC6},
    "eth3": {"router_guest_ip6": "fd10:10:2::1", "router_guest_ip6_gateway": "fd10:10:2::1",
             "router_guest_ip6_cidr": "fd10:10:2::/64", "cidr6": "64", **PUBLIC6},
}
OUTSIDE6 = "fd64:10::1"
OUTSIDE6_FAR = "fd64:99::1"  # beyond the public gateway: only the default route reaches it
VM1_DUID = "00:03:00:01:02:00:0a:01:00:0a"  # DUID-LL of vm1's MAC, as CloudStack sends it
VM1_DHCP6 = "fd10:10:1::10"
# SLAAC (EUI-64) addresses of the VMs' MACs 02:00:0a:01:00:0a and 02:00:0a:02:00:0a.
VM1_SLAAC = "fd10:10:1::aff:fe01:a"
VM2_SLAAC = "fd10:10:2::aff:fe02:a"


def _bag(tmp: Path, doc: dict[str, object], name: str) -> Path:
    path = tmp / name
    path.write_text(json.dumps(doc))
    return path


def _sample(name: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads((SAMPLE / name).read_text())
    return doc


def give_ipv6(app: Appliance, tmp: Path) -> None:
    """The VPC gets IPv6 on both tiers and its public side; vm1 a DHCPv6 entry;
    the tiers' ACLs admit the other tier's IPv6 too."""
    bags = [
        _bag(tmp, {**_sample("guest_network_tier1.json"), **TIERS6["eth2"],
                   "dns6": "fd10:10:1::1"}, "gn1.json"),
        _bag(tmp, {**_sample("guest_network_tier2.json"), **TIERS6["eth3"]}, "gn2.json"),
        _bag(tmp, {**_sample("vm_dhcp_entry_vm1.json"), "ipv6_address": VM1_DHCP6,
                   "ipv6_duid": VM1_DUID}, "dhcp1.json"),
        _bag(tmp, {**_sample("network_acl_tier1.json"), "ingress_rules": [
            {"type": "all", "cidr": "10.10.2.0/24,fd10:10:2::/64", "allowed": True}]},
            "acl1.json"),
        _bag(tmp, {**_sample("network_acl_tier2.json"), "ingress_rules": [
            {"type": "all", "cidr": "10.10.1.0/24,fd10:10:1::/64", "allowed": True}]},
            "acl2.json"),
    ]
    app.router.apply(*bags)
    wait_for(lambda: app.running("radvd"), 20, "radvd to run")
    # The outside host: the public IPv6 network's gateway, routing the VPC's
    # prefixes back through the router's public IPv6 (as an upstream router
    # configured for a routed VPC would).
    out = f"{app.router.lab.prefix}out"
    in_ns(out, ["ip", "-6", "addr", "add", f"{OUTSIDE6}/64", "dev", "eth0", "nodad"])
    in_ns(out, ["ip", "-6", "route", "add", "fd10:10::/32", "via", PUBLIC6["router_ip6"]])
    in_ns(out, ["ip", "-6", "addr", "add", f"{OUTSIDE6_FAR}/128", "dev", "lo"])


def slaac(router: Router, vm: str, address: str) -> str:
    """``vm`` takes advertisements, asks for one (rdisc6) and waits for its SLAAC
    address and default route; returns rdisc6's report of the advertisement."""
    ns = vm_ns(router, vm)
    in_ns(ns, ["sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=2"])
    in_ns(ns, ["sysctl", "-qw", "net.ipv6.conf.eth0.autoconf=1"])
    reports: list[str] = []

    def advertised() -> bool:
        # radvd may still be starting (supervisord brings it up after the
        # apply) or rate-limiting its answers (MinDelayBetweenRAs): ask again
        # until an advertisement with a prefix arrives or the deadline passes.
        reports.append(in_ns(ns, ["rdisc6", "-1", "-w", "2000", "-r", "2", "eth0"], check=False))
        return "Prefix" in reports[-1]

    try:
        wait_for(advertised, 30, f"an advertisement answering {vm}'s solicitation")
    except AssertionError:
        pass  # the caller's assertion shows what rdisc6 printed
    report = reports[-1]

    def configured() -> bool:
        # Usable: past the VM's own duplicate detection (no longer tentative).
        addrs = in_ns(ns, ["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"])
        routes = in_ns(ns, ["ip", "-6", "route", "show", "default"])
        usable = any(f" {address}/" in line and "tentative" not in line
                     for line in addrs.splitlines())
        return usable and "proto ra" in routes and "via fe80::" in routes

    wait_for(configured, 20, f"{vm} to configure {address} and its default route from RAs")
    return report


@contextmanager
def tcp6_server(ns: str, port: int) -> Iterator[None]:
    """A TCP server over IPv6 in ``ns`` answering each client with the address it saw."""
    code = ("import socket,sys\n"
            "s=socket.socket(socket.AF_INET6)\n"
            "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            f"s.bind(('::',{port}));s.listen(8);print('ready',flush=True)\n"
            "while True:\n"
            "  c,a=s.accept();c.sendall(a[0].encode()+b'\\n');c.close()\n")
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield
    finally:
        proc.kill()
        proc.wait()


def tcp6_connect(ns: str, host: str, port: int) -> str:
    code = ("import socket,sys\n"
            f"c=socket.create_connection(('{host}',{port}),timeout=3)\n"
            "print(c.recv(200).decode().strip())\n")
    return in_ns(ns, [sys.executable, "-c", code], check=False).strip()


def ping6(ns: str, dst: str) -> bool:
    proc = subprocess.run(["ip", "netns", "exec", ns, "ping", "-6", "-c", "1", "-W", "2", dst],
                          capture_output=True, check=False)
    return proc.returncode == 0


def test_slaac_rdnss_and_dns_over_ipv6(appliance: Appliance, tmp_path: Path) -> None:
    router = appliance.router
    give_ipv6(appliance, tmp_path)
    # The router itself: addresses without DAD, the default route CloudStack sent.
    assert "fd10:10:1::1/64" in router.sh("ip", "-6", "-o", "addr", "show", "dev", "eth2")
    assert "fd64:10::10/64" in router.sh("ip", "-6", "-o", "addr", "show", "dev", "eth1")
    assert f"default via {OUTSIDE6} dev eth1" in router.sh("ip", "-6", "route", "show",
                                                          "default")
    report = slaac(router, "vm1", VM1_SLAAC)
    assert re.search(r"Prefix\s*:\s*fd10:10:1::/64", report), report
    rdnss = re.findall(r"Recursive DNS server\s*:\s*(\S+)", report)
    assert rdnss == ["fd10:10:1::1"], report
    # The name of a VM on the other tier, and vm1's own AAAA, through the RDNSS.
    dig = ["dig", f"@{rdnss[0]}", "+short", "+time=2", "+tries=2"]
    ns1 = vm_ns(router, "vm1")
    assert in_ns(ns1, [*dig, "vm2.vpc.lab", "A"]).strip() == "10.10.2.10"
    assert in_ns(ns1, [*dig, "vm1.vpc.lab", "AAAA"]).strip() == VM1_DHCP6
    # Nothing was restarted for the IPv4 side; radvd's file is what it checked.
    conf = (router.root / "etc/vragent/radvd.conf").read_text()
    assert "prefix fd10:10:2::/64" in conf and "RDNSS fd10:10:1::1" in conf


# dhclient-script's part this test needs: record the lease, configure it.
# dhclient gives its script a fresh environment: the output path is written in.
DHCLIENT_SCRIPT = """#!/bin/sh
case "$reason" in
  BOUND6|REBOOT6|RENEW6)
    env | grep -E '^(reason|new_ip6_|new_dhcp6_)' | sort > {out}
    ip -6 addr add "$new_ip6_address/$new_ip6_prefixlen" dev "$interface" nodad
    ;;
esac
exit 0
"""


def _octal_duid(duid: str) -> str:
    return "".join(f"\\{int(b, 16):03o}" for b in duid.split(":"))


def test_dhcpv6_client_gets_its_static_address(appliance: Appliance, tmp_path: Path) -> None:
    router = appliance.router
    give_ipv6(appliance, tmp_path)
    out = tmp_path / "dhcp6.out"
    script = tmp_path / "dhclient6.sh"
    script.write_text(DHCLIENT_SCRIPT.replace("{out}", str(out)))
    script.chmod(0o755)
    leases = tmp_path / "dhclient6.leases"
    # dhclient takes its DUID from the lease file: the one CloudStack sent.
    leases.write_text(f'default-duid "{_octal_duid(VM1_DUID)}";\n')
    ns = vm_ns(router, "vm1")

    # dhclient binds to the link-local address: not while it is still tentative.
    def link_local_ready() -> bool:
        shown = in_ns(ns, ["ip", "-6", "addr", "show", "dev", "eth0", "scope", "link"])
        return "inet6 fe80:" in shown and "tentative" not in shown
    wait_for(link_local_ready, 20, "vm1's link-local address to leave duplicate detection")
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, "dhclient", "-6", "-1",
         "-v", "-lf", str(leases), "-pf", str(tmp_path / "dhclient6.pid"), "-sf", str(script),
         "eth0"], capture_output=True, text=True, check=False, timeout=60)
    log = (router.root / "var/log/vragent/dnsmasq.log").read_text()
    assert out.exists(), f"no DHCPv6 lease: {proc.stderr}\n{log}"
    lease = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert lease["new_ip6_address"] == VM1_DHCP6
    assert lease["new_dhcp6_name_servers"] == "fd10:10:1::1"
    assert lease["new_dhcp6_domain_search"].rstrip(".") == "vpc.lab"
    assert VM1_DHCP6 in in_ns(ns, ["ip", "-6", "-o", "addr", "show", "dev", "eth0"])
    # One host with both leases: dnsmasq finds no address given twice.
    assert "duplicate" not in log, log
    # dhclient -1 -6 leaves a process renewing the lease: ours to end.
    pid = tmp_path / "dhclient6.pid"
    if pid.exists() and pid.read_text().strip().isdigit():
        subprocess.run(["kill", pid.read_text().strip()], check=False)


def test_ipv6_crosses_the_router_between_tiers_and_to_the_outside(
        appliance: Appliance, tmp_path: Path) -> None:
    router = appliance.router
    give_ipv6(appliance, tmp_path)
    slaac(router, "vm1", VM1_SLAAC)
    slaac(router, "vm2", VM2_SLAAC)
    ns1, ns2 = vm_ns(router, "vm1"), vm_ns(router, "vm2")
    out = f"{router.lab.prefix}out"
    # Between tiers, both ways.
    assert ping6(ns1, VM2_SLAAC)
    assert ping6(ns2, VM1_SLAAC)
    with tcp6_server(ns2, 8080):
        assert tcp6_connect(ns1, VM2_SLAAC, 8080) == VM1_SLAAC
    # To the outside, beyond the public gateway (the IPv6 default route):
    # routed, not NATed (the outside sees the VM's own address).
    assert ping6(ns1, OUTSIDE6_FAR)
    with tcp6_server(out, 8081):
        assert tcp6_connect(ns1, OUTSIDE6_FAR, 8081) == VM1_SLAAC
    # Nothing new from outside reaches a tier the ACL closes to it.
    with tcp6_server(ns2, 8082):
        assert tcp6_connect(out, VM2_SLAAC, 8082) == ""


def test_radvd_follows_tiers_by_sighup_and_ipv6_goes_with_its_tier(
        appliance: Appliance, tmp_path: Path) -> None:
    router = appliance.router
    gn1 = {**_sample("guest_network_tier1.json"), **TIERS6["eth2"]}
    router.apply(_bag(tmp_path, gn1, "gn1.json"))
    wait_for(lambda: appliance.running("radvd"), 20, "radvd to run")
    pid = appliance.pid("radvd")
    conf = router.root / "etc/vragent/radvd.conf"
    # A second tier gets IPv6: radvd re-reads its file, it is not restarted.
    router.apply(_bag(tmp_path, {**_sample("guest_network_tier2.json"), **TIERS6["eth3"]},
                      "gn2.json"))
    assert "interface eth3" in conf.read_text()
    slaac(router, "vm2", VM2_SLAAC)
    assert appliance.pid("radvd") == pid
    # Tier 1 sent again without IPv6 (CsVpcGuestNetwork.remove_address_route):
    # its address goes, radvd no longer advertises there, the public IPv6 stays
    # (tier 2 still carries it).
    router.apply(_bag(tmp_path, _sample("guest_network_tier1.json"), "gn1-v4.json"))
    assert "fd10:10:1::1/64" not in router.sh("ip", "-6", "-o", "addr", "show", "dev", "eth2")
    assert "interface eth2" not in conf.read_text()
    assert "fd64:10::10/64" in router.sh("ip", "-6", "-o", "addr", "show", "dev", "eth1")
    assert appliance.pid("radvd") == pid
    # The last IPv6 tier gone: radvd stops, the public IPv6 and its route go too.
    router.apply(_bag(tmp_path, _sample("guest_network_tier2.json"), "gn2-v4.json"))
    wait_for(lambda: not appliance.running("radvd"), 20, "radvd to stop")
    assert "fd64:10::10" not in router.sh("ip", "-6", "-o", "addr", "show", "dev", "eth1")
    assert "default" not in router.sh("ip", "-6", "route", "show", "default")
