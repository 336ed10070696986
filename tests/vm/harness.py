"""System VMs under QEMU (TCG), driven the way a CloudStack KVM host drives them.

The disk is ``make vm-image``'s qcow2 (image/vm.py); each VM boots from a
throwaway overlay of it (``qemu-img create -b base -F qcow2``), kept across
restarts of that VM. Nothing touches the machine's own network: every NIC is
a tap device in a network namespace the test creates (a ``Segment``: one
namespace with a bridge, ``br0``, that every tap on it joins, and the host
side's addresses on the bridge). Names carry the caller's prefix.

Upstream, followed here (apache/cloudstack):
- scripts/vm/hypervisor/kvm/patch.sh: the boot parameters go to
  /var/cache/cloud/cmdline through the qemu guest agent (guest-ping,
  guest-sync, guest-file-open "w+", guest-file-write of the base64 of
  ``echo <cmdline>``, guest-file-close) on the virtio-serial channel
  org.qemu.guest_agent.0;
- the management server logs in with ``ssh -p 3922 -i <key> root@<control
  address>`` and copies files with scp on that port
  (VirtualRoutingResource, SshHelper);
- the key it passes as ``authorized_key=`` is the base64 of its public key
  (setup/common.sh decodes it).

API (fixtures in conftest.py: ``systemvm_image``, the qcow2 brought up to
date once per session; ``prefix``, a name prefix of this process;
``attach_serial_logs(request, vms)`` in a fixture's finally prints each VM's
console when the test failed)::

    key = Keypair.create(tmp_path / "id_rsa.cloud")   # ssh-keygen, RSA as id_rsa.cloud
    with Segments() as segs:                          # every segment removed on exit
        ctl = segs.add(f"{prefix}ctl", ["169.254.0.1/16"])  # namespace + br0 + address
        tier = segs.add(f"{prefix}t1", ["10.10.1.10/24"], gateway="10.10.1.1")
        vm = Vm("r1", tmp_path / "r1", systemvm_image, prefix, key,
                [Nic(ctl, "0e:00:a9:fe:00:0a"), Nic(tier, mac)])  # eth0, eth1 ... in order
        vm.start()                                    # QEMU; the overlay on first start
        vm.write_cmdline(cmdline_text(params, key))   # as patch.sh; seconds since start
        vm.wait_ssh("169.254.0.10")                   # the control address; seconds since start
        vm.ssh("/opt/cloud/bin/checkrouter.sh")       # CompletedProcess (check=True by default)
        vm.scp(local_path, "/var/cache/cloud/x")      # on port 3922, from ctl's namespace
        vm.apply_bag(bag_dict, "ips")                 # scp as <name>.<uuid> + update_config.py
        tier.ping("10.10.1.1"); tier.run("curl", ...)  # the host side, in its namespace
        vm.quit()                                     # QMP quit: the power pulled
        vm.start(); vm.write_cmdline(...); vm.wait_ssh(...)  # the same disk again
        vm.shutdown()                                 # QMP system_powerdown; seconds to exit
        vm.serial_log(); vm.qmp("query-status")
        vm.close()                                    # always (a fixture's finally): ends QEMU

ssh uses one multiplexed connection per VM (a handshake costs an emulated CPU
a second or more). A running ``Vm`` holds a shared lock on its base disk, so
a build for a newer checkout (another session's) leaves that disk in place.
``in_netns(ns)`` runs a block in a namespace (a socket or tap opened there
stays there).
"""

from __future__ import annotations

import base64
import ctypes
import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / ".build/vm/vragent-systemvm.qcow2"
QEMU = "qemu-system-x86_64"
SSH_PORT = 3922
CACHE = "/var/cache/cloud"

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
_libc = ctypes.CDLL(None, use_errno=True)


class VmError(AssertionError):
    """A VM did not do what the test waited for (the message says what)."""


