"""The system VM's boot steps (vragent/systemvm.py) and get_template_version.sh,
on a temporary root: which parameters win (cloud-early-config's get_boot_params),
what common.sh's parse_cmd_line makes of them (cmd_line.json, the authorized
key), sshd's listening address, and bad input changing nothing.
(The whole boot, in a VM under QEMU: tests/vm/test_router_vm.py.)"""

from __future__ import annotations

import base64
import json
import stat
import time
from pathlib import Path

import pytest
from vragent import cloudstack, systemvm
from vragent.settings import Settings

KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 mgmt@cloudstack\n"
B64 = base64.b64encode(KEY.encode()).decode()
VPC = f"type=vpcrouter name=r-7-VM eth0ip=169.254.3.4 eth0mask=255.255.0.0 authorized_key={B64}"


@pytest.fixture
def root(tmp_path: Path) -> tuple[Settings, systemvm.Paths, list[tuple[Path, str]]]:
    return Settings(root=tmp_path), systemvm.Paths(tmp_path), []


def run_early(root: tuple[Settings, systemvm.Paths, list[tuple[Path, str]]],
              proc: str = "BOOT_IMAGE=/boot/vmlinuz ro quiet", wait: float = 0) -> int:
    settings, paths, names = root
    proc_file = settings.root / "proc-cmdline"
    proc_file.write_text(proc)
    return systemvm.early(settings, paths, wait=wait, proc_cmdline=proc_file,
                          sethostname=lambda path, name: names.append((path, name)))


def cmd_line(settings: Settings) -> dict[str, str]:
    data: dict[str, str] = json.loads(settings.cmdline_file.read_text())["cmd_line"]
    return data


def test_the_hosts_parameters_win_over_the_kernel_and_the_previous_boot() -> None:
    assert systemvm.choose_parameters("type=vpcrouter a=1", "type=router", "old=1") == (
        "type=vpcrouter a=1", "host")
    assert systemvm.choose_parameters("", "ro type=router", "old=1") == (
        "ro type=router", "kernel command line")
    # A kernel command line naming no router is the boot loader's, not CloudStack's.
    assert systemvm.choose_parameters("  \n", "ro quiet", "type=vpcrouter") == (
        "type=vpcrouter", "previous boot")
    assert systemvm.choose_parameters("", "ro quiet", "") == ("", "none")


def test_authorized_key_is_decoded_with_or_without_its_padding() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 x\n"
    padded = base64.b64encode(key.encode()).decode()
    assert padded.endswith("=")
    assert systemvm.decode_authorized_key(padded) == key
    # setup/common.sh cuts a word at its second '=': the padding never arrives.
    assert systemvm.decode_authorized_key(padded.rstrip("=")) == key
    for bad in ("not base64!", base64.b64encode(b"\x00\x01binary").decode(),
                base64.b64encode(b"onewordonly").decode(), ""):
        with pytest.raises(ValueError, match="authorized_key"):
            systemvm.decode_authorized_key(bad)


def test_sshd_listens_on_the_control_address_of_each_router_type() -> None:
    vpc = {"type": "vpcrouter", "eth0ip": "169.254.3.4", "eth0mask": "255.255.0.0"}
    assert systemvm.listen_config(vpc) is not None
    assert "ListenAddress 169.254.3.4\n" in str(systemvm.listen_config(vpc))
    # An isolated router's eth0 is its guest network, eth2 public: control is eth1.
    isolated = {"type": "router", "eth0ip": "10.1.1.1", "eth0mask": "255.255.255.0",
                "eth1ip": "169.254.9.9", "eth1mask": "255.255.0.0",
                "eth2ip": "100.64.1.5", "eth2mask": "255.255.255.0"}
    text = str(systemvm.listen_config(isolated))
    assert "ListenAddress 169.254.9.9\n" in text
    assert "10.1.1.1" not in text and "100.64.1.5" not in text
    assert systemvm.listen_config({"type": "vpcrouter"}) is None


