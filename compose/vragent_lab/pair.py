"""A redundant pair in network namespaces, run the way an appliance runs it.

Two routers (``r1``, ``r2``) share bridges in a switch namespace (``sw``):
the control network (with the management server ``mgmt``), the sync link
VRRP and conntrackd run on, the public network (with the ``out`` host) and
three guest tiers (a VM on each). Each router runs supervisord from
``services/supervisord.conf`` with its own root directory; supervisord runs
the resident agent, which starts conntrackd and keepalived.

Used by the integration tests and by ``make bench-failover``.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vragent.log import parse_lines
from vragent.settings import Settings

from .netns import Lab, in_ns, sh, wait_for

REPO = Path(__file__).resolve().parents[2]
SUPERVISORD_CONF = REPO / "services/supervisord.conf"
SAMPLE = Path(__file__).with_name("sample")

OUTSIDE = "100.64.10.1"
PUBLIC_SNAT = "100.64.10.10"
PUBLIC_FORWARD = "100.64.10.11"  # :2222 -> VM1:22
MGMT = "169.254.0.1"
MGMT_PORT = 8080
VMS = {"vm1": ("10.10.1.10", "10.10.1.1", "eth2"), "vm2": ("10.10.2.10", "10.10.2.1", "eth3"),
       "vm3": ("10.10.3.10", "10.10.3.1", "eth4")}
BRIDGES = {"eth0": "brctl", "eth1": "brpub", "eth2": "brt1", "eth3": "brt2", "eth4": "brt3",
           "eth5": "brsync"}


# CloudStack gives both routers of a pair the same public MAC: the source-NAT
# IP's (NetworkHelperImpl.configurePublicNic). The CloudStack-mode lab does too.
SHARED_PUBLIC_MAC = "02:00:0a:00:00:01"
# createRedundantRouterArgs for a VPC: router_id is the VPC id, the password
# the decimal SHA-512 of its uuid, and nothing names a sync link.
CLOUDSTACK_BOOT = {"redundant_router": "1", "router_id": "4711",
                   "router_password": "93871234567", "advert_int": "1"}


def agent_log(root: Path) -> str:
    """The agent's log under ``root``, as text, once every line of it has been
    read as one JSON record (vragent/log.py): a test or bench that looks for
    a message in it checks the promise of one record per line too. The end
    of a record being written as it is read is left for the next reading."""
    path = root / "var/log/vragent/agent.log"
    text = path.read_text() if path.exists() else ""
    parse_lines(text, unfinished_ok=True)
    return text


def agent_records(root: Path) -> list[dict[str, Any]]:
    """The agent's log records under ``root`` (every line: see ``agent_log``)."""
    return parse_lines(agent_log(root), unfinished_ok=True)


def mac(router: int, dev: str, cloudstack: bool = False) -> str:
    if cloudstack and dev == "eth1":
        return SHARED_PUBLIC_MAC
    return f"02:00:0a:0{router}:00:0{dev[-1]}"


def start_supervisord(ns: str, root: Path) -> subprocess.Popen[bytes]:
    """Power a router on, as the appliance does: supervisord (services/supervisord.conf)
    in ``ns`` with every path under ``root``; it starts the agent, which boots the box."""
    bindir = str(Path(sys.executable).parent)
    env_path = f"{bindir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for sub in ("run/vragent", "var/log/vragent", "etc/vragent/supervisor.d"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    # The declared daemons' [program:] sections, as vragent-init writes them,
    # and, as the image build does, what the router is built from.
    for command in ("programs", "signature --write"):
        subprocess.run([sys.executable, "-m", "vragent", "--root", str(root),
                        *command.split()], check=True, capture_output=True)
    with (root / "var/log/vragent/supervisord.out").open("ab") as log:
        return subprocess.Popen(
            ["ip", "netns", "exec", ns, "env", f"VRAGENT_ROOT={root}", f"PATH={env_path}",
             f"{bindir}/supervisord", "-c", str(SUPERVISORD_CONF)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )


def supervisorctl(root: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "supervisorctl"), "-s",
         f"unix://{root}/run/vragent/supervisor.sock", *args],
        capture_output=True, text=True, check=False,
    )
    return proc.stdout + proc.stderr


