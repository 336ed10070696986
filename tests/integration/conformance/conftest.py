"""CloudStack conformance: labs, bag builders and traffic helpers.

Bags are built as the management server builds them (Gson, snake_case keys,
nulls omitted, Java enum spellings such as ``"Public"`` / ``"Egress"``) and are
applied through the ``vragent apply`` CLI from files, like the real router's
entry point. Behaviour is checked with real packets or with ``ip -j`` listings.

Two layouts, one lab per test module (module-scoped), a fresh router state per
test (new ``--root``, data NICs flushed, the nft table and conntrack emptied,
then ``vragent boot``):

* VPC router (``type=vpcrouter``), vragent_lab.netns.sample_vpc: control eth0
  169.254.0.10/16; public eth1 to host ``out`` 100.64.10.1/24 (+ 100.64.99.1/32
  on lo, a far host); tier eth2 10.10.1.0/24 (vm1 .10); tier eth3 10.10.2.0/24
  (vm2 .10). Public IPs 100.64.10.10 (source NAT), .11, .12.
* Isolated router (``type=router``, upstream layout, merge.py processCL): eth0
  guest 10.1.1.1/24 from the boot parameters (vm 10.1.1.10), eth1 control
  169.254.0.20/16, eth2 public from an ips bag: 100.64.20.10 source NAT,
  gateway 100.64.20.1 (host ``out``, + 100.64.99.1/32 on lo).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from vragent_lab.netns import Lab, in_ns, sample_vpc, wait_for

from ..harness import Router

TOOLS = str(Path(__file__).with_name("tools.py"))
PEER = str(Path(__file__).parent.with_name("peer.py"))
Bag = dict[str, Any]

# -- the VPC lab (sample_vpc) -----------------------------------------------------

VPC_MACS = {
    "eth1": "02:00:0a:00:00:01",
    "eth2": "02:00:0a:00:00:02",
    "eth3": "02:00:0a:00:00:03",
}
VPC_DATA_NICS = ("eth1", "eth2", "eth3", "eth4")
OUT = "100.64.10.1"
FAR = "100.64.99.1"  # on the outside host's lo: a host beyond the public gateway
VM1, VM2 = "10.10.1.10", "10.10.2.10"
GW1, GW2 = "10.10.1.1", "10.10.2.1"
SNAT_IP, PUB2, PUB3 = "100.64.10.10", "100.64.10.11", "100.64.10.12"

VPC_CMDLINE: dict[str, str] = {
    "type": "vpcrouter", "name": "r-7-VM", "template": "domP",
    "eth0ip": "169.254.0.10", "eth0mask": "255.255.0.0",
    "vpccidr": "10.10.0.0/16", "domain": "vpc.lab", "dns1": OUT,
    "redundant_router": "0", "advert_int": "1", "router_id": "7",
    "disable_rp_filter": "true",
}

# -- the isolated lab -----------------------------------------------------------

ISO_MACS = {
    "eth0": "02:00:0b:00:00:00",
    "eth1": "02:00:0b:00:00:01",
    "eth2": "02:00:0b:00:00:02",
}
ISO_DATA_NICS = ("eth0", "eth2")
ISO_VM, ISO_GW, ISO_NET = "10.1.1.10", "10.1.1.1", "10.1.1.0/24"
ISO_PUB, ISO_PUB_GW = "100.64.20.10", "100.64.20.1"
ISO_PUB2 = "100.64.20.12"

ISO_CMDLINE: dict[str, str] = {
    "type": "router", "name": "r-9-VM", "template": "domP",
    "eth0ip": ISO_GW, "eth0mask": "255.255.255.0",
    "eth1ip": "169.254.0.20", "eth1mask": "255.255.0.0",
    "guestgw": ISO_GW, "guestcidrsize": "24",
    "dns1": ISO_PUB_GW, "domain": "iso.lab",
    "redundant_router": "0", "disable_rp_filter": "true",
}

_serial = itertools.count()


def _prefix(kind: str) -> str:
    # Short: the lab names temporary veths "<prefix><ifname>" within 15 characters.
    return f"{kind}{os.getpid() % 100000:05d}{next(_serial) % 100:02d}-"


def build_isolated(lab: Lab) -> None:
    """Router ``r``: eth0 guest (vm), eth1 control (ctl), eth2 public (out)."""
    lab.ns("r")
    lab.link("r", "eth0", "vm", "eth0", ISO_MACS["eth0"])
    lab.link("r", "eth1", "ctl", "eth0", ISO_MACS["eth1"])
    lab.link("r", "eth2", "out", "eth0", ISO_MACS["eth2"])
    lab.host("ctl", "eth0", "169.254.0.1/16", None)
    lab.host("vm", "eth0", f"{ISO_VM}/24", ISO_GW)
    lab.host("out", "eth0", f"{ISO_PUB_GW}/24", None)
    in_ns(lab.ns("out"), ["ip", "addr", "add", f"{FAR}/32", "dev", "lo"])


@pytest.fixture(scope="module")
def vpc_lab() -> Iterator[Lab]:
    lab = sample_vpc(_prefix("cv"))
    try:
        yield lab
    finally:
        lab.destroy()


@pytest.fixture(scope="module")
def iso_lab() -> Iterator[Lab]:
    lab = Lab(_prefix("ci"))
    try:
        build_isolated(lab)
        yield lab
    finally:
        lab.destroy()


def _fresh_router(lab: Lab, tmp_path: Path, cmdline: dict[str, str],
                  data_nics: tuple[str, ...]) -> Router:
    """A router with no configuration, as after a reboot, on an existing lab."""
    ns = f"{lab.prefix}r"
    for nic in data_nics:
        in_ns(ns, ["ip", "-4", "addr", "flush", "dev", nic])
        in_ns(ns, ["ip", "link", "set", nic, "mtu", "1500"])
    in_ns(ns, ["nft", "delete", "table", "inet", "vragent"], check=False)
    in_ns(ns, ["conntrack", "-F"], check=False)
    root = tmp_path / "root"
    (root / "var/cache/cloud").mkdir(parents=True)
    (root / "var/cache/cloud/cmd_line.json").write_text(
        json.dumps({"type": "cmdline", "cmd_line": cmdline}))
    router = Router(lab, ns, root)
    router.run("boot")
    return router


@pytest.fixture
def vpc(vpc_lab: Lab, tmp_path: Path) -> Router:
    """The VPC router, booted (control NIC only), no bags yet."""
    return _fresh_router(vpc_lab, tmp_path, VPC_CMDLINE, VPC_DATA_NICS)


@pytest.fixture
def iso(iso_lab: Lab, tmp_path: Path) -> Router:
    """The isolated router, booted from its boot parameters (guest + control), no bags."""
    return _fresh_router(iso_lab, tmp_path, ISO_CMDLINE, ISO_DATA_NICS)


# -- applying bags ----------------------------------------------------------------


def apply_bags(router: Router, *bags: Bag, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``vragent apply`` with each bag written to its own file, in order."""
    bagdir = router.root.parent / "bags"
    bagdir.mkdir(exist_ok=True)
    paths = []
    for bag in bags:
        path = bagdir / f"{next(_serial):04d}-{bag['type']}.json"
        path.write_text(json.dumps(bag))
        paths.append(path)
    return router.apply(*paths, check=check)


