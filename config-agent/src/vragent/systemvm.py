"""The system VM's own boot: how a CloudStack system VM comes up, with this agent.

Followed upstream (apache/cloudstack):

- ``scripts/vm/hypervisor/kvm/patch.sh``: a KVM host writes the boot
  parameters, one ``key=value ...`` line, to ``/var/cache/cloud/cmdline``
  through the qemu guest agent (guest-file-open/write/close on the
  virtio-serial channel ``org.qemu.guest_agent.0``), at every start.
- ``systemvm/debian/opt/cloud/bin/setup/cloud-early-config`` (get_boot_params,
  ``kvm``): an old cmdline is kept "as backup only"; the host's new one is
  waited for (60 s); without one the old one is used ("VM was perhaps
  rebooted"). On Xen PV the parameters are ``/proc/cmdline``.
- ``setup/common.sh`` (parse_cmd_line): every ``key=value`` into
  ``cmd_line.json``; ``authorized_key=`` is root's authorized keys in base64;
  ``name=`` the host name. ``setup_sshd`` made sshd listen on the control
  address only (``systemvm/debian/etc/ssh/sshd_config``: port 3922, keys only).
- ``setup/postinit.sh``: ``update_config.py cmd_line.json``, then ssh, then
  ``boot_up_done`` (what ``get_template_version.sh`` waits for).

Steps, each a systemd unit of the disk image (image/vm/rootfs):

- vragent-cmdline.service (a plain ``mv``, ordered before qemu-guest-agent,
  so the host cannot have written yet): the previous boot's cmdline becomes
  ``cmdline.old``.
- ``early`` (vragent-early.service, before vragent.service): the parameters
  (the host's, else ``/proc/cmdline`` when it names a router ``type``, else
  the previous boot's) become ``cmd_line.json`` through the same check as a
  container's (appliance.write_boot_parameters); the authorized key, the host
  name and sshd's listening addresses follow from them. Bad parameters
  change nothing: the router boots from what it had.
- ``postinit`` (vragent-postinit.service, after vragent.service, whose
  supervisord runs the agent and daemons as in a container): once the
  agent answers, ``update_config.py cmd_line.json`` (queued behind the
  agent's own boot, so it returns once the box is configured), then sshd
  on the control addresses, then ``boot_up_done``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .settings import Settings
from .store import atomic_write

# Each step is a process of its own at boot, on a CPU that may be emulated:
# each imports only what it uses (the models take seconds there).

# cloud-early-config waits this long for the host's parameters.
HOST_WAIT = 60.0
# The agent's API answers once its daemon runs (it listens before booting);
# python under an emulated CPU takes a while to get there.
AGENT_WAIT = 300.0
PROC_CMDLINE = Path("/proc/cmdline")


def log(message: str) -> None:
    print(f"vragent-systemvm: {message}", flush=True)


@dataclass(frozen=True)
class Paths:
    """Where the boot reads and writes, all under one root (tests use a temporary one)."""
    root: Path

    @property
    def authorized_keys(self) -> Path:
        return self.root / "root/.ssh/authorized_keys"

    @property
    def sshd_listen(self) -> Path:
        """sshd's listening addresses (sshd_config includes sshd_config.d/*.conf)."""
        return self.root / "etc/ssh/sshd_config.d/20-vragent-listen.conf"

    @property
    def hostname(self) -> Path:
        return self.root / "etc/hostname"

    @property
    def guest_agent_port(self) -> Path:
        return self.root / "dev/virtio-ports/org.qemu.guest_agent.0"


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# -- pure parts ---------------------------------------------------------------


def choose_parameters(new: str, proc: str, old: str) -> tuple[str, str]:
    """(text, where from): the host's new parameters, else a kernel command
    line that names a router ``type`` (Xen PV's way), else the previous boot's;
    ("", "none") when there are none."""
    from .appliance import parse_kernel_cmdline

    if new.strip():
        return new, "host"
    if "type" in parse_kernel_cmdline(proc):
        return proc, "kernel command line"
    if old.strip():
        return old, "previous boot"
    return "", "none"


def decode_authorized_key(value: str) -> str:
    """``authorized_key=``'s base64 as the authorized_keys text. Padding may be
    missing: common.sh cuts each word at its second '=', so CloudStack's
    routers get the key without it. Raises ValueError naming the field."""
    text = value.strip()
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        keys = raw.decode("ascii")
    except (binascii.Error, ValueError):
        raise ValueError("authorized_key: not base64 of an ssh public key") from None
    lines = [ln.strip() for ln in keys.splitlines() if ln.strip()]
    if not lines or not all(ln.isprintable() and _is_public_key(ln) for ln in lines):
        raise ValueError("authorized_key: not base64 of an ssh public key "
                         "(expected lines such as 'ssh-rsa AAAA... comment')")
    return "".join(f"{ln}\n" for ln in lines)


