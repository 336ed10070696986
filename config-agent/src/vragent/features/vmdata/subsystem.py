"""VM metadata, user data and passwords, served by the ``metadata`` service.

From the ``vmdata`` and ``vmpassword`` bags. CloudStack's router serves these
with Apache (per-VM files, rewrite rules on REMOTE_ADDR; cs/CsApp.py,
vmdata.py) and passwd_server_ip.py on port 8080. Here one service does both
(``service.py``) on every tier gateway; the VM is the client's
source address. This subsystem writes what it serves: one JSON file per VM
(only those that changed are rewritten), the root-only password file, and
the list of addresses to listen on (the service's configuration, SIGHUP).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from ...config import RouterConfig
from ...feature import Files
from ...settings import Settings
from ...topology import Topology
from . import daemon
from .daemon import CONF, PASSWORDS, SERVED, VMDATA, VMDATA_INDEX

NAME = "vmdata"

METADATA_PORT = 80
PASSWORD_PORT = 8080


@dataclass(frozen=True)
class Desired:
    enabled: bool
    listen: tuple[tuple[str, str], ...] = ()  # (gateway address, ifname)
    # VM address -> canonical JSON of {folder: {file: data}}
    vms: dict[str, str] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict, repr=False)
    vmdata_dir: str = ""
    passwords_file: str = ""
    served_file: str = ""


def desired(cfg: RouterConfig, topo: Topology, settings: Settings) -> Desired:
    listen = tuple(sorted({(g.gateway, g.ifname) for g in topo.guests if not g.private_gateway}))
    vms, passwords = cfg.part(NAME, ({}, {}))
    if not listen:
        return Desired(enabled=False)
    return Desired(
        enabled=True,
        listen=listen,
        # Key order kept: the meta-data index lists files as they were sent.
        vms={ip: json.dumps(vm, separators=(",", ":")) for ip, vm in vms.items()},
        passwords=dict(passwords),
        vmdata_dir=str(VMDATA.of(settings)),
        passwords_file=str(PASSWORDS.of(settings)),
        served_file=str(SERVED.of(settings)),
    )


def verify(d: Desired) -> list[str]:
    return []


def _conf(d: Desired) -> str:
    return json.dumps({
        "listen": [{"address": ip, "interface": dev} for ip, dev in d.listen],
        "metadata_port": METADATA_PORT,
        "password_port": PASSWORD_PORT,
        "vmdata_dir": d.vmdata_dir,
        "passwords_file": d.passwords_file,
        "served_file": d.served_file,
    }, indent=2, sort_keys=True) + "\n"


def render(d: Desired) -> Files:
    if not d.enabled:
        return Files(((CONF.name, ""),))
    # The golden text shows what each VM gets, by digest: user data can be megabytes.
    index = "".join(f"vm {ip} {hashlib.sha256(v.encode()).hexdigest()[:16]}\n"
                    for ip, v in sorted(d.vms.items()))
    index += "".join(f"password {ip} (set)\n" for ip in sorted(d.passwords))
    return Files(((CONF.name, _conf(d)),), index=(("vmdata", index),))


def apply(d: Desired, rendered: Files, settings: Settings, dry_run: bool = False) -> list[str]:
    from ...system import daemons, vmfiles

    changes = [f"{NAME}: {c}" for c in vmfiles.sync_vms(
        VMDATA.of(settings), VMDATA_INDEX.of(settings), d.vms, dry_run)]
    if vmfiles.sync_passwords(PASSWORDS.of(settings), d.passwords, dry_run):
        changes.append(f"{NAME}: passwords updated")
    return changes + daemons.sync_rendered(daemon.daemons(settings)[0], rendered, settings, dry_run)
