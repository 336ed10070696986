"""Build the system-VM disk image: ``make vm-image``.

The router of the container image (build.py) as a bootable disk, the way
CloudStack ships its system VMs (tools/appliance/: a Debian 12 template,
exported per hypervisor). Made from the same package list (packages.txt)
and the same agent layer (build.agent_context and agent-layer.sh, which the
Dockerfile runs too), so the two cannot drift apart; vm/ adds what a VM
needs on top: vm/packages.txt (kernel, systemd, udev, qemu-guest-agent,
openssh-server), the boot steps' systemd units and sshd's configuration
(vm/rootfs), the initramfs settings (vm/initramfs, vm/essential-hook).

Two stages, each reused while its inputs are unchanged:

* the root filesystem: mmdebstrap of both package lists into
  ``.build/vm/rootfs-<digest>/``, without the kernel modules of hardware no
  VM has (``PRUNE``: dpkg never unpacks them);
* the disk: a copy of it gets the agent's layer (in a chroot), vm/rootfs,
  the enabled and masked units, an fstab and GRUB's configuration; then a raw
  disk is made without loop devices or KVM: sfdisk writes one partition,
  ``mke2fs -d`` fills it at its offset, GRUB's boot.img and core.img (i386-pc,
  from the build host's grub-pc-bin) go in the MBR and the gap after it; then
  ``qemu-img convert -c -O qcow2 -o compat=0.10`` (as tools/appliance/build.sh)
  makes ``.build/vm/vragent-systemvm-<digest>.qcow2`` for KVM, linked as
  ``.build/vm/vragent-systemvm.qcow2``; then ``qemu-img convert -O vpc`` the
  dynamic VHD for XenServer and Hyper-V, compared with the qcow2 block for
  block (``qemu-img compare``) before it is kept (``--no-vhd``: not made).

A run with nothing changed finds the disk and does nothing. Builds take a
lock (one at a time); a disk that a test's VMs boot from (a shared lock,
tests/vm/harness.py) is left in place when a newer one replaces it.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import build

HERE = build.HERE
VM = HERE / "vm"
OUT = build.REPO / ".build/vm"
NAME = "vragent-systemvm"
# The disk: one partition from 1 MiB (GRUB's core.img goes in the gap before it).
DISK_BYTES = 2 * 1024**3
PART_START = 2048  # sectors
SECTOR = 512
GRUB_DIR = Path("/usr/lib/grub/i386-pc")
GRUB_MODULES = ["biosdisk", "part_msdos", "ext2", "normal", "linux", "serial", "terminal",
                "echo", "test"]
# tools/appliance/systemvmtemplate/scripts/configure_grub.sh: the serial
# console, classic NIC names (eth0 is the first NIC, as CloudStack numbers them).
KERNEL_ARGS = ("ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 biosdevname=0 "
               "loglevel=4 systemd.show_status=1")
# Kernel modules of hardware a system VM never has (paths under
# /usr/lib/modules/<version>/kernel): sound, graphics, cameras, radios, USB,
# InfiniBand, industrial I/O, filesystems a router does not mount. Kept: the
# virtual hardware of KVM, Xen, Hyper-V and VMware (virtio, xen-*, hv_*,
# vmxnet3, e1000, mptspi, vmw_pvscsi), all of networking (netfilter, IPsec,
# L2TP, PPP, bonding, VLANs, tunnels).
PRUNE = [
    "sound", "arch/x86/kvm",
    "drivers/gpu", "drivers/media", "drivers/infiniband", "drivers/usb", "drivers/iio",
    "drivers/staging", "drivers/hwmon", "drivers/comedi", "drivers/isdn", "drivers/mtd",
    "drivers/bluetooth", "drivers/mmc", "drivers/w1", "drivers/target", "drivers/video",
    "drivers/i2c", "drivers/thunderbolt", "drivers/firewire", "drivers/pcmcia",
    "drivers/memstick", "drivers/nfc", "drivers/leds", "drivers/spi",
    "drivers/net/wireless", "drivers/net/usb", "drivers/net/can", "drivers/net/wwan",
    "drivers/net/wan",
    "fs/btrfs", "fs/xfs", "fs/ocfs2", "fs/gfs2", "fs/nfsd", "fs/ceph", "fs/smb", "fs/f2fs",
    "fs/jfs", "fs/reiserfs", "fs/nilfs2", "fs/ubifs", "fs/orangefs", "fs/afs", "fs/coda",
    "fs/dlm", "fs/hfs", "fs/hfsplus", "fs/ntfs3", "fs/ufs", "fs/zonefs", "fs/vboxsf",
    "fs/nfs", "fs/cachefiles", "fs/fscache",
    "net/bluetooth", "net/mac80211", "net/wireless", "net/nfc", "net/ieee802154",
    "net/mac802154", "net/rxrpc", "net/sunrpc", "net/ceph",
]
# Ethernet drivers kept: Intel's (VMware's E1000, and SR-IOV virtual functions).
ETHERNET_KEPT = {"intel"}
# Units started at boot (vm/rootfs/etc/systemd/system).
ENABLED = ["vragent-cmdline.service", "vragent-early.service", "vragent.service",
           "vragent-postinit.service"]
# Debian's own units for what supervisord runs (and for supervisord itself)
# are masked, so only the router's supervisord ever starts those daemons:
# every service a package enabled at boot (the router's packages'; a daemon
# added to packages.txt is covered too) and the init scripts without a unit
# of their own (xl2tpd), besides these. nftables would flush the agent's
# ruleset; apt's timers would reach for the network.
MASKED = ["supervisor.service", "nftables.service", "dnsmasq.service", "ipsec.service",
          "apt-daily.service", "apt-daily.timer", "apt-daily-upgrade.service",
          "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer"]
# Started by vragent-systemvm postinit, on the control address, once the router is up.
DISABLED = ["ssh.service", "ssh.socket"]


def log(message: str) -> None:
    print(f"vm-image: {message}", flush=True)


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return build.run(argv, **kw)


def vm_packages() -> list[str]:
    return build.packages(VM / "packages.txt")


def files_digest(*paths: Path) -> bytes:
    """Content and mode of files and trees (the executable bit matters to hooks)."""
    h = hashlib.sha256()
    for root in paths:
        items = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in items:
            if path.is_symlink() or path.is_file():
                h.update(str(path.relative_to(HERE)).encode() + b"\0")
                h.update(os.readlink(path).encode() if path.is_symlink() else path.read_bytes())
                h.update(oct(path.lstat().st_mode).encode() + b"\0")
    return h.digest()


# -- the root filesystem -------------------------------------------------------


def build_rootfs() -> tuple[Path, str]:
    pkgs = build.packages() + vm_packages()
    recipe = digest_of_rootfs(pkgs)
    root = OUT / f"rootfs-{recipe}"
    if root.is_dir():
        log(f"root filesystem {root.name}: up to date")
        return root, recipe
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("rootfs-*"):
        shutil.rmtree(old, ignore_errors=True)
    tmp = OUT / "rootfs.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    started = time.monotonic()
    log(f"root filesystem: mmdebstrap {build.SUITE} with {len(pkgs)} packages")
    run(["mmdebstrap", *build.MMDEBSTRAP_OPTS, *module_filters(), f"--dpkgopt={UNSAFE_IO}",
         f"--essential-hook={VM / 'essential-hook'}",
         f"--include={','.join(pkgs)}", build.SUITE, str(tmp)],
        stdout=subprocess.DEVNULL)
    unmount_under(tmp)
    tmp.rename(root)
    log(f"root filesystem {root.name}: built in {time.monotonic() - started:.0f} s")
    return root, recipe


# dpkg without an fsync per file while the root filesystem is made: twice as
# fast, and a build that dies is made again anyway. Not kept in the image
# (configure).
UNSAFE_IO = "force-unsafe-io"


def module_filters() -> list[str]:
    """dpkg's path filters for the kernel modules of ``PRUNE``: never unpacked,
    so the kernel's own depmod and initramfs see only what stays."""
    opts = []
    # Bookworm's kernel packages ship them under /lib (a link to /usr/lib).
    for kernel in ("/lib/modules/*/kernel", "/usr/lib/modules/*/kernel"):
        opts += [f"--dpkgopt=path-exclude={kernel}/{p}/*" for p in PRUNE]
        opts.append(f"--dpkgopt=path-exclude={kernel}/drivers/net/ethernet/*")
        opts += [f"--dpkgopt=path-include={kernel}/drivers/net/ethernet/{d}/*"
                 for d in sorted(ETHERNET_KEPT)]
        # SCSI: the drivers at the top (virtio_scsi, vmw_pvscsi, hv_storvsc,
        # sd_mod ...) stay; those in subdirectories are physical HBAs.
        opts.append(f"--dpkgopt=path-exclude={kernel}/drivers/scsi/*/*")
    return opts


