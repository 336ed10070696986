"""What the lab does with a running topology: the sample VPC, checks, failovers, a report."""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import loadbalancer as lb
from . import vpn
from .lab import (
    LINK_LOCAL_GATEWAY,
    OUTSIDE,
    OUTSIDE_FAR,
    PUBLIC_FORWARD,
    PUBLIC_SNAT,
    PUBLIC_STATIC,
    TIERS,
    TIERS6,
    VPC6,
    Lab,
    LabError,
    wait_for,
)
from .recorded import MODE_NAMES
from .traffic import Probe, TcpEcho, TcpHolder, ToolError, UdpEcho
from .web import HttpBackend, HttpLoad, summary

ECHO_TCP, ECHO_UDP, SSH = 7000, 7001, 22
CONNECTIONS = 50


def step(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Print a step with its duration; on failure, say which step failed."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def inner(*args: Any, **kw: Any) -> Any:
            print(f"==> {name} ...", flush=True)
            started = time.monotonic()
            try:
                result = fn(*args, **kw)
            except Exception as exc:
                print(f"FAILED: {name} after {time.monotonic() - started:.1f} s: {exc}",
                      flush=True)
                raise
            print(f"    done in {time.monotonic() - started:.1f} s", flush=True)
            return result
        return inner
    return wrap


# -- the sample VPC, as a management server sends it ---------------------------------

def sample_bags(lab: Lab, router: str) -> list[dict[str, Any]]:
    pub_mac = lab.mac(router, "eth1")
    ips = {"type": "ips", "ip_address": [
        {"public_ip": ip, "source_nat": ip == PUBLIC_SNAT, "add": True,
         "one_to_one_nat": ip == PUBLIC_STATIC, "first_i_p": ip == PUBLIC_SNAT,
         "gateway": OUTSIDE, "netmask": "255.255.255.0", "vif_mac_address": pub_mac,
         "nic_dev_id": 1, "new_nic": False, "nw_type": "Public"}
        for ip in (PUBLIC_SNAT, PUBLIC_FORWARD, PUBLIC_STATIC)]}
    bags: list[dict[str, Any]] = [ips]
    own = router[-1]
    for dev, (net, _vm) in TIERS.items():
        mac = lab.mac(router, dev)
        # SetGuestNetworkConfigItem: the router's own tier address, and the
        # gateway; a standalone router's own address is the gateway.
        mine = f"{net}.{1 + int(own)}" if len(lab.routers) > 1 else f"{net}.1"
        bags.append({"type": "guestnetwork", "add": True, "mac_address": mac, "device": dev,
                     "router_guest_ip": mine,
                     "router_guest_gateway": f"{net}.1",
                     "router_guest_netmask": "255.255.255.0", "cidr": "24",
                     "dns": f"{net}.1", "domain_name": "vpc.lab", **tier6(lab, router, dev)})
        bags.append({"type": "networkacl", "device": dev, "mac_address": mac,
                     "private_gateway_acl": False, "nic_ip": f"{net}.1", "nic_netmask": "24",
                     "ingress_rules": [
                         {"type": "tcp", "cidr": "0.0.0.0/0,::/0", "first_port": SSH,
                          "last_port": SSH, "allowed": True},
                         {"type": "tcp", "cidr": "0.0.0.0/0,::/0", "first_port": 80,
                          "last_port": 80, "allowed": True},
                         {"type": "icmp", "cidr": "0.0.0.0/0,::/0", "icmp_type": -1,
                          "icmp_code": -1, "allowed": True},
                         # The IPv6 scenario's echo ports, open to the VPC's
                         # IPv6 tiers only (an ACL item whose CIDR is IPv6).
                         *({"type": proto, "cidr": VPC6, "first_port": port,
                            "last_port": port, "allowed": True}
                           for proto, port in (("tcp", ECHO_TCP), ("udp", ECHO_UDP)))],
                     "egress_rules": []})
    bags.append({"type": "forwardrules", "rules": [
        {"revoke": False, "protocol": "tcp", "source_ip_address": PUBLIC_FORWARD,
         "source_port_range": "2222:2222", "destination_ip_address": "10.10.1.10",
         "destination_port_range": f"{SSH}:{SSH}"}]})
    bags.append({"type": "staticnatrules", "rules": [
        {"revoke": False, "source_ip_address": PUBLIC_STATIC,
         "destination_ip_address": "10.10.2.10", "source_port_range": "0:0"}]})
    return bags


IPV6_FIELDS = ("router_guest_ip6", "router_guest_ip6_gateway", "router_guest_ip6_cidr",
               "cidr6", "dns6")


def tier6(lab: Lab, router: str, dev: str) -> dict[str, str]:
    """A dual-stack tier's IPv6 fields as a 4.20 management server sends them
    in ``guestnetwork`` (SetGuestNetworkConfigItem.java, read by upstream's
    cs/CsVpcGuestNetwork.py; tests/fixtures/cloudstack/guestnetwork-ipv6-1.json):
    the router's own address, the VMs' gateway, the prefix, its length, and
    ``dns6``. As in IPv4, a pair's routers each have their own address (::2,
    ::3) beside the shared gateway (::1); a standalone router's is the gateway.
    No public IPv6 (``router_ip6``): the routers' eth1 sysctls are the
    compose file's (a container's /proc/sys is read-only) and would have to
    change with it (README "IPv6 in the compose lab"), so the scenario crosses
    tiers; the pair's public IPv6 is proven in namespaces
    (tests/integration/ha/test_pair_public_ipv6.py)."""
    prefix = TIERS6.get(dev)
    if prefix is None:
        return {}
    mine = f"{prefix}{1 + int(router[-1])}" if len(lab.routers) > 1 else f"{prefix}1"
    return dict(zip(IPV6_FIELDS, (mine, f"{prefix}1", f"{prefix}/64", "64", f"{prefix}1"),
                    strict=True))


def service_bags(lab: Lab) -> list[dict[str, Any]]:
    """The VMs' DHCP entries (by their containers' MACs) and metadata."""
    bags: list[dict[str, Any]] = []
    for net, vm in TIERS.values():
        ip = f"{net}.10"
        bags.append({"type": "dhcpentry", "host_name": vm, "mac_address": lab.mac(vm, "eth0"),
                     "ipv4_address": ip, "default_gateway": f"{net}.1", "default_entry": True,
                     "remove": False})
        bags.append({"type": "vmdata", "vm_ip_address": ip, "vm_metadata": [
            ["userdata", "user-data", base64.b64encode(f"#cloud-config\nhostname: {vm}\n"
                                                       .encode()).decode()],
            ["metadata", "instance-id", f"i-{vm}"],
            ["metadata", "availability-zone", "lab"],
            ["metadata", "local-hostname", vm],
            ["metadata", "local-ipv4", ip]]})
    return bags


@step("configuring the sample VPC on every router (public IPs, two dual-stack tiers, ACLs, "
      "source NAT, port forward, static NAT, the VMs' DHCP entries and metadata)")
def configure(lab: Lab) -> str:
    services = service_bags(lab)
    for r in lab.routers:
        lab.apply(r, *sample_bags(lab, r), *services)
    master = lab.wait_one_master()
    wait_for(lab.converged, 20, "keepalived to load the configuration on every router")
    return master


# -- services ------------------------------------------------------------------------

def _in_vm(lab: Lab, vm: str, *argv: str) -> str:
    proc = subprocess.run(["ip", "netns", "exec", lab.netns(vm), *argv], capture_output=True,
                          text=True, check=False)
    return proc.stdout.strip()


@step("checking DNS and metadata from the VMs, through the router")
def check_services(lab: Lab, within: float = 15.0) -> dict[str, bool]:
    """Each VM resolves the other by name and reads its own metadata, from the
    tier gateway (on a pair: whichever router is master)."""
    result: dict[str, bool] = {}
    vms = [(net, vm) for net, vm in TIERS.values()]
    for (net, vm), (other_net, other) in zip(vms, vms[1:] + vms[:1], strict=True):
        gw = f"{net}.1"
        name, want = f"{other}.vpc.lab", f"{other_net}.10"
        resolved = f"{vm}_resolves_{other}"
        meta = f"{vm}_reads_its_metadata"
        try:
            wait_for(lambda gw=gw, name=name, want=want, vm=vm: _in_vm(  # type: ignore[misc]
                lab, vm, "dig", f"@{gw}", name, "+short", "+time=1", "+tries=1") == want,
                within, f"{vm} to resolve {name}")
            result[resolved] = True
        except LabError:
            result[resolved] = False
        try:
            wait_for(lambda gw=gw, vm=vm: _in_vm(  # type: ignore[misc]
                lab, vm, "curl", "-s", "-m", "2",
                f"http://{gw}/latest/meta-data/instance-id") == f"i-{vm}",
                within, f"{vm}'s metadata")
            result[meta] = True
        except LabError:
            result[meta] = False
    failed = [k for k, ok in result.items() if not ok]
    if failed:
        raise LabError(f"service checks failed: {', '.join(failed)} (look at: docker exec "
                       f"{lab.project}_r1_1 tail /var/log/vragent/dnsmasq.log)")
    return result


# -- traffic -------------------------------------------------------------------------

@contextmanager
def servers(lab: Lab) -> Iterator[None]:
    with TcpEcho(lab.netns("outside"), "0.0.0.0", ECHO_TCP), \
            UdpEcho(lab.netns("outside"), OUTSIDE_FAR, ECHO_UDP), \
            TcpEcho(lab.netns("vm1"), "0.0.0.0", SSH), \
            TcpEcho(lab.netns("vm2"), "0.0.0.0", 80):
        yield


def seen_as(lab: Lab, router: str, port: int) -> set[str]:
    """Where replies to connections towards ``port`` go: the source NAT address
    (the reply direction's destination in the router's conntrack table)."""
    out = lab.exec(router, "conntrack", "-L", "-p", "tcp", "--dport", str(port), check=False)
    return {dsts[1] for line in out.splitlines()
            if len(dsts := re.findall(r"dst=(\S+)", line)) >= 2}


@step("checking the VPC end to end with real traffic")
def check_traffic(lab: Lab, master: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with servers(lab):
        with TcpHolder(lab.netns("vm1"), OUTSIDE_FAR, ECHO_TCP, 3) as h:
            result["vm1_to_outside"] = h.check()["ok"] == 3
        result["source_nat_ip_seen"] = PUBLIC_SNAT in seen_as(lab, master, ECHO_TCP)
        with TcpHolder(lab.netns("outside"), PUBLIC_FORWARD, 2222, 1) as h:
            result["port_forward"] = h.check()["ok"] == 1
        with TcpHolder(lab.netns("outside"), PUBLIC_STATIC, 80, 1) as h:
            result["static_nat"] = h.check()["ok"] == 1
    failed = [k for k, ok in result.items() if not ok]
    if failed:
        raise LabError(f"traffic checks failed: {', '.join(failed)} (master {master}; "
                       f"look at: vragent-lab exec {master} nft list ruleset)")
    return result


@dataclass
class FailoverResult:
    kind: str
    master_before: str
    master_after: str
    takeover_ms: float
    outage_ms: float
    probe: dict[str, Any]
    connections: dict[str, list[int]]  # name -> [opened, still carrying data]
    returned_as: str = ""
    timeline: list[dict[str, Any]] = field(default_factory=list)
    started_unix: float = 0.0
    # The IPv6 figures of the same failover (failover(..., ipv6=True)): see ipv6_failover.
    ipv6: dict[str, Any] = field(default_factory=dict)


def _backup_cache(lab: Lab, backup: str, dst: str = "") -> int:
    """Established flows in the backup's conntrackd external cache (to ``dst``)."""
    out = lab.exec(backup, "conntrackd", "-C", "/etc/vragent/conntrackd.conf", "-e",
                   check=False)
    return sum(1 for line in out.splitlines()
               if "ESTABLISHED" in line and (not dst or f"dst={dst} " in line))


# -- IPv6 on the dual-stack tiers ----------------------------------------------------

V6_CONNECTIONS = 20


def _slaac(lab: Lab, vm: str, dev: str) -> tuple[str, str]:
    """``vm``'s SLAAC address in its tier's prefix (a finite lifetime: taken
    from an advertisement, not configured) and its IPv6 default router as
    learnt from advertisements ("" when it has none yet)."""
    prefix = ipaddress.IPv6Network(f"{TIERS6[dev]}/64")
    links = json.loads(_in_vm(lab, vm, "ip", "-6", "-json", "address", "show", "dev", "eth0",
                              "scope", "global") or "[]")
    found = [a["local"] for link in links for a in link.get("addr_info", [])
             if "local" in a and ipaddress.IPv6Address(a["local"]) in prefix
             and a.get("valid_life_time", 0) < 0xFFFFFFFF]
    routes = json.loads(_in_vm(lab, vm, "ip", "-6", "-json", "route", "show", "default")
                        or "[]")
    router = next((str(r.get("gateway", "")) for r in routes if r.get("protocol") == "ra"), "")
    return (found[0] if found else ""), router


def ipv6_addresses(lab: Lab, within: float = 30.0) -> dict[str, str]:
    """The VMs' SLAAC addresses ({"vm1": ..., "vm2": ...}) and vm1's default
    router ("router"), once both have an address and a route from the RAs."""
    seen: dict[str, str] = {}

    def ready() -> bool:
        seen.clear()
        for dev, (_net, vm) in TIERS.items():
            if dev in TIERS6:
                addr, router = _slaac(lab, vm, dev)
                if not (addr and router):
                    return False
                seen[vm] = addr
                seen.setdefault("router", router)
        return True

    wait_for(ready, within, "the VMs of the dual-stack tiers to take an address and a "
             "default route from the router's advertisements (look at: docker exec "
             f"{lab.project}_r1_1 cat /etc/vragent/radvd.conf)", interval=0.5)
    return dict(seen)


def ping6(lab: Lab, src_vm: str, dst: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", lab.netns(src_vm), "ping", "-6", "-c", "1",
                           "-W", "1", dst], capture_output=True, check=False).returncode == 0


@step("checking IPv6 on the dual-stack tiers (SLAAC from the router's advertisements, "
      "ping6 and TCP from tier to tier)")
def check_ipv6(lab: Lab) -> dict[str, Any]:
    """Each VM of a dual-stack tier has its SLAAC address and a default route
    from the router's advertisements (on a pair: the shared link-local
    router), and vm1 reaches vm2 over IPv6 through the router."""
    v6 = ipv6_addresses(lab)
    result: dict[str, Any] = dict(v6)
    pair = len(lab.routers) > 1
    result["default_router_shared"] = v6["router"] == LINK_LOCAL_GATEWAY
    deadline = time.monotonic() + 10
    while not (ok := ping6(lab, "vm1", v6["vm2"])) and time.monotonic() < deadline:
        pass  # each try waits up to a second for its answer
    result["vm1_pings_vm2"] = ok
    with TcpEcho(lab.netns("vm2"), "::", ECHO_TCP), \
            TcpHolder(lab.netns("vm1"), v6["vm2"], ECHO_TCP, 1) as h:
        result["vm1_tcp_to_vm2"] = h.check()["ok"] == 1
    failed = [k for k in ("vm1_pings_vm2", "vm1_tcp_to_vm2") if not result[k]]
    if pair and not result["default_router_shared"]:
        failed.append(f"default router {v6['router']} (want {LINK_LOCAL_GATEWAY})")
    if failed:
        raise LabError(f"IPv6 checks failed: {', '.join(failed)} (look at: docker exec "
                       f"{lab.project}_r1_1 nft list ruleset)")
    return result


BREAKS: dict[str, Callable[[Lab, str], None]] = {
    "kill": lambda lab, r: lab.container(r).kill(),
    "stop": lambda lab, r: lab.container(r).stop(timeout=15),
}


@step("hard failover under load")
def failover(lab: Lab, kind: str = "kill", restore: bool = True,
             ipv6: bool = False) -> FailoverResult:
    """Break the master under IPv4 load (a UDP probe every 10 ms from vm1 to
    beyond the public gateway, long-lived source-NAT and port-forward TCP
    connections). With ``ipv6``, the same failover also carries IPv6 between
    the dual-stack tiers: a UDP probe every 10 ms and V6_CONNECTIONS TCP
    connections from vm1's SLAAC address to vm2's, routed by the master."""
    master = lab.wait_one_master()
    survivor = next(r for r in lab.routers if r != master)
    v6 = ipv6_addresses(lab) if ipv6 else {}
    with servers(lab), ExitStack() as stack:
        out = stack.enter_context(TcpHolder(lab.netns("vm1"), OUTSIDE_FAR, ECHO_TCP,
                                            CONNECTIONS))
        fwd = stack.enter_context(TcpHolder(lab.netns("outside"), PUBLIC_FORWARD, 2222, 1))
        probe = stack.enter_context(Probe(lab.netns("vm1"), OUTSIDE_FAR, ECHO_UDP,
                                          interval=0.01))
        opened = {"source_nat": out.check()["ok"], "port_forward": fwd.check()["ok"]}
        held6: TcpHolder | None = None
        probe6: Probe | None = None
        if v6:
            stack.enter_context(TcpEcho(lab.netns("vm2"), "::", ECHO_TCP))
            stack.enter_context(UdpEcho(lab.netns("vm2"), v6["vm2"], ECHO_UDP))
            held6 = stack.enter_context(TcpHolder(lab.netns("vm1"), v6["vm2"], ECHO_TCP,
                                                  V6_CONNECTIONS))
            probe6 = stack.enter_context(Probe(lab.netns("vm1"), v6["vm2"], ECHO_UDP,
                                               interval=0.01))
            opened["ipv6_tier_to_tier"] = held6.check()["ok"]
        wait_for(lambda: _backup_cache(lab, survivor) >= CONNECTIONS + 1, 20,
                 f"the backup ({survivor}) conntrackd to hold the connections")
        cached6 = 0
        if v6:
            def synced6() -> bool:
                nonlocal cached6
                cached6 = _backup_cache(lab, survivor, v6["vm2"])
                return cached6 >= V6_CONNECTIONS
            wait_for(synced6, 20, f"the backup ({survivor}) conntrackd to hold the IPv6 "
                     "connections")
        wait_for(lambda: probe.stats()["received"] >= 20, 10, "the probe to get replies")
        if probe6 is not None:
            wait_for(lambda: probe6.stats()["received"] >= 20, 10,
                     "the IPv6 probe to get replies")
            probe6.reset()
        probe.reset()
        started_unix = time.time()
        killed = time.monotonic()
        BREAKS[kind](lab, master)
        wait_for(lambda: lab.status(survivor) == "PRIMARY", 30,
                 f"{survivor} to take over")
        takeover = time.monotonic() - killed
        wait_for(lambda: probe.stats()["received"] > 0 and time.monotonic() - killed > 1, 20,
                 "the probe to get replies through the new master")
        if probe6 is not None:
            wait_for(lambda: probe6.stats()["received"] > 0, 20,
                     "the IPv6 probe to get replies through the new master")
        stats = probe.stop()
        stats6 = probe6.stop() if probe6 is not None else {}
        kept = {"source_nat": out.check()["ok"], "port_forward": fwd.check()["ok"]}
        if held6 is not None:
            kept["ipv6_tier_to_tier"] = held6.check()["ok"]
        result = FailoverResult(
            kind=kind, master_before=master, master_after=survivor,
            takeover_ms=round(takeover * 1000), outage_ms=stats["max_gap_ms"], probe=stats,
            connections={k: [opened[k], kept[k]] for k in opened}, started_unix=started_unix)
        if v6:
            after = ipv6_addresses(lab)
            result.ipv6 = {
                "vm1": v6["vm1"], "vm2": v6["vm2"], "router_before": v6["router"],
                "vm1_after": after["vm1"], "router_after": after["router"],
                "outage_ms": stats6["max_gap_ms"], "ipv4_outage_ms": stats["max_gap_ms"],
                "probe": stats6, "connections": [opened["ipv6_tier_to_tier"],
                                                 kept["ipv6_tier_to_tier"]],
                "in_backup_cache_before": cached6}
        if restore:
            lab.container(master).start()
            lab.attach_namespaces()
            wait_for(lambda: lab.status(master) == "BACKUP", 60,
                     f"{master} to come back as backup")
            result.returned_as = lab.status(master)
    result.timeline = [r for r in lab.reports() if r.get("unix", 0) >= started_unix - 30]
    return result


# -- the load balancer across a failover ---------------------------------------------

LB_IP, LB_PORT = PUBLIC_FORWARD, 80  # the sample's port-forward IP; its port 80 is free
LB_POOL = f"{LB_IP.replace('.', '_')}-{LB_PORT}"
LB_BACKENDS = {f"{net}.10": vm for net, vm in TIERS.values()}
LB_STATS = f"{TIERS['eth2'][0]}.1"  # stats on the first tier's gateway


def lb_command(revoked: bool = False) -> lb.Command:
    return lb.Command(rules=[lb.Rule(LB_IP, LB_PORT, [(ip, 80) for ip in LB_BACKENDS],
                                     revoked=revoked)], stats=lb.Stats(LB_STATS))


def _lb_up(lab: Lab, router: str) -> bool:
    """haproxy runs on ``router`` and has every backend of the pool UP."""
    pid = lab.container(router).attrs["State"]["Pid"]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            from vragent.features.loadbalancer.daemon import SOCKET

            s.connect(f"/proc/{pid}/root/run/vragent/{SOCKET.name}")
            s.sendall(b"show stat\n")
            out = b"".join(iter(lambda: s.recv(65536), b"")).decode(errors="replace")
    except OSError:
        return False
    rows = [line.split(",") for line in out.splitlines() if line.startswith(LB_POOL)]
    servers = [r for r in rows if len(r) > 17 and r[1] not in ("FRONTEND", "BACKEND")]
    return len(servers) == len(LB_BACKENDS) and all(r[17] == "UP" for r in servers)


@step(f"applying the load balancer ({LB_IP}:{LB_PORT} over vm1 and vm2) to every router")
def configure_lb(lab: Lab) -> None:
    bag = lb.bag(lb_command(), router_ip=LB_STATS)
    for r in lab.routers:
        lab.apply(r, bag)
    with lb_backends(lab):
        for r in lab.routers:
            wait_for(lambda r=r: _lb_up(lab, r), 30,  # type: ignore[misc]
                     f"haproxy on {r} to run with both backends up (look at: docker exec "
                     f"{lab.project}_{r}_1 tail /var/log/vragent/agent.log)")


def remove_lb(lab: Lab) -> None:
    """The rule revoked (what a management server sends when it is deleted)."""
    bag = lb.bag(lb_command(revoked=True), router_ip=LB_STATS)
    for r in lab.routers:
        if lab.status(r) != "DOWN":
            lab.apply(r, bag)


@contextmanager
def lb_backends(lab: Lab) -> Iterator[None]:
    """An HTTP server answering its VM's name on port 80 in each VM."""
    with ExitStack() as stack:
        for vm in LB_BACKENDS.values():
            stack.enter_context(HttpBackend(lab.netns(vm), vm, 80))
        yield


@dataclass
class LbFailoverResult:
    kind: str
    master_before: str
    master_after: str
    takeover_ms: float
    outage_ms: float  # the longest gap between successful responses
    requests: int
    failed: int
    errors: dict[str, int]
    backends_before: dict[str, int]
    backends_after: dict[str, int]
    recovered_ms: float  # the kill to the first success after the outage
    rate_before: float  # successful requests per second before the break
    failures_ms: tuple[float, float]  # the first and last failed request, after the break
    returned_as: str = ""


def _backends(outcomes: list[dict[str, Any]]) -> dict[str, int]:
    return dict(summary(outcomes)["backends"])


@step(f"load balancer across a hard failover (HTTP to {LB_IP}:{LB_PORT} from outside)")
def lb_failover(lab: Lab, kind: str = "kill", restore: bool = True) -> LbFailoverResult:
    """Requests from the outside host at the balanced IP the whole time; the
    master is broken in the middle."""
    master = lab.wait_one_master()
    survivor = next(r for r in lab.routers if r != master)
    wanted = set(LB_BACKENDS.values())
    with lb_backends(lab), HttpLoad(lab.netns("outside"), f"http://{LB_IP}:{LB_PORT}/") as load:
        wait_for(lambda: set(_backends(load.snapshot())) >= wanted
                 and len(load.snapshot()) >= 50, 15,
                 f"both backends to answer through {master}")
        steady = len(load.snapshot())
        # About a second of load before the break, and after the recovery.
        wait_for(lambda: len(load.snapshot()) >= steady + 200, 15,
                 "steady load before the break")
        killed_unix = time.time()
        killed = time.monotonic()
        BREAKS[kind](lab, master)
        wait_for(lambda: lab.status(survivor) == "PRIMARY", 30, f"{survivor} to take over")
        takeover = time.monotonic() - killed

        def after() -> list[dict[str, Any]]:
            return [o for o in load.snapshot() if o["start"] > killed_unix]

        wait_for(lambda: any("backend" in o for o in after()), 30,
                 f"a request answered through {survivor}")
        recovered = min(o["end"] for o in after() if "backend" in o)
        wait_for(lambda: set(_backends([o for o in after() if o["start"] > recovered]))
                 >= wanted, 15, f"both backends to answer through {survivor}")
        wait_for(lambda: sum(1 for o in after() if "backend" in o and o["start"] > recovered)
                 >= 200, 15, "steady load after the recovery")
        outcomes = load.stop()
    before = [o for o in outcomes if o["end"] < killed_unix]
    total = summary(outcomes)
    failed_at = [o["start"] - killed_unix for o in outcomes if "backend" not in o] or [0.0]
    ok_before = [o["end"] for o in before if "backend" in o]
    result = LbFailoverResult(
        kind=kind, master_before=master, master_after=survivor,
        takeover_ms=round(takeover * 1000), outage_ms=total["max_gap_ms"],
        requests=total["requests"], failed=total["failed"], errors=total["errors"],
        backends_before=_backends(before),
        backends_after=_backends([o for o in outcomes if o["start"] > recovered]),
        recovered_ms=round((total["max_gap_end"] - killed_unix) * 1000),
        rate_before=round(len(ok_before) / max(ok_before[-1] - ok_before[0], 0.001), 1),
        failures_ms=(round(min(failed_at) * 1000), round(max(failed_at) * 1000)))
    if restore:
        lab.container(master).start()
        lab.attach_namespaces()
        wait_for(lambda: lab.status(master) == "BACKUP", 60, f"{master} to come back as backup")
        result.returned_as = lab.status(master)
    return result


def lb_report(lab: Lab, result: LbFailoverResult) -> Path:
    out = lab.workdir
    out.mkdir(parents=True, exist_ok=True)
    path = out / "lab-lb-report.json"
    path.write_text(json.dumps(result.__dict__, indent=1))
    print(f"""
    load balancer report ({LB_IP}:{LB_PORT} over {', '.join(LB_BACKENDS.values())})
      master before: {result.master_before}, after: {result.master_after}
      ({result.kind}; the old master came back as {result.returned_as or 'n/a'})
      requests: {result.requests} total ({result.rate_before:.0f}/s before), \
{result.failed} failed {result.errors or ''}
        (failed requests started {result.failures_ms[0]:.0f} to {result.failures_ms[1]:.0f} \
ms after the {result.kind})
      outage: {result.outage_ms:.0f} ms between successful responses (answered again
        {result.recovered_ms:.0f} ms after the {result.kind}, takeover seen at \
{result.takeover_ms:.0f} ms)
      backends before: {result.backends_before}
      backends after:  {result.backends_after}
      written: {path}""")
    return path


def lb_job(lab: Lab, kind: str = "kill") -> int:
    """``vragent-lab lb``: on a running lab, the load balancer across a failover."""
    try:
        configure_lb(lab)
        lb_report(lab, lb_failover(lab, kind))
    except (LabError, ToolError, RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        print(f"\nlb scenario failed: {exc}", flush=True)
        return 1
    return 0


# -- a site-to-site VPN across a failover -------------------------------------------

def vm1_pings(lab: Lab, dst: str = vpn.PEER_HOST) -> bool:
    """One ICMP echo from vm1 answered within a second."""
    return subprocess.run(["ip", "netns", "exec", lab.netns("vm1"), "ping", "-c", "1", "-W",
                           "1", dst], capture_output=True, check=False).returncode == 0


def charon_runs(lab: Lab, router: str) -> bool:
    found = lab.container(router).exec_run(["pgrep", "-x", "charon-systemd"])
    return int(found.exit_code) == 0


@step(f"a VPN peer ({vpn.PEER_IP}, {vpn.PEER_NET} behind it) and a site2sitevpn bag "
      f"({PUBLIC_SNAT} <-> {vpn.PEER_IP}) on every router")
def configure_vpn(lab: Lab) -> vpn.VpnPeer:
    peer = vpn.VpnPeer(lab)
    peer.start()
    for r in lab.routers:
        lab.apply(r, vpn.bag())
    master = lab.wait_one_master()
    wait_for(lambda: vm1_pings(lab), 45,
             f"vm1 to ping {vpn.PEER_HOST} through the tunnel (look at: docker exec "
             f"{lab.project}_{master}_1 tail /var/log/vragent/charon.log; docker exec "
             f"{peer.name} tail {vpn.LOG})")
    return peer


def remove_vpn(lab: Lab, peer: vpn.VpnPeer | None = None) -> None:
    """The tunnel deleted (create: false, as a management server sends it), the peer removed."""
    for r in lab.routers:
        if lab.status(r) != "DOWN":
            lab.apply(r, vpn.bag(create=False))
    if peer is not None:
        peer.remove()


@dataclass
class VpnFailoverResult:
    kind: str
    master_before: str
    master_after: str
    tunnel_before: bool  # vm1 pinged the peer's host through the old master's tunnel
    takeover_ms: float  # the break to the survivor reporting PRIMARY
    recovered_ms: float  # the break to the first probe reply through the new master's tunnel
    outage_ms: float  # the longest gap between probe replies
    probe: dict[str, Any]
    tunnel_after: bool  # vm1 pings the peer's host again
    peer_established: bool  # the peer holds an IKE SA with an installed CHILD_SA
    returned_as: str = ""
    tunnel_after_return: bool = False  # still up once the old master is back
    charon_on_backup: bool = False  # charon runs on the returned backup (it must not)


@step(f"the VPN tunnel across a hard failover (vm1 to {vpn.PEER_HOST} through it)")
def vpn_failover(lab: Lab, peer: vpn.VpnPeer, kind: str = "kill",
                 restore: bool = True) -> VpnFailoverResult:
    """A UDP probe every 20 ms from vm1 to the peer's network across the
    tunnel; the master is broken in the middle. The new master's charon
    starts, calls the peer and replaces the old IKE SA (INITIAL_CONTACT)."""
    master = lab.wait_one_master()
    survivor = next(r for r in lab.routers if r != master)
    interval = 0.02
    with UdpEcho(peer.ns, vpn.PEER_HOST, ECHO_UDP), \
            Probe(lab.netns("vm1"), vpn.PEER_HOST, ECHO_UDP, interval=interval) as probe:
        wait_for(lambda: probe.stats()["received"] >= 20, 20,
                 f"the probe to get replies through {master}'s tunnel")
        tunnel_before = vm1_pings(lab)
        probe.reset()
        window = time.monotonic()
        wait_for(lambda: probe.stats()["received"] >= 50, 15, "steady replies before the break")
        killed = time.monotonic()
        at_ms = (killed - window) * 1000
        BREAKS[kind](lab, master)
        wait_for(lambda: lab.status(survivor) == "PRIMARY", 30, f"{survivor} to take over")
        takeover = time.monotonic() - killed
        wait_for(lambda: (s := probe.stats())["received"] > 0 and any(
            b > at_ms for _a, b in s["gaps"]), 60,
            f"the probe to get replies through {survivor}'s tunnel (look at: docker exec "
            f"{lab.project}_{survivor}_1 tail /var/log/vragent/charon.log)", interval=0.2)
        got = probe.stats()["received"]
        wait_for(lambda: probe.stats()["received"] >= got + 50, 15,
                 "steady replies after the recovery")
        stats = probe.stop()
    # The outage: the longest gap between replies that ends after the break.
    _start, end = max(((a, b) for a, b in stats["gaps"] if b > at_ms),
                      key=lambda g: g[1] - g[0])
    result = VpnFailoverResult(
        kind=kind, master_before=master, master_after=survivor, tunnel_before=tunnel_before,
        takeover_ms=round(takeover * 1000), recovered_ms=round(end - at_ms),
        outage_ms=stats["max_gap_ms"], probe=stats,
        tunnel_after=vm1_pings(lab), peer_established=peer.established())
    if restore:
        lab.container(master).start()
        lab.attach_namespaces()
        wait_for(lambda: lab.status(master) == "BACKUP", 60, f"{master} to come back as backup")
        result.returned_as = lab.status(master)
        # The tunnel through the master with the old one back as backup.
        deadline = time.monotonic() + 10
        while not (ok := vm1_pings(lab)) and time.monotonic() < deadline:
            pass  # each try waits up to a second for its answer
        result.tunnel_after_return = ok
        result.charon_on_backup = charon_runs(lab, master)
    return result


def vpn_report(lab: Lab, result: VpnFailoverResult) -> Path:
    out = lab.workdir
    out.mkdir(parents=True, exist_ok=True)
    path = out / "lab-vpn-report.json"
    path.write_text(json.dumps(result.__dict__, indent=1))
    p = result.probe
    print(f"""
    VPN report (site-to-site, {PUBLIC_SNAT} <-> {vpn.PEER_IP}, vm1 -> {vpn.PEER_HOST})
      master before: {result.master_before}, after: {result.master_after}
      ({result.kind}; the old master came back as {result.returned_as or 'n/a'},
        charon running on it: {result.charon_on_backup})
      tunnel before: {result.tunnel_before}, after: {result.tunnel_after},
        after the return: {result.tunnel_after_return}
        (the peer's SA established: {result.peer_established})
      recovered: {result.recovered_ms:.0f} ms after the {result.kind}
        (takeover seen at {result.takeover_ms:.0f} ms; longest gap {result.outage_ms:.0f} ms)
      probe: {p['sent']} sent every 20 ms, {p['lost']} lost
      written: {path}""")
    return path


def vpn_job(lab: Lab, kind: str = "kill") -> int:
    """``vragent-lab vpn``: on a running lab, a VPN peer and its tunnel across a failover."""
    try:
        peer = configure_vpn(lab)
        vpn_report(lab, vpn_failover(lab, peer, kind))
    except (LabError, ToolError, RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        print(f"\nvpn scenario failed: {exc}", flush=True)
        return 1
    print(f"\nthe peer ({vpn.VpnPeer(lab).name}) and the tunnel stay up; "
          "`vragent-lab down` removes them")
    return 0


# -- the report ----------------------------------------------------------------------

@step("writing the report")
def write_report(lab: Lab, traffic: dict[str, Any], result: FailoverResult) -> Path:
    out = lab.workdir
    out.mkdir(parents=True, exist_ok=True)
    doc = {"topology": lab.topology, "mode": lab.mode, "advert_int": lab.advert_int,
           "traffic": traffic, "failover": result.__dict__}
    path = out / "lab-report.json"
    path.write_text(json.dumps(doc, indent=1))
    plot(result, out / "lab-timeline.png")
    kept = ", ".join(f"{k} {v[1]}/{v[0]}" for k, v in result.connections.items())
    print(f"""
    lab report ({lab.topology}, {MODE_NAMES[lab.mode]} mode, advert_int {lab.advert_int:g})
      master before: {result.master_before}, after: {result.master_after}
      ({result.kind}; the old master came back as {result.returned_as or 'n/a'})
      outage: {result.outage_ms:.0f} ms (takeover seen {result.takeover_ms:.0f} ms after the kill)
      connections still carrying data: {kept}
      probe: {result.probe['sent']} sent, {result.probe['lost']} lost""")
    if result.ipv6:
        print(ipv6_lines(result))
    print("      state timeline:")
    for rep in result.timeline:
        at = rep.get("unix", 0) - result.started_unix
        print(f"        {at:+8.2f} s  {rep.get('router')}: {rep.get('previous')} -> "
              f"{rep.get('state')} ({rep.get('reason')})")
    print(f"      written: {path}, {out / 'lab-timeline.png'}")
    return path


def ipv6_lines(result: FailoverResult) -> str:
    v6 = result.ipv6
    opened, kept = v6["connections"]
    return f"""      IPv6 (vm1 {v6['vm1']} -> vm2 {v6['vm2']}, tier to tier, SLAAC):
        outage: {v6['outage_ms']:.0f} ms (IPv4 in the same failover: \
{v6['ipv4_outage_ms']:.0f} ms); probe {v6['probe']['sent']} sent, {v6['probe']['lost']} lost
        TCP connections still carrying data: {kept}/{opened} \
({v6['in_backup_cache_before']} in the backup's conntrackd cache before the {result.kind})
        vm1's default router: {v6['router_before']} before, {v6['router_after']} after"""


def ipv6_job(lab: Lab, kind: str = "kill") -> int:
    """``vragent-lab v6``: on a running pair, IPv6 between the dual-stack tiers
    across a failover (and the IPv4 probe of the same failover, to compare)."""
    try:
        check = check_ipv6(lab)
        if len(lab.routers) == 1:
            print(f"\nIPv6 checks: {check}")
            return 0
        result = failover(lab, kind, ipv6=True)
        out = lab.workdir
        out.mkdir(parents=True, exist_ok=True)
        path = out / "lab-v6-report.json"
        path.write_text(json.dumps({"check": check, "failover": result.__dict__}, indent=1))
        print(f"""
    IPv6 report ({lab.topology}, {MODE_NAMES[lab.mode]} mode, advert_int {lab.advert_int:g})
      master before: {result.master_before}, after: {result.master_after}
      ({result.kind}; the old master came back as {result.returned_as or 'n/a'})
{ipv6_lines(result)}
      written: {path}""")
    except (LabError, ToolError, RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        print(f"\nIPv6 scenario failed: {exc}", flush=True)
        return 1
    return 0


def plot(result: FailoverResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = {"DOWN": 0, "UNKNOWN": 1, "FAULT": 2, "BACKUP": 3, "PRIMARY": 4}
    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(9, 5))
    events = [(r["unix"] - result.started_unix, str(r.get("router")), str(r["state"]))
              for r in result.timeline if "unix" in r and "state" in r]
    # The broken router cannot report its own end: it is down from the break on.
    killed = f"r-{result.master_before[-1]}-VM"
    events.append((0.0, killed, "DOWN"))
    end = max([t for t, _, _ in events] + [5.0]) + 1
    for name in sorted({n for _, n, _ in events}):
        points = sorted((t, levels.get(s, 1)) for t, n, s in events if n == name)
        xs, ys = zip(*points, strict=True)
        ax1.step([*xs, end], [*ys, ys[-1]], where="post", label=name)
    ax1.set_yticks(list(levels.values()), list(levels))
    ax1.set_ylabel("state")
    ax1.legend(loc="upper right")
    ax1.axvline(0, color="red", linestyle="--", linewidth=1)
    for a, b in result.probe.get("gaps", []):
        ax2.axvspan(a / 1000, b / 1000, color="red", alpha=0.4)
    ax2.set_ylabel("probe loss")
    ax2.set_yticks([])
    ax2.set_xlabel(f"seconds after the {result.kind} of {result.master_before}")
    ax1.set_title(f"failover: outage {result.outage_ms:.0f} ms")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main_job(lab: Lab) -> int:
    """``make lab``: up, configure, check, fail over under load, report."""
    started = time.monotonic()
    try:
        step(f"bringing up the {lab.topology} topology")(lab.up)()
        master = configure(lab)
        traffic = check_traffic(lab, master)
        traffic["services"] = check_services(lab)
        traffic["ipv6"] = check_ipv6(lab)
        if len(lab.routers) == 1:
            print(f"\ntraffic checks: {traffic}")
            return 0
        result = failover(lab, "kill", ipv6=True)
        traffic["services_after_failover"] = check_services(lab)
        write_report(lab, traffic, result)
    except (LabError, ToolError, subprocess.CalledProcessError, OSError) as exc:
        print(f"\nlab failed: {exc}\n  containers: docker ps -a --filter "
              f"label=com.docker.compose.project={lab.project}\n  router logs: "
              f"docker exec {lab.project}_r1_1 tail -50 /var/log/vragent/agent.log\n"
              f"  tear down: make lab-down", flush=True)
        return 1
    print(f"\nlab done in {time.monotonic() - started:.0f} s; it keeps running "
          f"(vragent-lab failover | report | down; make lab-down)")
    return 0