@dataclass
class PairRouter:
    lab: Lab
    index: int  # 1 or 2
    root: Path
    supervisord: subprocess.Popen[bytes] | None = None
    cloudstack: bool = False  # driven only by what a management server sends

    @property
    def ns(self) -> str:
        return f"{self.lab.prefix}r{self.index}"

    @property
    def name(self) -> str:
        return f"r-{self.index}-VM"

    def vragent(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["ip", "netns", "exec", self.ns, sys.executable, "-m", "vragent",
             "--root", str(self.root), *args],
            capture_output=True, text=True, check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.name}: vragent {' '.join(args)} exit "
                                 f"{proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def apply(self, *bags: dict[str, Any] | str) -> subprocess.CompletedProcess[str]:
        """Apply bags (dicts, or names of the sample bags, with this router's MACs)."""
        paths = []
        bag_dir = self.root / "bags"
        bag_dir.mkdir(exist_ok=True)
        for n, bag in enumerate(bags):
            doc = bag if isinstance(bag, dict) else self.sample(bag)
            path = bag_dir / f"{time.monotonic_ns()}-{n}.json"
            path.write_text(json.dumps(doc))
            paths.append(str(path))
        return self.vragent("apply", *paths)

    def sample(self, name: str) -> dict[str, Any]:
        text = (SAMPLE / name).read_text()
        if self.cloudstack:
            text = text.replace(f'"{SHARED_PUBLIC_MAC}"', '"shared-public-mac"')
        text = text.replace("02:00:0a:00:00:0", f"02:00:0a:0{self.index}:00:0")
        doc: dict[str, Any] = json.loads(text.replace("shared-public-mac", SHARED_PUBLIC_MAC))
        if self.cloudstack and doc.get("type") == "guestnetwork":
            # SetGuestNetworkConfigItem: the router's own address on the tier
            # (.2 and .3), and the tier gateway (.1) that only the master holds.
            gateway = doc["router_guest_ip"]
            doc["router_guest_gateway"] = gateway
            doc["router_guest_ip"] = f"{gateway.rsplit('.', 1)[0]}.{1 + self.index}"
        return doc

    def sh(self, *argv: str, check: bool = True) -> str:
        return in_ns(self.ns, list(argv), check=check)

    # -- what the agent says -----------------------------------------------------
    def ha_state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.root / "var/lib/vragent/ha-state.json")
                                              .read_text())
            return data
        except (OSError, ValueError):
            return {"status": "UNKNOWN", "transitions": 0, "dual_master": ""}

    def status(self) -> str:
        return str(self.ha_state()["status"])

    def transitions(self) -> int:
        return int(self.ha_state()["transitions"])

    def config_loaded(self) -> bool:
        """keepalived runs the configuration the agent last wrote (reload done)."""
        conf = self.root / "etc/vragent/keepalived.conf"
        loaded = self.root / "run/vragent/keepalived.loaded"
        try:
            # sha256sum's format, "<digest>  <file name>", a line per file.
            digest = loaded.read_text().split()[:1]
            return digest == [hashlib.sha256(conf.read_bytes()).hexdigest()]
        except OSError:
            return False

    def supervisorctl(self, *args: str) -> str:
        return supervisorctl(self.root, *args)

    def service_running(self, name: str = "dnsmasq") -> bool:
        return "RUNNING" in self.supervisorctl("status", name)

    def reload_times(self) -> list[float]:
        """When the agent reloaded keepalived (from its log, every line of which
        must be one JSON record: vragent/log.py)."""
        return [datetime.datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp()
                for r in agent_records(self.root) if r.get("message") == "reloading keepalived"]

    def holds_vip(self, vip: str, dev: str = "eth5") -> bool:
        return f" {vip}/" in self.sh("ip", "-4", "-o", "addr", "show", "dev", dev,
                                     check=False)

    def tx_packets(self, dev: str) -> int:
        out = json.loads(self.sh("ip", "-json", "-s", "link", "show", "dev", dev))
        return int(out[0]["stats64"]["tx"]["packets"])

    # -- life and death ------------------------------------------------------------
    def start(self) -> None:
        """Power on: supervisord starts the agent, which boots the box."""
        self.supervisord = start_supervisord(self.ns, self.root)

    def pids(self) -> list[int]:
        out = sh(["ip", "netns", "pids", self.ns], check=False)
        return [int(p) for p in out.split()]

    def kill(self) -> None:
        """SIGKILL every process of the router: supervisord, agent, keepalived, conntrackd."""

        def killed() -> bool:
            # Again until none is left: a process forked between the listing
            # and the signals (a command the agent was starting) survives one pass.
            pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return not pids

        killed()
        if self.supervisord is not None:
            self.supervisord.wait()
            self.supervisord = None
        wait_for(killed, 10, f"{self.name}'s processes to die")

    def power_off(self) -> None:
        """A hard failure: every process killed and every link gone dark."""
        self.kill()
        for dev in BRIDGES:
            self.sh("ip", "link", "set", dev, "down")

    def wipe_volatile(self) -> None:
        """What a reboot loses: kernel state and the run directory; the store stays."""
        for dev in BRIDGES:
            self.sh("ip", "addr", "flush", "dev", dev)
        self.sh("nft", "flush", "ruleset")
        self.sh("conntrack", "-F", check=False)
        proto = str(Settings().route_protocol)
        for item in json.loads(self.sh("ip", "-N", "-json", "rule", "show") or "[]"):
            if str(item.get("protocol")) == proto:
                self.sh("ip", "rule", "del", "priority", str(item["priority"]))
        self.sh("ip", "route", "flush", "table", "all", "proto", proto, check=False)
        shutil.rmtree(self.root / "run", ignore_errors=True)

    def power_on(self) -> None:
        for dev in BRIDGES:
            self.sh("ip", "link", "set", dev, "up")
        self.start()

    def reboot(self) -> None:
        self.kill()
        self.wipe_volatile()
        self.power_on()