def digest_of_rootfs(pkgs: list[str]) -> str:
    return build.digest(" ".join(pkgs).encode(),
                        " ".join([*build.MMDEBSTRAP_OPTS, *module_filters(), UNSAFE_IO]).encode(),
                        files_digest(VM / "essential-hook", VM / "initramfs"))


def unmount_under(root: Path) -> None:
    """What mmdebstrap could not unmount (it warns "umount /proc failed" when a
    package's script left a process behind for a moment): a mount left in the
    tree would be copied into the disk."""
    prefix = str(root.resolve()) + "/"
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
        run(["umount", mount])


# -- the disk ------------------------------------------------------------------


def chroot(root: Path, argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return run(["chroot", str(root), *argv], **kw)


def install_agent(root: Path, base: str) -> str:
    """The agent's layer, as the container image gets it (build.agent_context,
    agent-layer.sh). Returns the manifest's text."""
    debs = chroot(root, ["dpkg-query", "-W", "-f", build.DPKG_FORMAT],
                  capture_output=True).stdout
    staging = OUT / "agent"
    text = build.agent_context(staging, base, debs)
    ctx = root / "tmp/agent"
    shutil.copytree(staging, ctx)
    shutil.rmtree(staging)
    # pip and python's venv read /proc; nothing else of the host is needed.
    run(["mount", "-t", "proc", "proc", str(root / "proc")])
    try:
        chroot(root, ["sh", "/tmp/agent/agent-layer.sh", json.loads(text)["agent_version"]],
               stdout=subprocess.DEVNULL)
    finally:
        run(["umount", str(root / "proc")])
    shutil.rmtree(ctx)
    return text


def configure(root: Path, fs_uuid: str) -> None:
    """What makes the root filesystem a system VM's (besides the packages)."""
    # File by file, root's and 0644: the checkout's modes (its umask) and
    # directories' modes stay out of the image.
    for src in sorted((VM / "rootfs").rglob("*")):
        if src.is_file():
            dst = root / src.relative_to(VM / "rootfs")
            dst.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            dst.chmod(0o644)
    (root / "etc/fstab").write_text(f"UUID={fs_uuid} / ext4 errors=remount-ro 0 1\n")
    (root / "etc/hostname").write_text("systemvm\n")
    # mmdebstrap keeps its --dpkgopt options as the image's dpkg configuration:
    # the filters stay (an upgrade inside the VM leaves the same modules out),
    # the build's unsafe I/O goes.
    dpkg_cfg = root / "etc/dpkg/dpkg.cfg.d/99mmdebstrap"
    dpkg_cfg.write_text("".join(f"{line}\n" for line in dpkg_cfg.read_text().splitlines()
                                if line.strip() != UNSAFE_IO))
    # The build host's resolver is not the router's.
    (root / "etc/resolv.conf").unlink(missing_ok=True)
    (root / "etc/resolv.conf").write_text("")
    # Each VM makes its own host keys on its first boot (vragent-systemvm postinit).
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    # Where the host writes the boot parameters (guest-file-open needs the directory).
    (root / "var/cache/cloud").mkdir(parents=True, exist_ok=True)
    units = root / "etc/systemd/system"
    masked = units_to_mask(root)
    # Masked: their enablement links and aliases go (strongswan-swanctl.service
    # is an alias of strongswan.service), then the unit points at /dev/null.
    for link in [p for p in units.rglob("*") if p.is_symlink()]:
        if link.name in masked or Path(os.readlink(link)).name in masked:
            link.unlink()
    for unit in masked:
        (units / unit).symlink_to("/dev/null")
    systemctl = ["systemctl", f"--root={root}", "--quiet"]
    run([*systemctl, "disable", *DISABLED])
    run([*systemctl, "enable", *ENABLED])
    kernel = sorted((root / "boot").glob("vmlinuz-*"))[-1].name
    version = kernel.removeprefix("vmlinuz-")
    grub = root / "boot/grub"
    grub.mkdir(parents=True, exist_ok=True)
    (grub / "grub.cfg").write_text(
        "# The system VM's one entry (vm.py); GRUB's core.img reads it from here.\n"
        "serial --unit=0 --speed=115200\n"
        "terminal_input serial console\n"
        "terminal_output serial console\n"
        "set timeout=0\n"
        f"menuentry 'vragent system VM ({version})' {{\n"
        f"  linux /boot/vmlinuz-{version} root=UUID={fs_uuid} {KERNEL_ARGS}\n"
        f"  initrd /boot/initrd.img-{version}\n"
        "}\n")


def units_to_mask(root: Path) -> list[str]:
    wanted = {p.name for p in (root / "etc/systemd/system/multi-user.target.wants")
              .glob("*.service")}
    native = {p.name for p in (root / "usr/lib/systemd/system").glob("*.service")}
    sysv = {f"{p.name[3:]}.service" for p in (root / "etc/rc2.d").glob("S*")}
    return sorted((set(MASKED) | wanted | (sysv - native)) - set(DISABLED))


def make_raw(root: Path, raw: Path, fs_uuid: str) -> None:
    raw.unlink(missing_ok=True)
    with raw.open("wb") as f:
        f.truncate(DISK_BYTES)
    part_sectors = DISK_BYTES // SECTOR - PART_START
    run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(raw)],
        input=f"label: dos\nstart={PART_START}, size={part_sectors}, type=83, bootable\n",
        stdout=subprocess.DEVNULL)
    run(["mke2fs", "-q", "-t", "ext4", "-L", "systemvm-root", "-U", fs_uuid, "-d", str(root),
         "-E", f"offset={PART_START * SECTOR}", str(raw), f"{part_sectors * SECTOR // 1024}k"])
    core = raw.with_name("core.img")
    run(["grub-mkimage", "-O", "i386-pc", "-d", str(GRUB_DIR), "-o", str(core),
         "-p", "(hd0,msdos1)/boot/grub", *GRUB_MODULES])
    image = core.read_bytes()
    if len(image) > (PART_START - 1) * SECTOR:
        raise SystemExit(f"vm-image: GRUB's core.img ({len(image)} bytes) does not fit "
                         f"before the partition")
    boot = (GRUB_DIR / "boot.img").read_bytes()
    with raw.open("r+b") as f:
        # boot.img's code only: the partition table and disk signature stay.
        f.write(boot[:440])
        # core.img right after the MBR: boot.img loads sector 1, whose block
        # list (set by grub-mkimage) loads the rest from sector 2 on.
        f.seek(SECTOR)
        f.write(image)
    core.unlink()


