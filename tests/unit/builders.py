"""Shared by the unit tests: the sample bags merged into a configuration, fake links."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from vragent.bags import merge, parse_bag
from vragent.config import RouterConfig
from vragent.settings import Settings
from vragent.system.iproute import Link
from vragent.topology import Topology, resolve
from vragent_lab import loadbalancer as lb
from vragent_lab.netns import ROUTER_MACS

from tests.conftest import FIXTURES, SAMPLE

# The order the lab applies them in: boot parameters, addresses, tiers, then the rest.
SAMPLE_ORDER = (
    "cmd_line.json",
    "ip_associations.json",
    "guest_network_tier1.json",
    "guest_network_tier2.json",
    "private_gateway.json",
    "network_acl_tier1.json",
    "network_acl_tier2.json",
    "forwarding_rules.json",
    "staticnat_rules.json",
    "static_routes.json",
    "vm_dhcp_entry_vm1.json",
    "vm_dhcp_entry_vm2.json",
    "vm_metadata_vm1.json",
    "vm_metadata_vm2.json",
    "vm_password_vm1.json",
)

Docs = dict[str, dict[str, Any]]


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def sample_bag(name: str) -> dict[str, Any]:
    return load(SAMPLE / name)


def apply_bags(bags: list[dict[str, Any]], docs: Docs | None = None) -> Docs:
    """Validate and merge raw bags in order, as the agent does."""
    out: Docs = docs or {}
    for raw in bags:
        bag = parse_bag(copy.deepcopy(raw))
        out = merge(out, bag.type, bag)  # type: ignore[attr-defined]
    return out


def tls_pair() -> tuple[str, str]:
    """A self-signed certificate for lb.vpc.lab and its key (test material only)."""
    return (FIXTURES / "tls/lb.crt").read_text(), (FIXTURES / "tls/lb.key").read_text()


def lb_bag(public: str = "100.64.10.11", stats_ip: str = "10.10.1.1",
           backends: tuple[str, ...] = ("10.10.1.10", "10.10.2.10")) -> dict[str, Any]:
    """Load balancing as a management server sends it for the sample VPC:
    HTTP on a public IP over a VM of each tier (cookie stickiness), SSL
    offload on 443, SSH by source, the statistics on the first tier."""
    return lb.bag(lb.Command(rules=[
        lb.Rule(public, 80, [(ip, 80) for ip in backends],
                sticky=("LbCookie", {"cookie-name": "SRVID", "indirect": "", "nocache": ""})),
        lb.Rule(public, 443, [(ip, 80) for ip in backends], algorithm="leastconn",
                tls=tls_pair()),
        lb.Rule(public, 2200, [(backends[0], 22)], algorithm="source",
                sticky=("SourceBased", {})),
    ], stats=lb.Stats(stats_ip)), router_ip=stats_ip)


def vpn_bags(public: str = "100.64.10.10", vpc: str = "10.10.0.0/16") -> list[dict[str, Any]]:
    """A VPC's VPN as a management server sends it (Site2SiteVpnConfigItem,
    RemoteAccessVpnConfigItem, VpnUsersConfigItem): an IKEv2 peer with two
    networks, an IKEv1 peer with two (one CHILD_SA each), remote access and
    two users."""
    peer = {"type": "site2sitevpn", "local_public_ip": public, "local_guest_cidr": vpc,
            "local_public_gateway": "100.64.10.1", "esp_policy": "aes128-sha1;modp1536",
            "ike_policy": "aes128-sha256;modp2048", "ike_lifetime": 86400,
            "esp_lifetime": 3600, "create": True, "dpd": True, "passive": False,
            "encap": False, "split_connections": False}
    return [
        {**peer, "peer_gateway_ip": "100.64.30.1",
         "peer_guest_cidr_list": "10.30.0.0/24,10.31.0.0/24",
         "ipsec_psk": "psk-one", "ike_version": "ikev2"},
        {**peer, "peer_gateway_ip": "100.64.40.1",
         "peer_guest_cidr_list": "10.40.0.0/24,10.41.0.0/24",
         "ipsec_psk": "psk-two", "ike_version": "ikev1", "esp_policy": "aes256-sha1",
         "ike_policy": "aes256-sha1;modp1536,3des-md5;modp1024", "passive": True, "encap": True},
        {"type": "remoteaccessvpn", "create": True, "ip_range": "10.1.2.2-10.1.2.8",
         "preshared_key": "l2tp-psk", "vpn_server_ip": public, "local_ip": "10.1.2.1",
         "local_cidr": vpc, "public_interface": "eth1"},
        {"type": "vpnuserlist", "vpn_users": [
            {"user": "alice", "password": "Alice-Pw-1", "add": True},
            {"user": "bob", "password": "Bob-Pw-2", "add": True}]},
    ]


def sample_docs() -> Docs:
    return apply_bags([*(sample_bag(n) for n in SAMPLE_ORDER), lb_bag(), *vpn_bags()])


def link(name: str, mac: str = "", up: bool = True, mtu: int = 1500) -> Link:
    return Link(name=name, mac=mac, up=up, mtu=mtu)


def sample_links() -> dict[str, Link]:
    """The lab router's links: eth0 is the control link, not named by MAC in any bag."""
    links = {"eth0": link("eth0", "02:00:a9:fe:00:0a")}
    links.update({name: link(name, mac) for name, mac in ROUTER_MACS.items()})
    return links