_KEY_TYPE = re.compile(r"(ssh-[a-z0-9-]+|ecdsa-sha2-nistp\d+|sk-[a-z0-9@.-]+)", re.ASCII)


def _is_public_key(line: str) -> bool:
    """An authorized_keys line: [options] <type> <base64 blob> [comment]."""
    words = line.split()
    for i, word in enumerate(words[:-1]):
        if _KEY_TYPE.fullmatch(word):
            try:
                base64.b64decode(words[i + 1], validate=True)
            except (binascii.Error, ValueError):
                return False
            return True
    return False


def listen_config(params: dict[str, str]) -> str | None:
    """sshd's ListenAddress lines for the control addresses; None without one."""
    from .models import CmdLine
    from .topology import boot_control

    try:
        control = boot_control(CmdLine(type="cmdline", cmd_line=params))
    except ValueError:
        return None
    if not control:
        return None
    addrs = [ip for _, (ip, _) in sorted(control.items(), key=lambda kv: int(kv[0][3:]))]
    return ("# Written at boot by vragent-systemvm early: the control address(es)\n"
            "# from the boot parameters (setup/common.sh setup_sshd).\n"
            + "".join(f"ListenAddress {ip}\n" for ip in addrs))


# -- the steps ----------------------------------------------------------------


def early(settings: Settings, paths: Paths, wait: float = HOST_WAIT,
          proc_cmdline: Path = PROC_CMDLINE,
          sethostname: Callable[[Path, str], None] | None = None) -> int:
    from .appliance import parse_kernel_cmdline, write_boot_parameters
    from .errors import BagError
    from .system import vmboot

    sethostname = sethostname or vmboot.set_hostname
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    settings.boot_up_done.unlink(missing_ok=True)
    path = settings.boot_cmdline
    old = path.with_name(path.name + ".old")
    new = _read(path)
    if not new.strip() and paths.guest_agent_port.exists():
        log(f"waiting up to {wait:.0f} s for the host's parameters in {path}")
        deadline = time.monotonic() + wait
        while not (new := _read(path)).strip() and time.monotonic() < deadline:
            time.sleep(0.2)
    text, source = choose_parameters(new, _read(proc_cmdline), _read(old))
    if source == "none":
        log("no boot parameters: booting from the stored configuration only")
        return 0
    log(f"boot parameters from the {source}")
    if source != "host":
        atomic_write(path, text.encode(), 0o600)
    old.unlink(missing_ok=True)
    try:
        write_boot_parameters(settings, text)
    except BagError as exc:
        # As in a container, nothing is written: the router boots from what it
        # had, and the error names the key.
        log(f"{path}: {exc}; cmd_line.json left as it was")
        return 0
    params = parse_kernel_cmdline(text)
    if "authorized_key" in params:
        try:
            vmboot.install_authorized_keys(paths.authorized_keys,
                                           decode_authorized_key(params["authorized_key"]))
            log(f"authorized key installed in {paths.authorized_keys}")
        except ValueError as exc:
            log(f"{exc}; {paths.authorized_keys} left as it was")
    name = params.get("name", "")
    if name:
        # The model checked it (a router name: letters, digits, '.', '_', '-').
        sethostname(paths.hostname, name)
    listen = listen_config(params)
    if listen is None:
        paths.sshd_listen.unlink(missing_ok=True)
        log("no control address in the boot parameters: sshd stays stopped")
    else:
        paths.sshd_listen.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(paths.sshd_listen, listen.encode(), 0o644)
    return 0


def postinit(settings: Settings, paths: Paths, wait: float = AGENT_WAIT) -> int:
    from .cli import main as cli
    from .cloudstack import boot_up_done
    from .system import vmboot

    deadline = time.monotonic() + wait
    while not settings.api_socket.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    started = time.monotonic()
    if settings.cmdline_file.exists():
        from .cloudstack import update_config

        code = update_config([settings.cmdline_file.name])
    else:
        code = cli(["boot"])
    log(f"boot: exit {code} in {time.monotonic() - started:.1f} s")
    if paths.sshd_listen.exists():
        vmboot.start_sshd()
        log("sshd started on the control address")
    boot_up_done(settings)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vragent-systemvm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("early", "postinit"))
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    paths = Paths(settings.root)
    try:
        if args.step == "early":
            return early(settings, paths)
        return postinit(settings, paths)
    except OSError as exc:
        log(f"{args.step}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