def test_early_makes_cmd_line_json_the_key_the_name_and_sshds_address(
        root: tuple[Settings, systemvm.Paths, list[tuple[Path, str]]]) -> None:
    settings, paths, names = root
    settings.cache_dir.mkdir(parents=True)
    settings.boot_up_done.write_text("yesterday\n")
    settings.boot_cmdline.write_text(VPC + "\n")  # what patch.sh writes
    assert run_early(root) == 0
    params = cmd_line(settings)
    assert params["type"] == "vpcrouter" and params["authorized_key"] == B64
    assert paths.authorized_keys.read_text() == KEY
    assert stat.S_IMODE(paths.authorized_keys.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.authorized_keys.parent.stat().st_mode) == 0o700
    assert names == [(paths.hostname, "r-7-VM")]
    assert "ListenAddress 169.254.3.4\n" in paths.sshd_listen.read_text()
    # A new boot: not done until postinit says so (cloud-early-config).
    assert not settings.boot_up_done.exists()


def test_early_waits_for_the_host_only_where_a_guest_agent_channel_exists(
        root: tuple[Settings, systemvm.Paths, list[tuple[Path, str]]]) -> None:
    settings, paths, _ = root
    settings.cache_dir.mkdir(parents=True)
    paths.guest_agent_port.parent.mkdir(parents=True)
    paths.guest_agent_port.touch()
    old = settings.boot_cmdline.with_name("cmdline.old")
    old.write_text(VPC.replace("r-7-VM", "r-old-VM"))
    started = time.monotonic()
    assert run_early(root, wait=0.6) == 0
    # Nothing came from the host within the deadline: the previous boot's.
    assert time.monotonic() - started >= 0.6
    assert cmd_line(settings)["name"] == "r-old-VM"
    assert settings.boot_cmdline.read_text().startswith("type=vpcrouter name=r-old-VM")
    assert not old.exists()
    paths.guest_agent_port.unlink()
    settings.boot_cmdline.unlink()
    started = time.monotonic()
    run_early(root, proc=f"ro console=ttyS0 {VPC.replace('r-7-VM', 'r-xen-VM')}", wait=30)
    assert time.monotonic() - started < 10
    assert cmd_line(settings)["name"] == "r-xen-VM"


def test_bad_parameters_change_nothing(
        root: tuple[Settings, systemvm.Paths, list[tuple[Path, str]]],
        capsys: pytest.CaptureFixture[str]) -> None:
    settings, paths, names = root
    settings.cache_dir.mkdir(parents=True)
    settings.boot_cmdline.write_text(VPC)
    run_early(root)
    before = settings.cmdline_file.read_bytes()
    listen = paths.sshd_listen.read_text()
    settings.boot_cmdline.write_text(VPC.replace("169.254.3.4", "169.254.3.999"))
    assert run_early(root) == 0
    out = capsys.readouterr().out
    assert "eth0ip='169.254.3.999'" in out and "Traceback" not in out
    assert settings.cmdline_file.read_bytes() == before
    assert paths.sshd_listen.read_text() == listen
    # A key that is not one: the keys in place stay, the rest is applied.
    settings.boot_cmdline.write_text(VPC.replace(B64, "bm90IGEga2V5").replace("r-7", "r-8"))
    assert run_early(root) == 0
    assert "authorized_key: not base64 of an ssh public key" in capsys.readouterr().out
    assert paths.authorized_keys.read_text() == KEY
    assert cmd_line(settings)["name"] == "r-8-VM"
    assert names[-1] == (paths.hostname, "r-8-VM")


def test_get_template_version_waits_for_boot_up_done(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VRAGENT_ROOT", str(tmp_path))
    settings = Settings(root=tmp_path)
    settings.cache_dir.mkdir(parents=True)
    settings.release_file.parent.mkdir(parents=True)
    settings.release_file.write_text("Cloudstack Release vragent-0.1.0 Sat Dec  6 UTC 2025\n")
    settings.scripts_signature.write_text("0123456789abcdef0123456789abcdef\n")
    assert cloudstack.get_template_version([], wait=0.3) == 1
    assert capsys.readouterr().out == "Waited 0 seconds but boot up haven't been completed\n"
    settings.boot_up_done.write_text("now\n")
    assert cloudstack.get_template_version([], wait=0.3) == 0
    # What VirtualRoutingResource splits at '&' into template and scripts versions.
    assert capsys.readouterr().out == ("Cloudstack Release vragent-0.1.0 Sat Dec  6 UTC 2025"
                                       "&0123456789abcdef0123456789abcdef\n")