# Where keepalived finds the health check: fixed, so renders do not depend on
# the virtual environment the tests run from.


def settings(**overrides: Any) -> Settings:
    # Rendering never touches the filesystem: a root that does not exist proves it.
    values: dict[str, Any] = {"root": Path("/nonexistent/vragent-unit"), **overrides}
    return Settings(**values)


def sample_config() -> RouterConfig:
    return RouterConfig.from_docs(sample_docs())


def sample_topology() -> tuple[RouterConfig, Topology]:
    cfg = sample_config()
    return cfg, resolve(cfg, sample_links())


# -- the sample VPC router as one of a redundant pair -----------------------------

# Boot parameters that make a router one of a pair (sync link eth5).
PAIR_BOOT = {
    "redundant_router": "1", "sync_dev": "eth5", "eth5ip": "10.255.0.1",
    "eth5mask": "255.255.255.0", "sync_peer": "10.255.0.2",
}
SYNC_MAC = "02:00:0a:00:00:05"


def pair_cmdline(drop: tuple[str, ...] = (), **boot: str) -> dict[str, Any]:
    """The sample boot parameters with PAIR_BOOT, then ``boot``, on top, less ``drop``."""
    bag = sample_bag("cmd_line.json")
    bag["cmd_line"].update({**PAIR_BOOT, **boot})
    for key in drop:
        del bag["cmd_line"][key]
    return bag


def pair_docs(drop: tuple[str, ...] = (), **boot: str) -> Docs:
    """The sample VPC, booted as one of a pair; every value validated as the agent does."""
    return apply_bags([pair_cmdline(drop, **boot),
                       *(sample_bag(n) for n in SAMPLE_ORDER[1:]), lb_bag(), *vpn_bags()])


def pair_links() -> dict[str, Link]:
    return {**sample_links(), "eth5": link("eth5", SYNC_MAC)}


def pair_topology(drop: tuple[str, ...] = (), **boot: str) -> tuple[RouterConfig, Topology]:
    cfg = RouterConfig.from_docs(pair_docs(drop, **boot))
    return cfg, resolve(cfg, pair_links())


# A redundant VPC exactly as a management server drives it (CloudStack mode):
# createRedundantRouterArgs gives router_id (the VPC id), router_password and
# advert_int, no sync link; each router's tier address is its own and the
# tier gateway the shared one (SetGuestNetworkConfigItem).
CLOUDSTACK_BOOT = {"redundant_router": "1", "router_id": "4711", "advert_int": "1",
                   "router_password": "93871234567", "redundant_state": "BACKUP"}