@dataclass
class Pair:
    lab: Lab
    base: Path
    advert_int: float
    routers: list[PairRouter] = field(default_factory=list)
    receiver: subprocess.Popen[bytes] | None = None
    cloudstack: bool = False

    @property
    def advert(self) -> tuple[str, str]:
        """(device, address) of what the master's adverts carry."""
        return ("eth1", PUBLIC_SNAT) if self.cloudstack else ("eth5", "10.255.0.254")

    @property
    def r1(self) -> PairRouter:
        return self.routers[0]

    @property
    def r2(self) -> PairRouter:
        return self.routers[1]

    def ns(self, short: str) -> str:
        return f"{self.lab.prefix}{short}"

    def statuses(self) -> tuple[str, str]:
        return self.r1.status(), self.r2.status()

    def master(self) -> PairRouter | None:
        masters = [r for r in self.routers if r.status() == "PRIMARY"]
        return masters[0] if len(masters) == 1 else None

    def wait_one_master(self, timeout: float = 30.0) -> PairRouter:
        seen: list[str] = []

        def one() -> bool:
            # The master comes from the very reading that showed one.
            seen[:] = self.statuses()
            return sorted(seen) == ["BACKUP", "PRIMARY"]

        wait_for(one, timeout, "exactly one PRIMARY and one BACKUP")
        return self.routers[seen.index("PRIMARY")]

    def other(self, router: PairRouter) -> PairRouter:
        return self.r2 if router is self.r1 else self.r1

    def reports(self) -> list[dict[str, Any]]:
        path = self.base / "reports.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def start_receiver(self) -> None:
        self.receiver = subprocess.Popen(
            ["ip", "netns", "exec", self.ns("mgmt"), sys.executable, "-m",
             "vragent_lab.receiver", "--bind", MGMT, "--port", str(MGMT_PORT),
             "--out", str(self.base / "reports.jsonl")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def stop_receiver(self) -> None:
        if self.receiver is not None:
            self.receiver.kill()
            self.receiver.wait()
            self.receiver = None

    def cut_sync(self, cut: bool = True) -> None:
        """Partition the VRRP link in the switch: both routers keep carrier."""
        for i in (1, 2):
            sh(["ip", "netns", "exec", self.ns("sw"), "bridge", "link", "set", "dev",
                f"r{i}e5", "isolated", "on" if cut else "off"])

    def destroy(self) -> None:
        for r in self.routers:
            if r.supervisord is not None:
                r.kill()
        self.stop_receiver()
        self.lab.destroy()


def cmdline(index: int, advert_int: float, multicast: bool = False,
            cloudstack: bool = False, extra: dict[str, str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SAMPLE / "cmd_line.json").read_text())
    if cloudstack:
        doc["cmd_line"].update({"name": f"r-{index}-VM", "eth0ip": f"169.254.0.1{index}",
                                "advert_int": f"{advert_int:g}",
                                "report_url": f"http://{MGMT}:{MGMT_PORT}/vrouter/state",
                                **CLOUDSTACK_BOOT})
        return doc
    doc["cmd_line"].update({
        "name": f"r-{index}-VM",
        "eth0ip": f"169.254.0.1{index}",
        "redundant_router": "1",
        "advert_int": f"{advert_int:g}",
        "router_id": "51",
        "router_pr": "100",
        "sync_dev": "eth5",
        "eth5ip": f"10.255.0.{index}",
        "eth5mask": "255.255.255.0",
        "sync_peer": f"10.255.0.{3 - index}",
        "report_url": f"http://{MGMT}:{MGMT_PORT}/vrouter/state",
    })
    if multicast:
        del doc["cmd_line"]["sync_peer"]
    doc["cmd_line"].update(extra or {})
    return doc


def tier3(index: int) -> list[dict[str, Any]]:
    """The guest tier added and removed on the live pair (eth4)."""
    guest = {"add": True, "mac_address": mac(index, "eth4"), "device": "eth4",
             "router_guest_ip": "10.10.3.1", "router_guest_gateway": "10.10.3.1",
             "router_guest_netmask": "255.255.255.0", "cidr": "24", "dns": "10.10.3.1",
             "domain_name": "vpc.lab", "type": "guestnetwork"}
    acl = {"device": "eth4", "mac_address": mac(index, "eth4"), "private_gateway_acl": False,
           "nic_ip": "10.10.3.1", "nic_netmask": "24", "ingress_rules": [],
           "egress_rules": [{"type": "all", "cidr": "0.0.0.0/0", "allowed": True}],
           "type": "networkacl"}
    return [guest, acl]


_serial = itertools.count()


def _free_prefix() -> str:
    """A namespace prefix no pair on this host uses now. This process's pairs
    are numbered: taken from the clock's last two digits, two pairs alive at
    once got the same name in one CI run. One left by another process is skipped."""
    while True:
        prefix = f"p{os.getpid() % 10000}{next(_serial) % 100:02d}-"
        if not Path(f"/run/netns/{prefix}sw").exists():
            return prefix


def build(base: Path, advert_int: float = 1.0, prefix: str | None = None,
          multicast: bool = False, cloudstack: bool = False,
          boot: dict[str, str] | None = None) -> Pair:
    """Namespaces, bridges and hosts; routers booted but not started.

    ``cloudstack``: boot parameters and bags as a management server sends them
    (no sync link, one public MAC for both, own tier addresses and a shared gateway).
    ``boot``: more boot parameters for both routers (fast detection's, say).
    """
    prefix = prefix or _free_prefix()
    lab = Lab(prefix)
    pair = Pair(lab, base, advert_int, cloudstack=cloudstack)
    try:
        sw = lab.ns("sw")
        for bridge in BRIDGES.values():
            in_ns(sw, ["ip", "link", "add", bridge, "type", "bridge", "stp_state", "0",
                       "forward_delay", "0"])
            in_ns(sw, ["ip", "link", "set", bridge, "up"])
        for i in (1, 2):
            for dev, bridge in BRIDGES.items():
                port = f"r{i}e{dev[-1]}"
                lab.link(f"r{i}", dev, "sw", port, mac(i, dev, cloudstack))
                in_ns(sw, ["ip", "link", "set", port, "master", bridge])
            in_ns(lab.ns(f"r{i}"), ["ip", "link", "set", "eth0", "up"])
        for host, dev, bridge, cidr, gw in (
            ("mgmt", "eth0", "brctl", f"{MGMT}/16", None),
            ("out", "eth0", "brpub", f"{OUTSIDE}/24", None),
            *((vm, "eth0", BRIDGES[rdev], f"{ip}/24", gw) for vm, (ip, gw, rdev) in VMS.items()),
        ):
            port = f"{host}p"
            lab.link(host, dev, "sw", port)
            in_ns(sw, ["ip", "link", "set", port, "master", bridge])
            lab.host(host, dev, cidr, gw)
        for i in (1, 2):
            root = base / f"r{i}"
            (root / "var/cache/cloud").mkdir(parents=True, exist_ok=True)
            (root / "var/cache/cloud/cmd_line.json").write_text(
                json.dumps(cmdline(i, advert_int, multicast, cloudstack, boot)))
            pair.routers.append(PairRouter(lab, i, root, cloudstack=cloudstack))
    except BaseException:
        lab.destroy()
        raise
    return pair


BASE_BAGS = ["ip_associations.json", "guest_network_tier1.json", "guest_network_tier2.json",
             "network_acl_tier1.json", "network_acl_tier2.json", "forwarding_rules.json"]


def start(pair: Pair, bags: list[str] | None = None, timeout: float = 30.0) -> PairRouter:
    """Start both routers, apply the sample VPC's bags on both; returns the master.

    In CloudStack mode the pair elects once the source-NAT IP arrives (ips bag).
    """
    pair.start_receiver()
    for r in pair.routers:
        r.start()
    if pair.cloudstack:
        for r in pair.routers:
            r.apply(*(bags if bags is not None else BASE_BAGS))
        return pair.wait_one_master(timeout)
    master = pair.wait_one_master(timeout)
    for r in pair.routers:
        if bags is None:
            r.apply(*BASE_BAGS)
        elif bags:
            r.apply(*bags)
    return master
