"""A standalone sample-VPC router running as an appliance does: supervisord,
the resident agent and the daemons it starts, with the VMs' DHCP entries,
metadata and a password applied."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from vragent_lab.netns import in_ns, sh, wait_for

from ..harness import ALL_BAGS, Router, vpc_lab

REPO = Path(__file__).resolve().parents[3]
SUPERVISORD_CONF = REPO / "services/supervisord.conf"
SAMPLE_DIR = REPO / "compose/vragent_lab/sample"
SERVICE_BAGS = ["vm_dhcp_entry_vm1.json", "vm_dhcp_entry_vm2.json", "vm_metadata_vm1.json",
                "vm_metadata_vm2.json", "vm_password_vm1.json"]


class Appliance:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.supervisord: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        root = self.router.root
        bindir = str(Path(sys.executable).parent)
        env_path = f"{bindir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for sub in ("run/vragent", "var/log/vragent"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        log = (root / "var/log/vragent/supervisord.out").open("ab")
        self.supervisord = subprocess.Popen(
            ["ip", "netns", "exec", self.router.ns, "env", f"VRAGENT_ROOT={root}",
             f"PATH={env_path}", f"{bindir}/supervisord", "-c", str(SUPERVISORD_CONF)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def supervisorctl(self, *args: str) -> str:
        bindir = Path(sys.executable).parent
        proc = subprocess.run(
            [str(bindir / "supervisorctl"), "-s",
             f"unix://{self.router.root}/run/vragent/supervisor.sock", *args],
            capture_output=True, text=True, check=False)
        return proc.stdout + proc.stderr

    def running(self, name: str) -> bool:
        return " RUNNING " in self.supervisorctl("status", name)

    def pid(self, name: str) -> int:
        out = self.supervisorctl("pid", name).strip()
        return int(out) if out.isdigit() else 0

    def loaded(self, name: str) -> str:
        path = self.router.root / f"run/vragent/{name}.loaded"
        return path.read_text() if path.exists() else ""

    def agent_log(self) -> str:
        path = self.router.root / "var/log/vragent/agent.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        for pid in sh(["ip", "netns", "pids", self.router.ns], check=False).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.supervisord is not None:
            self.supervisord.wait()


@pytest.fixture
def appliance(tmp_path: Path) -> Iterator[Appliance]:
    with vpc_lab(tmp_path) as router:
        app = Appliance(router)
        try:
            app.start()
            wait_for(lambda: (router.root / "run/vragent/booted").exists(), 20,
                     "the agent to boot the router")
            router.apply(*ALL_BAGS, *SERVICE_BAGS)
            wait_for(lambda: app.running("dnsmasq") and app.running("metadata"), 20,
                     "dnsmasq and the metadata service to run")
            for vm, gw in (("vm1", "10.10.1.1"), ("vm2", "10.10.2.1")):
                wait_for(lambda vm=vm, gw=gw: in_vm(router, vm, [  # type: ignore[misc]
                    "dig", f"@{gw}", "data-server", "+short", "+time=1", "+tries=1"],
                    check=False).strip() == gw, 10, f"dnsmasq to answer on {gw}")
                wait_for(lambda vm=vm, gw=gw: in_vm(router, vm, [  # type: ignore[misc]
                    "curl", "-s", "-m", "1", "-o", "/dev/null", "-w", "%{http_code}",
                    f"http://{gw}/latest/"], check=False).strip() == "200", 10,
                    f"the metadata service to answer on {gw}")
            yield app
        finally:
            app.stop()


def vm_ns(router: Router, vm: str) -> str:
    return f"{router.lab.prefix}{vm}"


def in_vm(router: Router, vm: str, argv: list[str], check: bool = True) -> str:
    return in_ns(vm_ns(router, vm), argv, check=check)