def cloudstack_pair_docs() -> Docs:
    cmd = pair_cmdline(drop=("sync_dev", "sync_peer", "eth5ip", "eth5mask"), **CLOUDSTACK_BOOT)
    bags: list[dict[str, Any]] = [cmd]
    for name in SAMPLE_ORDER[1:]:
        bag = sample_bag(name)
        if bag["type"] == "guestnetwork":
            gateway = bag["router_guest_ip"]
            bag["router_guest_gateway"] = gateway
            bag["router_guest_ip"] = gateway.rsplit(".", 1)[0] + ".2"
        bags.append(bag)
    return apply_bags([*bags, lb_bag(), *vpn_bags()])


def cloudstack_pair_topology() -> tuple[RouterConfig, Topology]:
    cfg = RouterConfig.from_docs(cloudstack_pair_docs())
    return cfg, resolve(cfg, sample_links())


# A tier and a public address that arrive after boot (what must not disturb the pair).
THIRD_TIER_MAC = "02:00:0a:00:00:06"


def third_tier_bag(add: bool = True) -> dict[str, Any]:
    return {**sample_bag("guest_network_tier2.json"), "add": add, "device": "eth6",
            "mac_address": THIRD_TIER_MAC, "router_guest_ip": "10.10.3.1",
            "router_guest_gateway": "10.10.3.1", "dns": "10.10.3.1"}


def extra_public_ip_bag(add: bool = True) -> dict[str, Any]:
    return {"type": "ips", "ip_address": [
        {"public_ip": "100.64.10.13", "source_nat": False, "add": add,
         "one_to_one_nat": False, "first_i_p": False, "gateway": "100.64.10.1",
         "netmask": "255.255.255.0", "vif_mac_address": "02:00:0a:00:00:01", "nic_dev_id": 1,
         "new_nic": False, "nw_type": "Public"}]}


def with_bags(docs: Docs, *bags: dict[str, Any]) -> tuple[RouterConfig, Topology]:
    """``docs`` with ``bags`` merged, resolved over the pair's links and the third tier's."""
    cfg = RouterConfig.from_docs(apply_bags(list(bags), copy.deepcopy(docs)))
    return cfg, resolve(cfg, {**pair_links(), "eth6": link("eth6", THIRD_TIER_MAC)})


# -- an isolated (non-VPC) router with a public-IP firewall and an egress policy ---
# Upstream's layout (createGuestBootLoadArgs, merge.py processCL): eth0 the guest
# NIC from the boot parameters, eth1 control, eth2 public from the ips bag.

ISO_PUBLIC_MAC = "02:00:14:00:00:01"
ISO_GUEST_MAC = "02:00:14:00:00:02"


