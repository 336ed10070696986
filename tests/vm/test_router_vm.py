"""One router as a CloudStack KVM system VM, under QEMU (TCG).

Driven as a KVM host and a management server drive it (apache/cloudstack):
the boot parameters through the guest agent (scripts/vm/hypervisor/kvm/patch.sh),
ssh on port 3922 with the key passed as ``authorized_key`` (setup/common.sh),
``get_template_version.sh`` first (VirtualRoutingResource GetDomRVersionCmd),
bags copied by scp into /var/cache/cloud and applied with
``update_config.py`` (merge.py), ``checkrouter.sh``. Then packets from the
host side (the namespaces of each NIC) show the configuration in force, and
again after the VM is powered off hard and started on the same disk, with no
bag sent again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..integration.harness import connect, server
from .conftest import attach_serial_logs
from .harness import REPO, Keypair, Nic, Segment, Segments, Vm, cmdline_text, wait_for

SAMPLE = REPO / "compose/vragent_lab/sample"

CONTROL_IP = "169.254.0.10"
# The sample VPC (compose/vragent_lab/sample): the public NIC's MAC is the
# ips bag's vif_mac_address, the tier's the guestnetwork bag's mac_address.
PUBLIC_MAC = "02:00:0a:00:00:01"
TIER_MAC = "02:00:0a:00:00:02"
BAGS = ["ip_associations.json", "guest_network_tier1.json", "network_acl_tier1.json",
        "forwarding_rules.json"]


def boot_parameters() -> dict[str, str]:
    params: dict[str, str] = json.loads((SAMPLE / "cmd_line.json").read_text())["cmd_line"]
    assert params["eth0ip"] == CONTROL_IP
    return params


@dataclass
class RouterVm:
    vm: Vm
    ctl: Segment
    pub: Segment
    tier: Segment
    key: Keypair


@pytest.fixture
def router_vm(systemvm_image: Path, prefix: str, tmp_path: Path,
              request: pytest.FixtureRequest) -> Iterator[RouterVm]:
    key = Keypair.create(tmp_path / "id_rsa.cloud")
    with Segments() as segs:
        ctl = segs.add(f"{prefix}ctl", ["169.254.0.1/16"])
        # The public network's gateway, and an outside host.
        pub = segs.add(f"{prefix}pub", ["100.64.10.1/24"])
        # A VM on the tier, routed through the router.
        tier = segs.add(f"{prefix}tier", ["10.10.1.10/24"], gateway="10.10.1.1")
        vm = Vm("r1", tmp_path / "r1", systemvm_image, prefix, key,
                [Nic(ctl, "0e:00:a9:fe:00:0a"), Nic(pub, PUBLIC_MAC), Nic(tier, TIER_MAC)])
        try:
            yield RouterVm(vm, ctl, pub, tier, key)
        finally:
            attach_serial_logs(request, [vm])
            vm.close()


def boot(r: RouterVm, timings: dict[str, float], label: str) -> None:
    started = time.monotonic()
    r.vm.start()
    timings[f"{label}: guest agent took the parameters"] = r.vm.write_cmdline(
        cmdline_text(boot_parameters(), r.key))
    timings[f"{label}: ssh"] = r.vm.wait_ssh(CONTROL_IP)
    # The management server's first command after a start: it waits for the boot.
    answer = r.vm.ssh("/opt/cloud/bin/get_template_version.sh").stdout.strip()
    timings[f"{label}: get_template_version.sh"] = time.monotonic() - started
    manifest = json.loads(r.vm.base.with_suffix(".manifest.json").read_text())
    release, _, signature = answer.partition("&")
    assert release.startswith(f"Cloudstack Release vragent-{manifest['agent_version']} "), answer
    assert signature == manifest["scripts_signature"], answer


def in_force(r: RouterVm) -> dict[str, Any]:
    """What the host side sees of the sample configuration."""
    seen: dict[str, Any] = {}
    # The tier gateway answers its VM.
    seen["tier gateway"] = r.tier.ping("10.10.1.1", count=2)
    # Port forwarding: the outside reaches the VM's port 22 at 100.64.10.11:2222,
    # and the VM sees the outside client's own address.
    with server(r.tier.ns, 22):
        seen["port forward"] = connect(r.pub.ns, "100.64.10.11", 2222, timeout=5)
    # Source NAT: the VM reaches the outside as the source-NAT address.
    with server(r.pub.ns, 8080):
        seen["source nat"] = connect(r.tier.ns, "100.64.10.1", 8080, timeout=5)
    return seen


def assert_checkrouter(vm: Vm) -> None:
    """checkrouter.sh answers as CheckRouterAnswer.parseDetails reads it, with
    the resident agent's own state (a standalone router has no election: UNKNOWN)."""
    line = vm.ssh("/opt/cloud/bin/checkrouter.sh").stdout
    state = json.loads(vm.ssh("/opt/vragent/bin/vragent", "state", "--json").stdout)
    assert state["agent_alive"], state
    assert line == f"Status: {state['status']}\n", (line, state)