def build_disk(root: Path, rootfs_digest: str) -> Path:
    inputs = build.digest(rootfs_digest.encode(), *build.agent_inputs(),
                          Path(__file__).read_bytes(), files_digest(VM / "rootfs"))
    qcow2 = OUT / f"{NAME}-{inputs}.qcow2"
    if qcow2.exists():
        log(f"disk {qcow2.name}: up to date")
        return qcow2
    started = time.monotonic()
    remove_unused_disks()
    # The root filesystem stays as mmdebstrap left it: the disk's tree is an
    # overlay on it (copying it would take longer than everything else here).
    upper, scratch, tree = OUT / "upper", OUT / "overlay-work", OUT / "tree"
    for d in (upper, scratch, tree):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    run(["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={root},upperdir={upper},workdir={scratch}", str(tree)])
    raw = OUT / "disk.raw"
    try:
        # The filesystem's UUID follows from the inputs: the same inputs, the same disk.
        fs_uuid = str(uuid.UUID(hashlib.sha256(inputs.encode()).hexdigest()[:32]))
        manifest = install_agent(tree, f"{NAME}-rootfs:{rootfs_digest}")
        configure(tree, fs_uuid)
        make_raw(tree, raw, fs_uuid)
    finally:
        run(["umount", str(tree)])
        for d in (upper, scratch, tree):
            shutil.rmtree(d, ignore_errors=True)
    tmp = qcow2.with_suffix(".tmp")
    # -W: clusters are compressed in parallel and written as they come.
    run(["qemu-img", "convert", "-W", "-f", "raw", "-O", "qcow2", "-c", "-o", "compat=0.10",
         str(raw), str(tmp)])
    raw.unlink()
    qcow2.with_suffix(".manifest.json").write_text(manifest)
    tmp.rename(qcow2)
    log(f"disk {qcow2.name}: built in {time.monotonic() - started:.0f} s")
    return qcow2


