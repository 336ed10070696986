"""CloudStack's entry points, so a management server drives this router unchanged.

Installed as ``/opt/cloud/bin/<name>`` in the image, where the management
server calls them over its usual channel (ssh to port 3922, or the
hypervisor's router proxy); each hands its work to ``vragent``, so to the
resident agent's queue, and so to the one validation path.

- ``update_config.py <file> [false]`` (systemvm/debian/opt/cloud/bin/update_config.py,
  merge.py QueueFile): ``<file>`` is a bare name in the cache directory
  (/var/cache/cloud). It is applied, then gzipped into ``processed/`` (a name
  with one dot gets a uuid, as upstream's __moveFile does) or, with ``false``,
  deleted. A file already processed is a success (exit 0), a missing one exit
  1. Differences: upstream moves the file before merging it; here it is
  moved once applied (a crash in between re-applies it, which is harmless).
  ``cmd_line.json`` is this router's boot parameters file and stays where
  it is: it is re-read as at boot.
- ``vr_cfg.sh -c <file>`` (vr_cfg.sh, VirtualRoutingResource AggregationControlCommand):
  the aggregated batch, in order, stopping at the first failing item; the
  file then goes to ``processed/`` uncompressed. On a failure upstream
  prints ``VR config: execution failed: "<line>", ...`` but still exits 0
  (its ``exit 1`` is inside a pipeline's subshell); here the same line is
  printed and the exit status is 1, so the server sees it. Upstream's final
  conntrack flush is not done: it would cut connections on every batch.
- ``checkrouter.sh`` (checkrouter.sh, CheckRouterAnswer.parseDetails): prints
  ``Status: PRIMARY|BACKUP|FAULT|UNKNOWN``, from the resident agent's state.
- ``get_template_version.sh`` (systemvm/debian/opt/cloud/bin/get_template_version.sh,
  VirtualRoutingResource's GetDomRVersionCmd): waits up to 240 s for
  ``boot_up_done``, then prints ``<release>&<signature>`` (the contents of
  ``/etc/cloudstack-release`` and ``cloud-scripts-signature``), which the
  server splits at ``&``. Difference: upstream's timeout test (``[ -z $done ]``)
  is never true, so it prints the versions even when the boot never finished;
  here it prints its message and exits 1.
- ``configure.py <file>`` (SetMonitorServiceConfigItem: ``configure.py
  monitor_service.json`` after update_config.py when health checks are
  reconfigured): nothing to do, exit 0. Every bag converges the whole box
  when update_config.py applies it (vr_cfg.sh skips these lines likewise).

What a management server calls (core/.../virtualnetwork/VRScripts.java, and
who calls it) and what this router answers. Answered: update_config.py,
vr_cfg.sh and configure.py (the bags: every *ConfigItem facade),
checkrouter.sh (CheckRouterCommand), getRouterAlerts.sh (GetRouterAlertsCommand,
see alerts.py), checkbatchs2svpn.sh
(CheckS2SVpnConnectionsCommand), getRouterMonitorResults.sh and
filesystem_writable_check.py (GetRouterMonitorResultsCommand), diagnostics.py
(DiagnosticsCommand), get_diagnostics_files.py (PrepareFilesCommand),
cleanup.sh (DeleteFileInVrCommand), in ``features.diagnostics.entry``; and,
not in VRScripts, get_haproxy_stats.sh. get_template_version.sh
(GetDomRVersionCmd) and patched.sh (live patching) belong to the system VM.
Deliberately not answered:

- ``bumpup_priority.sh`` (BumpUpPriorityConfigItem): it only touches
  /tmp/rrouter_bumped, which templates/check_bumpup.sh reads and which no
  vrrp_script of the current keepalived.conf.templ runs; nothing in the
  management server builds a BumpUpPriorityCommand (only
  VirtualRoutingResourceTest and BumpUpPriorityCommandTest do). Here
  keepalived elects (nopreempt) and a server never raises a router's
  priority; a planned handover is ``vragent switchover``.
- the scripts of the routers before update_config.py, kept in VRScripts
  "mostly by HyperV" (HypervDirectConnectResource runs them over ssh):
  ipassoc.sh, vpc_snat.sh, vpc_staticroute.sh, edithosts.sh, dnsmasq.sh,
  savepassword.sh, vmdata.py, loadbalancer.sh, monitor_service.sh,
  ipsectunnel.sh, vpn_l2tp.sh. Their bags carry the same.
- ``update_host_passwd.sh``: a hypervisor host's script, not the router's.
- ``update_interface_config.sh <ip> <netmask> <mtu> <timeout>`` (4.18's
  configurable router MTU): not answered yet; the MTU the ips and
  guestnetwork bags carry is applied.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

from .settings import Settings
from .store import atomic_write


def _cli(args: list[str]) -> int:
    from .cli import main

    return main(args)


def _archive(path: Path, processed: Path, compress: bool) -> None:
    processed.mkdir(parents=True, exist_ok=True)
    name = path.name
    if not compress:
        os.replace(path, processed / name)
        return
    if name.count(".") == 1:
        name += f".{uuid.uuid4()}"
    target = processed / f"{name}.gz"
    tmp = processed / f".{name}.gz.tmp"
    with path.open("rb") as src, gzip.open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.replace(tmp, target)
    path.unlink()


def update_config(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print(f"[ERROR]: Invalid usage, args passed: {args!r}", file=sys.stderr)
        return 1
    name = args[0]
    keep = not (len(args) == 2 and args[1].lower() == "false")
    settings = Settings.from_env()
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        print(f"[ERROR] update_config.py :: {name!r} is not a file name in "
              f"{settings.cache_dir}", file=sys.stderr)
        return 1
    path = settings.cache_dir / name
    if not path.is_file():
        if (settings.processed_dir / f"{name}.gz").is_file():
            return 0  # already processed: upstream's shortcut
        print(f"[ERROR] update_config.py :: Unable to read and access {path} to process it",
              file=sys.stderr)
        return 1
    if path == settings.cmdline_file:
        return _cli(["boot"])
    code = _cli(["apply", str(path)])
    try:
        if keep:
            _archive(path, settings.processed_dir, compress=True)
        else:
            path.unlink()
    except OSError as exc:
        print(f"[ERROR] update_config.py :: {path}: cannot be moved to "
              f"{settings.processed_dir}: {exc.strerror}", file=sys.stderr)
        return code or 1
    return code


def vr_cfg(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "-c":
        print("usage: vr_cfg.sh -c <file>", file=sys.stderr)
        return 1
    cfg = Path(args[1])
    settings = Settings.from_env()
    if not cfg.is_file():
        print(f"VR config: {cfg}: no such file", file=sys.stderr)
        return 1
    code = _cli(["apply", str(cfg)])
    if code != 0:
        print(f'VR config: execution failed: "{cfg.name}", check the agent log in VR for '
              f"details ", file=sys.stderr)
    try:
        _archive(cfg, settings.processed_dir, compress=False)
    except OSError as exc:
        print(f"VR config: {cfg}: cannot be moved to {settings.processed_dir}: {exc.strerror}",
              file=sys.stderr)
        return 1
    return 0 if code == 0 else 1


def checkrouter(argv: list[str] | None = None) -> int:
    return _cli(["state"])


def configure(argv: list[str] | None = None) -> int:
    """``configure.py [<file>]``: the bag was applied, and the box converged,
    when update_config.py took it; there is nothing left to do."""
    return 0


# get_template_version.sh's __TIMEOUT: the server's first command to a booting router.
BOOT_WAIT = 240.0


def boot_up_done(settings: Settings) -> None:
    """Say the boot is over, as upstream's postinit.sh does (``date >
    /var/cache/cloud/boot_up_done``): get_template_version.sh waits for it."""
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(settings.boot_up_done,
                 f"{time.strftime('%a %b %d %H:%M:%S %Z %Y')}\n".encode(), 0o644)


def get_template_version(argv: list[str] | None = None, wait: float = BOOT_WAIT) -> int:
    settings = Settings.from_env()
    deadline = time.monotonic() + wait
    while not settings.boot_up_done.exists():
        if time.monotonic() >= deadline:
            print(f"Waited {wait:.0f} seconds but boot up haven't been completed")
            return 1
        time.sleep(0.1)
    try:
        # As upstream's `cat` in a command substitution: trailing newlines go.
        release = settings.release_file.read_text().rstrip("\n")
        signature = settings.scripts_signature.read_text().rstrip("\n")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"get_template_version.sh: {exc}", file=sys.stderr)
        return 1
    print(f"{release}&{signature}")
    return 0


def get_router_alerts(argv: list[str] | None = None) -> int:
    """``getRouterAlerts.sh [<yyyy-MM-dd> <HH:mm:ss>]`` (GetRouterAlertsCommand):
    the alerts newer than that, in upstream's answer (see alerts.py)."""
    from . import alerts

    args = sys.argv[1:] if argv is None else argv
    try:
        since = alerts.parse_since(args)
    except ValueError as exc:
        print(f"getRouterAlerts.sh: {exc}", file=sys.stderr)
        return 1
    settings = Settings.from_env()
    try:
        text = settings.router_alerts_log.read_text(errors="replace")
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        print(f"getRouterAlerts.sh: {exc}", file=sys.stderr)
        return 1
    print(alerts.answer(text, since))
    return 0
