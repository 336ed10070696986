"""A standalone sample-VPC router running as an appliance does: supervisord,
the resident agent and the daemons it starts, with the VMs' DHCP entries,
metadata and a password applied."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from vragent_lab.netns import in_ns, sh, wait_for
from vragent_lab.pair import agent_log, start_supervisord, supervisorctl

from ..harness import ALL_BAGS, Router, vpc_lab

REPO = Path(__file__).resolve().parents[3]
SAMPLE_DIR = REPO / "compose/vragent_lab/sample"
SERVICE_BAGS = ["vm_dhcp_entry_vm1.json", "vm_dhcp_entry_vm2.json", "vm_metadata_vm1.json",
                "vm_metadata_vm2.json", "vm_password_vm1.json"]


class Appliance:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.supervisord: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Power the router on, and wait until its agent has booted it."""
        self.supervisord = start_supervisord(self.router.ns, self.router.root)
        wait_for(lambda: (self.router.root / "run/vragent/booted").exists(), 20,
                 "the agent to boot the router")

    def supervisorctl(self, *args: str) -> str:
        return supervisorctl(self.router.root, *args)

    def running(self, name: str) -> bool:
        return " RUNNING " in self.supervisorctl("status", name)

    def pid(self, name: str) -> int:
        out = self.supervisorctl("pid", name).strip()
        return int(out) if out.isdigit() else 0

    def agent_log(self) -> str:
        return agent_log(self.router.root)

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


UDHCPC_SCRIPT = """#!/bin/sh
# udhcpc's hook: record what the server offered, then configure the address.
case "$1" in
  bound|renew)
    env | grep -E '^(ip|mask|subnet|router|dns|domain|hostname|serverid|lease|staticroutes)=' \\
      | sort > "$UDHCPC_OUT"
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    ;;
esac
exit 0
"""


def udhcpc(ns: str, tmp: Path, requested: str | None = None, tries: int = 3,
           options: tuple[str, ...] = ()) -> dict[str, str] | None:
    """One DHCP exchange (busybox udhcpc) from ``ns``'s eth0: what the server
    offered (udhcpc's variables), or None when nothing answered."""
    script = tmp / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    out = tmp / f"lease-{ns}"
    out.unlink(missing_ok=True)
    argv = ["ip", "netns", "exec", ns, "env", f"UDHCPC_OUT={out}", "busybox", "udhcpc",
            "-i", "eth0", "-f", "-q", "-n", "-t", str(tries), "-T", "1", "-A", "1",
            "-s", str(script)]
    for option in options:
        argv += ["-O", option]
    if requested:
        argv += ["-r", requested]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    if proc.returncode != 0 or not out.exists():
        return None
    return dict(line.split("=", 1) for line in out.read_text().splitlines())


def vm_ns(router: Router, vm: str) -> str:
    return f"{router.lab.prefix}{vm}"


def in_vm(router: Router, vm: str, argv: list[str], check: bool = True) -> str:
    return in_ns(vm_ns(router, vm), argv, check=check)