def remove_unused_disks() -> None:
    """Earlier disks, but those a VM still boots from: a test holds a shared
    lock on its base disk (tests/vm/harness.py) while its VMs run."""
    for disk in OUT.glob(f"{NAME}-*.qcow2"):
        with disk.open("rb") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            for suffix in (".vhd", ".manifest.json"):
                disk.with_suffix(suffix).unlink(missing_ok=True)
            disk.unlink()


def build_vhd(qcow2: Path) -> Path:
    """The same disk as a dynamic VHD (XenServer, Hyper-V), checked block for block."""
    vhd = qcow2.with_suffix(".vhd")
    if vhd.exists():
        return vhd
    tmp = vhd.with_suffix(".vhd.tmp")
    run(["qemu-img", "convert", "-f", "qcow2", "-O", "vpc", "-o",
         "subformat=dynamic,force_size=on", str(qcow2), str(tmp)])
    run(["qemu-img", "compare", "-f", "qcow2", "-F", "vpc", str(qcow2), str(tmp)],
        stdout=subprocess.DEVNULL)
    tmp.rename(vhd)
    log(f"{vhd.name}: written and compared with the qcow2")
    return vhd


def link_latest(qcow2: Path) -> None:
    """``vragent-systemvm.<suffix>``: the disk just built, whatever its digest."""
    latest = OUT / f"{NAME}.qcow2"
    for suffix in (".qcow2", ".vhd", ".manifest.json"):
        link, target = latest.with_suffix(suffix), qcow2.with_suffix(suffix)
        link.unlink(missing_ok=True)
        if target.exists():
            link.symlink_to(target.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image/vm.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-vhd", action="store_true",
                        help="the qcow2 only (no VHD for XenServer and Hyper-V)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    OUT.mkdir(parents=True, exist_ok=True)
    # One build at a time (tests of several sessions may ask at once): the
    # next one waits, then finds the disk up to date.
    lock = (OUT / ".lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        root, recipe = build_rootfs()
        disk = build_disk(root, recipe)
        if not args.no_vhd:
            build_vhd(disk)
        link_latest(disk)
    except subprocess.CalledProcessError as exc:
        print(f"vm-image: {' '.join(map(str, exc.cmd))} failed (exit {exc.returncode})",
              file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"vm-image: {exc.filename}: not found (make setup installs the build's tools)",
              file=sys.stderr)
        return 1
    log(f"{disk} ({disk.stat().st_size / 1e6:.0f} MB) ready in "
        f"{time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