def isolated_bags(default_egress_policy: bool = True) -> list[dict[str, Any]]:
    policy = default_egress_policy
    return [
        {"type": "cmdline", "cmd_line": {
            "type": "router", "name": "r-2-VM", "template": "domP",
            "eth0ip": "10.20.1.1", "eth0mask": "255.255.255.0",
            "eth1ip": "169.254.1.5", "eth1mask": "255.255.0.0",
            "eth2ip": "100.64.20.10", "eth2mask": "255.255.255.0", "gateway": "100.64.20.1",
            "guestgw": "10.20.1.1", "guestcidrsize": "24", "cidrsize": "24",
            "dhcprange": "10.20.1.1", "domain": "iso.lab", "dns1": "100.64.20.1",
            "redundant_router": "0"}},
        {"type": "ips", "ip_address": [
            {"public_ip": "100.64.20.10", "source_nat": True, "add": True,
             "one_to_one_nat": False, "first_i_p": True, "gateway": "100.64.20.1",
             "netmask": "255.255.255.0", "vif_mac_address": ISO_PUBLIC_MAC, "nic_dev_id": 2,
             "new_nic": False, "nw_type": "Public"},
            {"public_ip": "100.64.20.11", "source_nat": False, "add": True,
             "one_to_one_nat": False, "first_i_p": False, "gateway": "100.64.20.1",
             "netmask": "255.255.255.0", "vif_mac_address": ISO_PUBLIC_MAC, "nic_dev_id": 2,
             "new_nic": False, "nw_type": "Public"},
        ]},
        {"type": "forwardrules", "rules": [
            {"revoke": False, "protocol": "tcp", "source_ip_address": "100.64.20.11",
             "source_port_range": "2222:2222", "destination_ip_address": "10.20.1.10",
             "destination_port_range": "22:22"}]},
        lb.bag(lb.Command(rules=[lb.Rule("100.64.20.10", 80, [("10.20.1.10", 8080),
                                                              ("10.20.1.11", 8080)])],
                          stats=lb.Stats("10.20.1.1")), router_ip="10.20.1.1"),
        # Remote access on an isolated network (RemoteAccessVpnCfgCommand: eth2).
        {"type": "remoteaccessvpn", "create": True, "ip_range": "10.1.2.2-10.1.2.8",
         "preshared_key": "l2tp-psk", "vpn_server_ip": "100.64.20.10", "local_ip": "10.1.2.1",
         "local_cidr": "10.20.1.0/24", "public_interface": "eth2"},
        {"type": "vpnuserlist", "vpn_users": [
            {"user": "carol", "password": "Carol-Pw-3", "add": True}]},
        {"type": "firewallrules", "rules": [
            {"id": 1, "src_ip": "100.64.20.10", "protocol": "tcp", "src_port_range": [22, 22],
             "revoked": False, "source_cidr_list": ["0.0.0.0/0"], "purpose": "Firewall",
             "traffic_type": "Ingress", "default_egress_policy": False},
            {"id": 2, "src_ip": "100.64.20.11", "protocol": "tcp",
             "src_port_range": [2222, 2222], "revoked": False,
             "source_cidr_list": ["198.18.113.0/24", "198.51.100.7/32"],
             "purpose": "Firewall", "traffic_type": "Ingress", "default_egress_policy": False},
            {"id": 3, "src_ip": "100.64.20.11", "protocol": "icmp",
             "icmp_type": 8, "icmp_code": -1, "revoked": False,
             "source_cidr_list": ["0.0.0.0/0"], "purpose": "Firewall",
             "traffic_type": "Ingress", "default_egress_policy": False},
            # Egress as CommandSetupHelper.createFirewallRulesCommands sends it:
            # src_ip "", the network's policy on every item, and the system rule
            # (protocol all, no CIDRs) that carries the default.
            {"id": 0, "src_ip": "", "protocol": "all", "revoked": False,
             "source_cidr_list": [], "dest_cidr_list": [], "purpose": "Firewall",
             "traffic_type": "Egress", "default_egress_policy": policy},
            {"id": 10, "src_ip": "", "protocol": "tcp", "src_port_range": [25, 25],
             "revoked": False, "source_cidr_list": ["10.20.1.0/24"],
             "dest_cidr_list": ["0.0.0.0/0"], "purpose": "Firewall", "traffic_type": "Egress",
             "default_egress_policy": policy},
            {"id": 11, "src_ip": "", "protocol": "udp", "revoked": False,
             "source_cidr_list": ["10.20.1.0/24"], "dest_cidr_list": ["198.18.2.0/24"],
             "purpose": "Firewall", "traffic_type": "Egress", "default_egress_policy": policy},
        ]},
    ]


def isolated_links() -> dict[str, Link]:
    return {
        "eth0": link("eth0", ISO_GUEST_MAC),
        "eth1": link("eth1", "02:00:a9:fe:01:05"),
        "eth2": link("eth2", ISO_PUBLIC_MAC),
    }


def isolated_topology(default_egress_policy: bool = True) -> tuple[RouterConfig, Topology]:
    cfg = RouterConfig.from_docs(apply_bags(isolated_bags(default_egress_policy)))
    return cfg, resolve(cfg, isolated_links())


# -- editing bags for validation tests -------------------------------------------

DELETE = object()  # as a value in ``mutated``: remove the key


def mutated(raw: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``raw`` with the item at ``path`` replaced (or deleted)."""
    out = copy.deepcopy(raw)
    node: Any = out
    for step in path[:-1]:
        node = node[step]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out
