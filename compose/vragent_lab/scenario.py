"""What the lab does with a running topology: the sample VPC, checks, failovers, a report."""

from __future__ import annotations

import base64
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
    OUTSIDE,
    OUTSIDE_FAR,
    PUBLIC_FORWARD,
    PUBLIC_SNAT,
    PUBLIC_STATIC,
    TIERS,
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
                     "dns": f"{net}.1", "domain_name": "vpc.lab"})
        bags.append({"type": "networkacl", "device": dev, "mac_address": mac,
                     "private_gateway_acl": False, "nic_ip": f"{net}.1", "nic_netmask": "24",
                     "ingress_rules": [
                         {"type": "tcp", "cidr": "0.0.0.0/0,::/0", "first_port": SSH,
                          "last_port": SSH, "allowed": True},
                         {"type": "tcp", "cidr": "0.0.0.0/0,::/0", "first_port": 80,
                          "last_port": 80, "allowed": True},
                         {"type": "icmp", "cidr": "0.0.0.0/0,::/0", "icmp_type": -1,
                          "icmp_code": -1, "allowed": True}],
                     "egress_rules": []})
    bags.append({"type": "forwardrules", "rules": [
        {"revoke": False, "protocol": "tcp", "source_ip_address": PUBLIC_FORWARD,
         "source_port_range": "2222:2222", "destination_ip_address": "10.10.1.10",
         "destination_port_range": f"{SSH}:{SSH}"}]})
    bags.append({"type": "staticnatrules", "rules": [
        {"revoke": False, "source_ip_address": PUBLIC_STATIC,
         "destination_ip_address": "10.10.2.10", "source_port_range": "0:0"}]})
    return bags


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


@step("configuring the sample VPC on every router (public IPs, two tiers, ACLs, "
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


def _backup_cache(lab: Lab, backup: str) -> int:
    out = lab.exec(backup, "conntrackd", "-C", "/etc/vragent/conntrackd.conf", "-e",
                   check=False)
    return sum(1 for line in out.splitlines() if "ESTABLISHED" in line)


BREAKS: dict[str, Callable[[Lab, str], None]] = {
    "kill": lambda lab, r: lab.container(r).kill(),
    "stop": lambda lab, r: lab.container(r).stop(timeout=15),
}


@step("hard failover under load")
def failover(lab: Lab, kind: str = "kill", restore: bool = True) -> FailoverResult:
    master = lab.wait_one_master()
    survivor = next(r for r in lab.routers if r != master)
    with servers(lab), ExitStack() as stack:
        out = stack.enter_context(TcpHolder(lab.netns("vm1"), OUTSIDE_FAR, ECHO_TCP,
                                            CONNECTIONS))
        fwd = stack.enter_context(TcpHolder(lab.netns("outside"), PUBLIC_FORWARD, 2222, 1))
        probe = stack.enter_context(Probe(lab.netns("vm1"), OUTSIDE_FAR, ECHO_UDP,
                                          interval=0.01))
        opened = {"source_nat": out.check()["ok"], "port_forward": fwd.check()["ok"]}
        wait_for(lambda: _backup_cache(lab, survivor) >= CONNECTIONS + 1, 20,
                 f"the backup ({survivor}) conntrackd to hold the connections")
        wait_for(lambda: probe.stats()["received"] >= 20, 10, "the probe to get replies")
        probe.reset()
        started_unix = time.time()
        killed = time.monotonic()
        BREAKS[kind](lab, master)
        wait_for(lambda: lab.status(survivor) == "PRIMARY", 30,
                 f"{survivor} to take over")
        takeover = time.monotonic() - killed
        wait_for(lambda: probe.stats()["received"] > 0 and time.monotonic() - killed > 1, 20,
                 "the probe to get replies through the new master")
        stats = probe.stop()
        kept = {"source_nat": out.check()["ok"], "port_forward": fwd.check()["ok"]}
        result = FailoverResult(
            kind=kind, master_before=master, master_after=survivor,
            takeover_ms=round(takeover * 1000), outage_ms=stats["max_gap_ms"], probe=stats,
            connections={k: [opened[k], kept[k]] for k in opened}, started_unix=started_unix)
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
      probe: {result.probe['sent']} sent, {result.probe['lost']} lost
      state timeline:""")
    for rep in result.timeline:
        at = rep.get("unix", 0) - result.started_unix
        print(f"        {at:+8.2f} s  {rep.get('router')}: {rep.get('previous')} -> "
              f"{rep.get('state')} ({rep.get('reason')})")
    print(f"      written: {path}, {out / 'lab-timeline.png'}")
    return path


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
        if len(lab.routers) == 1:
            print(f"\ntraffic checks: {traffic}")
            return 0
        result = failover(lab, "kill")
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