def sh(argv: list[str], check: bool = True, timeout: float = 60,
       input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout,
                          input=input)
    if check and proc.returncode != 0:
        raise VmError(f"{' '.join(argv)}: exit {proc.returncode}: "
                      f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc


def wait_for(check: Callable[[], bool], timeout: float, what: str,
             interval: float = 0.2) -> float:
    """Poll ``check`` until it holds; returns the seconds it took, or fails naming ``what``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise VmError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started


@contextmanager
def in_netns(ns: str) -> Iterator[None]:
    """This thread in namespace ``ns`` for a while: what it opens there (a
    tap, a socket) stays there."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)


# -- the host side -------------------------------------------------------------


@dataclass
class Segment:
    """A layer-2 segment on the host side: namespace ``ns`` with bridge br0
    (no bridge in the machine's own namespace), the host's ``addrs`` on it."""
    ns: str
    addrs: list[str]

    @classmethod
    def create(cls, ns: str, addrs: list[str], gateway: str | None = None) -> Segment:
        sh(["ip", "netns", "add", ns])
        seg = cls(ns, addrs)
        try:
            seg.ip("link", "set", "lo", "up")
            seg.ip("link", "add", "br0", "type", "bridge")
            # No IPv6 chatter from the host side (DAD, router solicitations).
            sh(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.br0.disable_ipv6=1"])
            seg.ip("link", "set", "br0", "up")
            for cidr in addrs:
                seg.ip("addr", "add", cidr, "dev", "br0")
            if gateway:
                seg.ip("route", "add", "default", "via", gateway)
        except Exception:
            seg.destroy()
            raise
        return seg

    def ip(self, *args: str) -> str:
        return sh(["ip", "-n", self.ns, *args]).stdout

    def run(self, *argv: str, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return sh(["ip", "netns", "exec", self.ns, *argv], check=check, timeout=timeout)

    def ping(self, addr: str, count: int = 1, wait: float = 2) -> bool:
        return self.run("ping", "-n", "-c", str(count), "-W", str(wait), addr,
                        check=False).returncode == 0

    def destroy(self) -> None:
        sh(["ip", "netns", "delete", self.ns], check=False)


class Segments:
    """Several segments, all removed on exit."""

    def __init__(self) -> None:
        self.items: list[Segment] = []

    def add(self, ns: str, addrs: list[str], gateway: str | None = None) -> Segment:
        seg = Segment.create(ns, addrs, gateway)
        self.items.append(seg)
        return seg

    def __enter__(self) -> Segments:
        return self

    def __exit__(self, *exc: object) -> None:
        for seg in self.items:
            seg.destroy()


@dataclass(frozen=True)
class Nic:
    segment: Segment
    mac: str


@dataclass
class Keypair:
    """The management server's key (id_rsa.cloud and its public half)."""
    private: Path

    @classmethod
    def create(cls, path: Path) -> Keypair:
        path.parent.mkdir(parents=True, exist_ok=True)
        sh(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "vragent-test",
            "-f", str(path)])
        return cls(path)

    @property
    def public(self) -> str:
        return Path(f"{self.private}.pub").read_text()

    def authorized_key(self) -> str:
        """``authorized_key=``'s value, as the management server passes it."""
        return base64.b64encode(self.public.encode()).decode()


def cmdline_text(params: dict[str, str], key: Keypair | None = None) -> str:
    """The boot parameters as the management server sends them: ``key=value ...``."""
    words = dict(params)
    if key is not None:
        words["authorized_key"] = key.authorized_key()
    return " ".join(f"{k}={v}" for k, v in words.items())


# -- QMP and the guest agent -------------------------------------------------------


class JsonChannel:
    """One JSON object per line over a unix socket (QMP, the guest agent)."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buf = b""

    def send(self, obj: dict[str, Any]) -> None:
        self.sock.sendall(json.dumps(obj).encode() + b"\n")

    def receive(self) -> dict[str, Any]:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("channel closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        # The guest agent may put a 0xff sentinel before a reply (guest-sync-delimited).
        data: dict[str, Any] = json.loads(line.strip(b"\xff").decode() or "{}")
        return data

    def close(self) -> None:
        self.sock.close()


class GuestAgent:
    """The host's side of qemu-guest-agent, as ``virsh qemu-agent-command`` uses it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _sync(self, timeout: float) -> JsonChannel:
        """A channel whose stale replies are skipped (patch.sh's guest-sync loop)."""
        deadline = time.monotonic() + timeout
        while True:
            chan = None
            try:
                chan = JsonChannel(self.path, timeout=2)
                token = int.from_bytes(os.urandom(4), "big")
                chan.send({"execute": "guest-sync", "arguments": {"id": token}})
                while chan.receive().get("return") != token:
                    pass
                chan.sock.settimeout(30)
                return chan
            except (OSError, ValueError, ConnectionError):
                if chan is not None:
                    chan.close()
                if time.monotonic() > deadline:
                    raise VmError(f"the guest agent did not answer within {timeout:.0f} s "
                                  f"({self.path})") from None
                time.sleep(0.5)

    def call(self, chan: JsonChannel, command: str, **arguments: Any) -> Any:
        chan.send({"execute": command, "arguments": arguments} if arguments
                  else {"execute": command})
        reply = chan.receive()
        if "error" in reply:
            raise VmError(f"guest agent {command}: {reply['error']}")
        return reply.get("return")

    def write_file(self, path: str, data: bytes, timeout: float) -> None:
        """patch.sh's send_file."""
        chan = self._sync(timeout)
        try:
            handle = self.call(chan, "guest-file-open", path=path, mode="w+")
            self.call(chan, "guest-file-write", handle=handle,
                      **{"buf-b64": base64.b64encode(data).decode()})
            self.call(chan, "guest-file-close", handle=handle)
        finally:
            chan.close()


# -- the VM ----------------------------------------------------------------------


@dataclass
class Vm:
    name: str
    workdir: Path
    base: Path
    prefix: str
    key: Keypair
    nics: list[Nic]
    memory: int = 1024
    process: subprocess.Popen[bytes] | None = None
    control_ip: str | None = None
    timings: list[dict[str, float]] = field(default_factory=list)
    _started: float = 0.0
    _base_lock: BinaryIO | None = None

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Unix socket paths must fit sun_path: short ones under /tmp.
        self.sockdir = Path(f"/tmp/{self.prefix}{self.name}")
        self.sockdir.mkdir(parents=True, exist_ok=True)
        self.overlay = self.workdir / "disk.qcow2"
        self.serial = self.workdir / "serial.log"
        self.qmp_path = self.sockdir / "qmp"
        self.qga_path = self.sockdir / "qga"
        self.ssh_control = self.sockdir / "ssh"
        self.agent = GuestAgent(self.qga_path)

    def tap_name(self, index: int) -> str:
        return f"{self.prefix}{self.name}e{index}"[:15]

    # -- power ---------------------------------------------------------------

    def start(self) -> None:
        if self._base_lock is None:
            # image/vm.py leaves a disk in place while someone holds this.
            self._base_lock = self.base.resolve().open("rb")
            fcntl.flock(self._base_lock, fcntl.LOCK_SH)
        if not self.overlay.exists():
            sh(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(self.base.resolve()),
                "-F", "qcow2", str(self.overlay)])
        for path in (self.qmp_path, self.qga_path):
            path.unlink(missing_ok=True)
        fds = []
        argv = [QEMU, "-name", self.name, "-machine", "pc,accel=tcg", "-m", str(self.memory),
                "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
                "-rtc", "base=utc",
                "-drive", f"file={self.overlay},if=virtio,format=qcow2",
                "-chardev", f"file,id=serial0,path={self.serial},append=on",
                "-serial", "chardev:serial0",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        for i, nic in enumerate(self.nics):
            fd = self._tap(nic, self.tap_name(i))
            fds.append(fd)
            # Fixed PCI slots, in order: the guest numbers them eth0, eth1 ...
            argv += ["-netdev", f"tap,id=n{i},fd={fd}",
                     "-device", f"virtio-net-pci,netdev=n{i},mac={nic.mac},addr={3 + i:#x}"]
        argv += ["-chardev", f"socket,id=qga0,path={self.qga_path},server=on,wait=off",
                 "-device", "virtio-serial-pci,addr=0x1e",
                 "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
                 "-device", "virtio-rng-pci,addr=0x1f"]
        with self.serial.open("a") as f:
            f.write(f"\n==== {time.strftime('%H:%M:%S')} QEMU started ====\n")
        log = (self.workdir / "qemu.log").open("ab")
        try:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, pass_fds=fds)
        finally:
            log.close()
            # QEMU holds the taps now: they go when it exits.
            for fd in fds:
                os.close(fd)
        self._started = time.monotonic()
        wait_for(self.qmp_path.exists, 30, f"{self.name}'s QMP socket")
        for i, nic in enumerate(self.nics):
            nic.segment.ip("link", "set", self.tap_name(i), "master", "br0", "up")

    def _tap(self, nic: Nic, name: str) -> int:
        with in_netns(nic.segment.ns):
            fd = os.open("/dev/net/tun", os.O_RDWR)
            try:
                fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
            except OSError:
                os.close(fd)
                raise
        return fd

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def qmp(self, command: str, **arguments: Any) -> Any:
        chan = JsonChannel(self.qmp_path, timeout=30)
        try:
            chan.receive()  # the greeting
            chan.send({"execute": "qmp_capabilities"})
            chan.receive()
            chan.send({"execute": command, "arguments": arguments} if arguments
                      else {"execute": command})
            while True:
                reply = chan.receive()
                if "event" in reply:
                    continue
                if "error" in reply:
                    raise VmError(f"QMP {command}: {reply['error']}")
                return reply.get("return")
        finally:
            chan.close()

    def quit(self) -> None:
        """The power pulled (QMP ``quit``): nothing in the guest gets to run."""
        self._drop_ssh()
        if self.running:
            try:
                self.qmp("quit")
            except (OSError, ConnectionError):
                pass
        self._reap(30)

    def shutdown(self, timeout: float = 180) -> float:
        """ACPI power button (QMP system_powerdown); the seconds until QEMU exited."""
        self._drop_ssh()
        started = time.monotonic()
        self.qmp("system_powerdown")
        self._reap(timeout)
        return time.monotonic() - started

    def _reap(self, timeout: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise VmError(f"{self.name}: QEMU did not exit within {timeout:.0f} s") from None
        finally:
            self.process = None

    def close(self) -> None:
        """End QEMU whatever its state (fixtures' cleanup)."""
        self._drop_ssh()
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
        shutil.rmtree(self.sockdir, ignore_errors=True)
        if self._base_lock is not None:
            self._base_lock.close()
            self._base_lock = None

    # -- the host's ways in --------------------------------------------------

    def write_cmdline(self, text: str, timeout: float = 300) -> float:
        """patch.sh: the boot parameters, once the guest agent answers. Returns
        the seconds since QEMU started."""
        # patch.sh writes `echo $cmdline | base64 -w 0`: the line and its newline.
        self.agent.write_file(f"{CACHE}/cmdline", f"{text}\n".encode(), timeout)
        return time.monotonic() - self._started

    def _ssh_opts(self) -> list[str]:
        return ["-i", str(self.key.private), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
                # One connection carries every command: a handshake costs the
                # emulated CPU a second or more.
                "-o", "ControlMaster=auto", "-o", f"ControlPath={self.ssh_control}",
                "-o", "ControlPersist=120"]

    def _control_segment(self) -> Segment:
        return self.nics[0].segment

    def ssh(self, *command: str, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A command on the router, as the management server runs one (root, port 3922)."""
        if self.control_ip is None:
            raise VmError(f"{self.name}: no control address yet (wait_ssh first)")
        return self._control_segment().run(
            "ssh", "-p", str(SSH_PORT), *self._ssh_opts(), f"root@{self.control_ip}",
            *command, check=check, timeout=timeout)

    def scp(self, local: Path, remote: str, timeout: float = 120) -> None:
        assert self.control_ip is not None, "wait_ssh first"
        self._control_segment().run("scp", "-q", "-P", str(SSH_PORT), *self._ssh_opts(),
                                    str(local), f"root@{self.control_ip}:{remote}",
                                    timeout=timeout)

    def wait_ssh(self, control_ip: str, timeout: float = 600) -> float:
        """Until root logs in with the key on the control address; the seconds
        since QEMU started (recorded in ``timings``)."""
        self.control_ip = control_ip

        def answers() -> bool:
            if not self.running:
                raise VmError(f"{self.name}: QEMU exited (see {self.workdir / 'qemu.log'})")
            try:
                return self.ssh("true", check=False, timeout=60).returncode == 0
            except subprocess.TimeoutExpired:
                return False  # a handshake on a busy emulated CPU: try again

        wait_for(answers, timeout, f"ssh to {self.name} on {control_ip}:{SSH_PORT}",
                 interval=1.0)
        took = time.monotonic() - self._started
        self.timings.append({"boot_to_ssh": took})
        return took

    def _drop_ssh(self) -> None:
        if self.ssh_control.exists():
            sh(["ssh", "-o", f"ControlPath={self.ssh_control}", "-O", "exit", "x"],
               check=False, timeout=10)
            self.ssh_control.unlink(missing_ok=True)

    def apply_bag(self, bag: dict[str, Any], name: str) -> subprocess.CompletedProcess[str]:
        """As the management server sends one: the file copied into
        /var/cache/cloud as ``<name>.<uuid>`` (AbstractConfigItemFacade), then
        ``update_config.py <file>``."""
        remote = f"{name}.{uuid.uuid4()}"
        local = self.workdir / remote
        local.write_text(json.dumps(bag, separators=(",", ":")))
        try:
            self.scp(local, f"{CACHE}/{remote}")
        finally:
            local.unlink()
        return self.ssh("/opt/cloud/bin/update_config.py", remote)

    def serial_log(self, tail: int = 20000) -> str:
        try:
            return self.serial.read_text(errors="replace")[-tail:]
        except OSError:
            return ""