EXPECTED = {"tier gateway": True, "port forward": "100.64.10.1", "source nat": "100.64.10.10"}


def test_router_vm_boots_as_cloudstack_drives_it_and_keeps_its_configuration(
        router_vm: RouterVm) -> None:
    r = router_vm
    timings: dict[str, float] = {}
    boot(r, timings, "first boot")
    vm = r.vm

    # sshd: the control address only, keys only; Debian's own units for
    # what supervisord runs are masked.
    listening = vm.ssh("ss", "-Htln", "sport = :3922").stdout.split()
    assert f"{CONTROL_IP}:3922" in listening and "0.0.0.0:3922" not in listening, listening
    assert "PasswordAuthentication no" in vm.ssh("sshd", "-T").stdout.replace(
        "passwordauthentication", "PasswordAuthentication")
    for unit in ("keepalived", "conntrackd", "haproxy", "strongswan", "supervisor", "xl2tpd"):
        state = vm.ssh("systemctl", "is-enabled", unit, check=False).stdout.strip()
        assert state == "masked", (unit, state)
    assert vm.ssh("hostname").stdout.strip() == boot_parameters()["name"]
    # The build's unsafe dpkg I/O stayed out of the image's dpkg configuration.
    assert "force-unsafe-io" not in vm.ssh("cat", "/etc/dpkg/dpkg.cfg.d/99mmdebstrap").stdout

    # Nothing configured yet: the tier is not there.
    assert not r.tier.ping("10.10.1.1")
    started = time.monotonic()
    for name in BAGS:
        bag = json.loads((SAMPLE / name).read_text())
        result = vm.apply_bag(bag, name.removesuffix(".json").replace("_", ""))
        assert result.returncode == 0, result.stderr
    timings["four bags by scp + update_config.py"] = time.monotonic() - started
    assert_checkrouter(vm)
    wait_for(lambda: r.tier.ping("10.10.1.1"), 30, "the tier gateway to answer")
    assert in_force(r) == EXPECTED
    processed = vm.ssh("ls", "/var/cache/cloud/processed").stdout.split()
    revisions = vm.ssh("/opt/vragent/bin/vragent", "history").stdout.splitlines()

    # Power pulled, then the same disk started again, as a KVM host starts a
    # stopped router: the parameters again, no bag.
    vm.quit()
    assert not r.tier.ping("10.10.1.1", wait=1)
    boot(r, timings, "restart")
    wait_for(lambda: r.tier.ping("10.10.1.1"), 30, "the tier gateway after the restart")
    assert in_force(r) == EXPECTED
    assert_checkrouter(vm)
    # No bag came: nothing new was processed, and the only new revision (if
    # any) is the boot parameters'.
    assert vm.ssh("ls", "/var/cache/cloud/processed").stdout.split() == processed
    after = vm.ssh("/opt/vragent/bin/vragent", "history").stdout.splitlines()
    assert after[:len(revisions)] == revisions
    assert all("boot parameters" in line for line in after[len(revisions):]), after
    timings["clean shutdown"] = vm.shutdown()
    print("\nsystem VM timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