# -- bag builders (shapes of the management server's Gson output) -----------------


def _clean(d: Bag) -> Bag:
    return {k: v for k, v in d.items() if v is not None}  # Gson omits nulls


def public_ip(ip: str, *, mac: str, dev_id: int, gateway: str, source_nat: bool = False,
              add: bool = True, one_to_one_nat: bool = False, first: bool = False,
              new_nic: bool = False, netmask: str = "255.255.255.0", **extra: Any) -> Bag:
    """One IpAddressTO of an IpAssocCommand (IpAssociationConfigItem -> model/IpAddress)."""
    return _clean({
        "public_ip": ip, "source_nat": source_nat, "add": add,
        "one_to_one_nat": one_to_one_nat, "first_i_p": first, "gateway": gateway,
        "netmask": netmask, "vif_mac_address": mac, "nic_dev_id": dev_id,
        "new_nic": new_nic, "nw_type": "Public", **extra,
    })


def ips_bag(*entries: Bag) -> Bag:
    return {"ip_address": list(entries), "type": "ips", "delete_from_processed_cache": False}


def vpc_public(ip: str, **kw: Any) -> Bag:
    return public_ip(ip, mac=VPC_MACS["eth1"], dev_id=1, gateway=OUT, **kw)


def vpc_ips(**extra: Any) -> Bag:
    """The VPC's three public IPs, source NAT first (as the Java comparator sorts them)."""
    return ips_bag(
        vpc_public(SNAT_IP, source_nat=True, first=True, new_nic=True, **extra),
        vpc_public(PUB2, **extra),
        vpc_public(PUB3, one_to_one_nat=True, **extra),
    )


