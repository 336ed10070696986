"""The compose lab: bring a topology up, play its management server, tear it down.

Everything the lab creates is named after its project (``vrlab`` by default):
the compose project (containers, networks, volumes), the network-namespace
handles of its containers (``ip netns attach``, so the traffic tools of
``vragent_lab.traffic`` run in them), and one ``DOCKER-USER`` rule per lab
bridge (see ``allow_bridged``). ``down`` removes exactly those.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container

from . import netns
from .recorded import Options

COMPOSE_DIR = Path(__file__).resolve().parents[1]
PROJECT = "vrlab"
ROUTERS = ("r1", "r2")
HOSTS = ("outside", "vm1", "vm2")
CONTROL_NET = "169.254.100"
MGMT = f"{CONTROL_NET}.254"  # the control bridge's host end: the lab's management server
MGMT_PORT = 8480
SYNC_NET = "10.255.0"
OUTSIDE = "100.64.10.100"
OUTSIDE_FAR = "100.64.99.1"  # beyond the public gateway
PUBLIC_SNAT, PUBLIC_FORWARD, PUBLIC_STATIC = "100.64.10.10", "100.64.10.11", "100.64.10.12"
TIERS = {"eth2": ("10.10.1", "vm1"), "eth3": ("10.10.2", "vm2")}
# The tiers' IPv6 prefixes (ULA, fd00::/8): dual-stack tiers whose VMs take
# their address and default route from the router's advertisements (SLAAC).
# The docker networks carry no IPv6 of their own (no enable_ipv6): docker would
# hand each container a static address from its IPAM and put its own gateway
# on the bridge; here only the router's RAs address the VMs.
TIERS6 = {"eth2": "fd00:10:10:1::", "eth3": "fd00:10:10:2::"}
VPC6 = "fd00:10:10::/48"
LINK_LOCAL_GATEWAY = "fe80::1"  # a pair's shared IPv6 default router on each tier
# createRedundantRouterArgs for a VPC: the VPC id, the password from its uuid.
CLOUDSTACK_KEYS = {"router_id": "4711", "router_password": "93871234567"}


class LabError(RuntimeError):
    """Something in the lab failed; the message says what and where to look."""


def wait_for(check: Callable[[], bool], timeout: float, what: str,
             interval: float = 0.1) -> None:
    """netns.wait_for, failing with a LabError (what the CLI reports) instead."""
    try:
        netns.wait_for(check, timeout, what, interval)
    except AssertionError as exc:
        raise LabError(str(exc)) from None


def run(argv: list[str], check: bool = True, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed (exit {proc.returncode}): "
                       f"{(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc


@dataclass
class Lab:
    topology: str = "redundant-vpc"
    mode: str = "sync-link"  # or "cloudstack": only what a management server sends
    advert_int: float = 1.0
    project: str = PROJECT
    image: str = "vragent-router:latest"
    workdir: Path = field(default_factory=lambda: Path("results"))
    _receiver: subprocess.Popen[bytes] | None = None

    @property
    def compose_file(self) -> Path:
        return COMPOSE_DIR / f"{self.topology}.yml"

    @property
    def routers(self) -> tuple[str, ...]:
        return ROUTERS if self.topology == "redundant-vpc" else ("r1",)

    @property
    def reports_file(self) -> Path:
        return self.workdir / "reports.jsonl"

    def netns(self, service: str) -> str:
        """The named network namespace of a lab container (for ``ip netns exec``)."""
        return f"{self.project}-{service}"

    # -- docker ------------------------------------------------------------------
    def client(self) -> docker.DockerClient:
        return docker.from_env()

    def container(self, service: str) -> Container:
        found = self.client().containers.list(all=True, filters={"label": [
            f"com.docker.compose.project={self.project}",
            f"com.docker.compose.service={service}"]})
        if not found:
            raise LabError(f"no container for {service} in project {self.project} "
                           f"(is the lab up? `vragent-lab up`)")
        return found[0]

    def compose(self, *args: str, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
        """docker-compose on the lab's project; ``env`` overrides what the
        compose file is rendered with (an upgrade's image, a router's own
        boot parameters)."""
        return run(["docker-compose", "-p", self.project, "-f", str(self.compose_file),
                    *args], env={**os.environ, **self.compose_env(), **(env or {})})

    def compose_env(self) -> dict[str, str]:
        """What the compose file is rendered with: image, boot parameters, bridge
        names, and what the lab is brought up as (labels on the routers)."""
        return {"VRAGENT_IMAGE": self.image, "VRLAB_BRIDGES": self.project,
                **{f"VRLAB_{r.upper()}_CMDLINE": self.cmdline(r) for r in ROUTERS},
                **Options(self.topology, self.mode, self.advert_int).labels()}

    def router_labels(self) -> dict[str, dict[str, str]]:
        """The labels of this project's routers, running or not (see recorded.py)."""
        try:
            found = self.client().containers.list(all=True, filters={
                "label": f"com.docker.compose.project={self.project}"})
        except docker.errors.DockerException as exc:
            raise LabError(f"cannot ask docker about the lab: {exc}") from None
        return {str(c.labels.get("com.docker.compose.service")): dict(c.labels)
                for c in found if c.labels.get("com.docker.compose.service") in ROUTERS}

    def exec(self, service: str, *argv: str, check: bool = True) -> str:
        result = self.container(service).exec_run(list(argv))
        out = str(result.output.decode(errors="replace"))
        if check and result.exit_code != 0:
            name = self.container(service).name
            raise LabError(f"{service}: {' '.join(argv)} failed (exit {result.exit_code}): "
                           f"{out.strip()[-800:]}\n(logs: docker exec {name} "
                           "cat /var/log/vragent/agent.log)")
        return out

    # -- what a management server sends -----------------------------------------------
    def cmdline(self, router: str) -> str:
        """The kernel command line CloudStack would boot this router with."""
        n = ROUTERS.index(router) + 1 if router in ROUTERS else 1
        params = {"type": "vpcrouter", "name": f"r-{n}-VM", "template": "domP",
                  "eth0ip": f"{CONTROL_NET}.1{n}", "eth0mask": "255.255.255.0",
                  "vpccidr": "10.10.0.0/16", "domain": "vpc.lab", "dns1": OUTSIDE,
                  "report_url": f"http://{MGMT}:{MGMT_PORT}/vrouter/state"}
        if self.topology == "redundant-vpc":
            params.update({"redundant_router": "1", "advert_int": f"{self.advert_int:g}"})
            if self.mode == "cloudstack":
                params.update(CLOUDSTACK_KEYS)
            else:
                peer = 3 - n
                params.update({"router_id": "51", "sync_dev": "eth4",
                               "eth4ip": f"{SYNC_NET}.{n}", "eth4mask": "255.255.255.0",
                               "sync_peer": f"{SYNC_NET}.{peer}"})
        return " ".join(f"{k}={v}" for k, v in params.items())

    def mac(self, service: str, ifname: str) -> str:
        links = json.loads(self.exec(service, "ip", "-json", "link", "show", ifname))
        return str(links[0]["address"])

    def apply(self, router: str, *bags: dict[str, Any]) -> str:
        """Send bags as a management server does (AbstractConfigItemFacade): a
        one-line file named ``<name>.json.<uuid>`` in the cache directory,
        then ``/opt/cloud/bin/update_config.py`` on it."""
        out = []
        for bag in bags:
            data = json.dumps(bag, separators=(",", ":")).encode()
            name = f"{bag['type']}.json.{uuid.uuid4()}"
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / name
                path.write_bytes(data)
                run(["docker", "cp", str(path),
                     f"{self.container(router).name}:/var/cache/cloud/{name}"])
            out.append(self.exec(router, "/opt/cloud/bin/update_config.py", name))
        return "".join(out)

    def status(self, router: str) -> str:
        try:
            text = self.exec(router, "/opt/cloud/bin/checkrouter.sh", check=False).strip()
        except (LabError, docker.errors.APIError):
            return "DOWN"
        return text.removeprefix("Status: ") or "UNKNOWN"

    def statuses(self) -> dict[str, str]:
        return {r: self.status(r) for r in self.routers}

    def master(self) -> str | None:
        found = [r for r, s in self.statuses().items() if s == "PRIMARY"]
        return found[0] if len(found) == 1 else None

    def wait_one_master(self, timeout: float = 30.0) -> str:
        if len(self.routers) == 1:
            return self.routers[0]
        seen: dict[str, str] = {}

        def one() -> bool:
            # The master is taken from the very reading that showed one: a
            # second reading may fall in the middle of a transition.
            seen.clear()
            seen.update(self.statuses())
            return sorted(seen.values()) == ["BACKUP", "PRIMARY"]

        wait_for(one, timeout, "exactly one PRIMARY and one BACKUP (look at: docker exec "
                 f"{self.project}_r1_1 cat /var/log/vragent/keepalived.log)")
        return next(r for r, status in seen.items() if status == "PRIMARY")

    def converged(self) -> bool:
        """Every router's keepalived runs the configuration its agent last wrote."""
        for r in self.routers:
            if self.container(r).exec_run(["test", "-e", "/etc/vragent/keepalived.conf"]
                                          ).exit_code != 0:
                continue  # not one of a pair: no keepalived
            loaded = self.exec(r, "cat", "/run/vragent/keepalived.loaded", check=False)
            conf = self.exec(r, "sha256sum", "/etc/vragent/keepalived.conf", check=False)
            if not conf.startswith((loaded.split() or ["-"])[0]):
                return False
        return True

    # -- lifecycle ---------------------------------------------------------------------
    def up(self) -> None:
        self.down(quiet=True)
        self.compose("up", "-d")
        self.adopt()

    def adopt(self) -> None:
        """Make running containers a lab: namespace handles, bridged traffic, VM
        routes, the management server's receiver."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.attach_namespaces()
        self.allow_bridged(True)
        for net, vm in TIERS.values():
            run(["ip", "netns", "exec", self.netns(vm), "ip", "route", "replace", "default",
                 "via", f"{net}.1"])
        run(["ip", "netns", "exec", self.netns("outside"), "ip", "address", "replace",
             f"{OUTSIDE_FAR}/32", "dev", "lo"])
        self.start_receiver()
        wait_for(lambda: all(self.status(r) != "DOWN" for r in self.routers), 30,
                 "the routers' agents to answer")

    def attach_namespaces(self) -> None:
        for service in (*self.routers, *HOSTS):
            pid = self.container(service).attrs["State"]["Pid"]
            run(["ip", "netns", "delete", self.netns(service)], check=False)
            run(["ip", "netns", "attach", self.netns(service), str(pid)])

    def bridges(self) -> list[str]:
        found = []
        for label in ("com.docker.compose.project", "org.vragent.lab.project"):
            for n in self.client().networks.list(filters={"label": f"{label}={self.project}"}):
                found.append(str(n.attrs["Options"].get("com.docker.network.bridge.name", "")))
        return found

    def allow_bridged(self, on: bool) -> None:
        """Let frames cross a lab bridge between its own ports.

        br_netfilter passes bridged frames through the host's FORWARD chain,
        where docker's isolation rules for internal networks drop anything
        addressed outside the network's subnet: every packet a router routes
        (a VM's traffic to the outside crosses the tier's bridge with an
        outside destination) and every multicast frame (VRRP, conntrackd).
        One ACCEPT per lab bridge, in and out on that same bridge, so nothing
        is let through to any other interface, the uplink included. (Creating
        a docker network deletes and re-inserts docker's jump to DOCKER-USER:
        frames crossing in that instant are dropped, so the lab creates a
        tier's network before it matters; see ``create_tier``.)"""
        for bridge in filter(None, self.bridges()):
            rule = ["DOCKER-USER", "-i", bridge, "-o", bridge, "-m", "comment", "--comment",
                    f"vragent lab {self.project}", "-j", "ACCEPT"]
            present = run(["iptables", "-C", *rule], check=False).returncode == 0
            if on and not present:
                run(["iptables", "-I", *rule])
            elif not on and present:
                run(["iptables", "-D", *rule])

    def start_receiver(self) -> None:
        self.reports_file.unlink(missing_ok=True)
        self._receiver = subprocess.Popen(
            [sys.executable, "-m", "vragent_lab.receiver", "--bind", MGMT, "--port",
             str(MGMT_PORT), "--out", str(self.reports_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def stop_receiver(self) -> None:
        if self._receiver is not None:
            self._receiver.kill()
            self._receiver.wait()
            self._receiver = None
        # A receiver left by an earlier run of the lab (its own port, its own address).
        for pid in run(["pgrep", "-f", f"vragent_lab.receiver --bind {MGMT} --port {MGMT_PORT}"],
                       check=False).stdout.split():
            run(["kill", pid], check=False)

    def reports(self) -> list[dict[str, Any]]:
        if not self.reports_file.exists():
            return []
        return [json.loads(line) for line in self.reports_file.read_text().splitlines()
                if line.strip()]

    def release(self, quiet: bool = False) -> None:
        """Undo ``adopt``: what the lab added around its containers."""
        self.stop_receiver()
        try:
            self.allow_bridged(False)
        except (LabError, docker.errors.DockerException):
            if not quiet:
                raise
        for service in (*ROUTERS, *HOSTS, *self.extra_hosts()):
            run(["ip", "netns", "delete", self.netns(service)], check=False)

    def down(self, quiet: bool = False) -> None:
        self.release(quiet)
        self.remove_extra_tiers()
        run(["docker-compose", "-p", self.project, "-f", str(self.compose_file), "down",
             "--volumes", "--remove-orphans", "--timeout", "5"], check=False,
            env={**os.environ, **self.compose_env()})

    # -- tiers added at run time ---------------------------------------------------------
    def extra_hosts(self) -> list[str]:
        return [str(c.labels.get("org.vragent.lab.service")) for c in self.client().containers
                .list(all=True, filters={"label": f"org.vragent.lab.project={self.project}"})]

    def create_tier(self, number: int) -> None:
        """A new guest network (10.10.N.0/24), not yet attached to anything."""
        net = f"10.10.{number}"
        self.client().networks.create(
            f"{self.project}_tier{number}", driver="bridge", internal=True,
            labels={"org.vragent.lab.project": self.project},
            options={"com.docker.network.bridge.name": f"{self.project}-t{number}"},
            ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
                subnet=f"{net}.0/24", gateway=f"{net}.254")]))
        self.allow_bridged(True)

    def add_tier(self, number: int) -> tuple[str, str]:
        """Tier N connected to every router (a hot-plugged NIC), with a VM on it.

        Returns (the routers' NIC name for it, the VM's service name)."""
        client = self.client()
        net = f"10.10.{number}"
        labels = {"org.vragent.lab.project": self.project}
        found = client.networks.list(names=[f"{self.project}_tier{number}"])
        if not found:
            self.create_tier(number)
            found = client.networks.list(names=[f"{self.project}_tier{number}"])
        network = found[0]
        names: dict[str, set[str]] = {}
        for i, r in enumerate(self.routers):
            old = {link["ifname"] for link in json.loads(self.exec(r, "ip", "-json", "link"))}
            network.connect(self.container(r), ipv4_address=f"{net}.{2 + i}")
            new = {link["ifname"] for link in json.loads(self.exec(r, "ip", "-json", "link"))}
            names[r] = new - old
        vm = f"vm{number}"
        api = client.api
        created = api.create_container(
            self.image, entrypoint=["sleep", "infinity"], name=f"{self.project}_{vm}",
            labels={**labels, "org.vragent.lab.service": vm},
            host_config=api.create_host_config(cap_add=["NET_ADMIN"], network_mode=network.name),
            networking_config=api.create_networking_config({network.name: api
                .create_endpoint_config(ipv4_address=f"{net}.10")}))
        api.start(created["Id"])
        pid = self.container_of(vm).attrs["State"]["Pid"]
        run(["ip", "netns", "attach", self.netns(vm), str(pid)])
        run(["ip", "netns", "exec", self.netns(vm), "ip", "route", "replace", "default", "via",
             f"{net}.1"])
        (ifname,) = names[self.routers[0]]
        return ifname.split("@")[0], vm

    def container_of(self, service: str) -> Container:
        found = self.client().containers.list(all=True, filters={"label": [
            f"org.vragent.lab.project={self.project}", f"org.vragent.lab.service={service}"]})
        return found[0] if found else self.container(service)

    def remove_extra_tiers(self) -> None:
        client = self.client()
        flt = {"label": f"org.vragent.lab.project={self.project}"}
        for c in client.containers.list(all=True, filters=flt):
            c.remove(force=True, v=True)  # and its anonymous volumes (the image declares one)
        for n in client.networks.list(filters=flt):
            n.reload()
            for c in n.containers:
                n.disconnect(c, force=True)
            n.remove()


def host_end(lab: Lab, service: str, ifname: str) -> str:
    """The host's end of a container NIC (its veth peer on the lab bridge)."""
    index = int(lab.exec(service, "cat", f"/sys/class/net/{ifname}/iflink").strip())
    for link in json.loads(run(["ip", "-json", "link", "show"]).stdout):
        if link.get("ifindex") == index:
            return str(link["ifname"])
    raise LabError(f"no host interface with index {index} for {service}'s {ifname}")


def partition(lab: Lab, ifname: str, cut: bool) -> None:
    """Cut (or heal) the link between the routers on NIC ``ifname`` in the
    bridge, as a failing switch would: both keep their NIC and its carrier."""
    for r in lab.routers:
        run(["bridge", "link", "set", "dev", host_end(lab, r, ifname), "isolated",
             "on" if cut else "off"])