def iso_public(ip: str, **kw: Any) -> Bag:
    return public_ip(ip, mac=ISO_MACS["eth2"], dev_id=2, gateway=ISO_PUB_GW, **kw)


def iso_ips(*more: str) -> Bag:
    entries = [iso_public(ISO_PUB, source_nat=True, first=True, new_nic=True)]
    entries += [iso_public(ip) for ip in more]
    return ips_bag(*entries)


def guest_network(device: str, mac: str, gateway: str, *, add: bool = True,
                  netmask: str = "255.255.255.0", cidr: str = "24", **extra: Any) -> Bag:
    """SetupGuestNetworkCommand -> model/GuestNetwork; non-redundant: guest ip == gateway."""
    return _clean({
        "add": add, "mac_address": mac, "device": device, "router_guest_ip": gateway,
        "router_guest_gateway": gateway, "router_guest_netmask": netmask, "cidr": cidr,
        "dns": gateway, "domain_name": "vpc.lab", "type": "guestnetwork",
        "delete_from_processed_cache": False, **extra,
    })


def tier1(**kw: Any) -> Bag:
    return guest_network("eth2", VPC_MACS["eth2"], GW1, **kw)


def tier2(**kw: Any) -> Bag:
    return guest_network("eth3", VPC_MACS["eth3"], GW2, **kw)


def acl_rule(type: str, cidr: str = "0.0.0.0/0", *, allowed: bool = True,
             ports: tuple[int, int] | None = None, icmp: tuple[int, int] | None = None,
             protocol: int | None = None) -> Bag:
    """One AclRule (model/TcpAclRule, UdpAclRule, IcmpAclRule, AllAclRule, ProtocolAclRule)."""
    rule: Bag = {"type": type, "cidr": cidr, "allowed": allowed}
    if type in ("tcp", "udp"):
        first, last = ports if ports is not None else (0, 0)
        rule.update(first_port=first, last_port=last)
    if type == "icmp":
        itype, icode = icmp if icmp is not None else (-1, -1)
        rule.update(icmp_type=itype, icmp_code=icode)
    if type == "protocol":
        rule["protocol"] = protocol
    return rule


ALLOW_ALL = [acl_rule("all")]


def network_acl(device: str, mac: str, nic_ip: str, ingress: list[Bag],
                egress: list[Bag]) -> Bag:
    """SetNetworkACLCommand -> SetNetworkAclConfigItem -> model/NetworkACL."""
    return {
        "device": device, "mac_address": mac, "private_gateway_acl": False,
        "nic_ip": nic_ip, "nic_netmask": "24",
        "ingress_rules": ingress, "egress_rules": egress, "type": "networkacl",
    }


def acl1(ingress: list[Bag], egress: list[Bag]) -> Bag:
    return network_acl("eth2", VPC_MACS["eth2"], GW1, ingress, egress)


def acl2(ingress: list[Bag], egress: list[Bag]) -> Bag:
    return network_acl("eth3", VPC_MACS["eth3"], GW2, ingress, egress)


def fw_rule(id: int, protocol: str, traffic_type: str, *, src_ip: str = "",
            ports: tuple[int, int] | None = None, source_cidr_list: list[str] | None = None,
            dest_cidr_list: list[str] | None = None, icmp: tuple[int, int] | None = None,
            revoked: bool = False, already_added: bool = False,
            default_egress_policy: bool = False) -> Bag:
    """One FirewallRuleTO (SetFirewallRulesConfigItem -> model/FirewallRule)."""
    return _clean({
        "id": id, "src_ip": src_ip, "protocol": protocol,
        "src_port_range": list(ports) if ports is not None else None,
        "revoked": revoked, "already_added": already_added,
        "source_cidr_list": source_cidr_list if source_cidr_list is not None else [],
        "dest_cidr_list": dest_cidr_list if dest_cidr_list is not None else [],
        "purpose": "Firewall",
        "icmp_type": icmp[0] if icmp else None, "icmp_code": icmp[1] if icmp else None,
        "traffic_type": traffic_type, "default_egress_policy": default_egress_policy,
    })


def egress_system_rule(policy: bool) -> Bag:
    """The unsaved default rule (createDefaultEgressFirewallRule): id 0, all, no CIDRs."""
    return fw_rule(0, "all", "Egress", default_egress_policy=policy)


def firewall_rules(*rules: Bag) -> Bag:
    return {"rules": list(rules), "type": "firewallrules", "delete_from_processed_cache": False}


def forward_rule(public: str, public_ports: str, vm: str, vm_ports: str, *,
                 protocol: str = "tcp", revoke: bool = False,
                 source_cidr_list: str | None = None) -> Bag:
    """SetPortForwardingRulesConfigItem -> model/ForwardingRule; cidrs as one comma string."""
    return _clean({
        "revoke": revoke, "protocol": protocol, "source_ip_address": public,
        "source_port_range": public_ports, "destination_ip_address": vm,
        "destination_port_range": vm_ports, "source_cidr_list": source_cidr_list,
    })


def forward_rules(*rules: Bag) -> Bag:
    return {"rules": list(rules), "type": "forwardrules", "delete_from_processed_cache": False}


def static_nat_rule(public: str, vm: str, *, revoke: bool = False) -> Bag:
    return {"revoke": revoke, "source_ip_address": public, "source_port_range": "0:0",
            "destination_ip_address": vm}


def static_nat_rules(*rules: Bag) -> Bag:
    return {"rules": list(rules), "type": "staticnatrules", "delete_from_processed_cache": False}


# -- traffic and state probes -------------------------------------------------------


def ns(router: Router, short: str) -> str:
    return f"{router.lab.prefix}{short}"


@contextmanager
def serve(router: Router, host: str, port: int, proto: str = "tcp",
          tag: str | None = None) -> Iterator[None]:
    """peer.py server in namespace ``host``: answers "<tag> <client address>"."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns(router, host), sys.executable, PEER, "serve", proto,
         str(port), tag or host],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", line
        yield
    finally:
        proc.kill()
        proc.wait()


def reach(router: Router, client: str, host: str, port: int, proto: str = "tcp",
          timeout: float = 2.0, src: str | None = None) -> str | None:
    """What the server answered ("<tag> <address it saw>"), or None."""
    argv = ["ip", "netns", "exec", ns(router, client), sys.executable, PEER, "connect",
            proto, host, str(port), str(timeout)]
    if src:
        argv.append(src)
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()
    return out or None


def seen_as(router: Router, client: str, host: str, port: int, **kw: Any) -> str | None:
    """The client address the server saw, or None when nothing came back."""
    answer = reach(router, client, host, port, **kw)
    return answer.split()[-1] if answer else None


def pings(router: Router, client: str, host: str, timeout: float = 1.0) -> bool:
    proc = subprocess.run(
        ["ip", "netns", "exec", ns(router, client), "ping", "-c", "1", "-W", str(timeout), host],
        capture_output=True, text=True, check=False,
    )
    return proc.returncode == 0


def eventually_pings(router: Router, client: str, host: str, within: float = 3.0) -> bool:
    try:
        wait_for(lambda: pings(router, client, host), timeout=within, what=f"ping {host}")
    except AssertionError:
        return False
    return True


def addrs(router: Router, ifname: str) -> list[str]:
    """IPv4 addresses on a router interface, as "ip/prefix"."""
    out = json.loads(router.sh("ip", "-j", "-4", "addr", "show", "dev", ifname))
    return [f"{a['local']}/{a['prefixlen']}" for link in out for a in link.get("addr_info", [])]


def mtu(router: Router, ifname: str) -> int:
    out = json.loads(router.sh("ip", "-j", "link", "show", "dev", ifname))
    return int(out[0]["mtu"])


def nft_table(router: Router) -> str:
    return router.sh("nft", "list", "table", "inet", "vragent", check=False)
