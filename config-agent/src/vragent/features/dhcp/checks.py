"""The dhcp feature's health checks: upstream's dhcp_check.py and dns_check.py."""

from __future__ import annotations

from ...feature import Check, Outcome, failed, ok
from ...feature import CheckContext as Context
from ...system import dnsmasq
from .daemon import NAMES, paths


def _vms(ctx: Context) -> list[dict[str, str]] | Outcome:
    records = ctx.data("virtualMachines")
    if not records:
        return ok("No VMs running data available, skipping")
    incomplete = [r for r in records if not {"vmName", "macAddress", "ip"} <= set(r)]
    if incomplete:
        return failed(f"virtualMachines records without vmName, macAddress and ip: "
                      f"{incomplete!r}")
    return records


def dhcp(ctx: Context) -> Outcome:
    """health_checks/dhcp_check.py: every VM of virtualMachines has its static
    lease (MAC, address and name) among dnsmasq's hosts (the hosts file, and
    the main file's dhcp-host lines for hosts with options of their own)."""
    vms = _vms(ctx)
    if isinstance(vms, Outcome):
        return vms
    hosts = set(dnsmasq.static_hosts(paths(ctx.settings)))
    missing = [f"{vm['macAddress']} {vm['ip']} {vm['vmName']}" for vm in vms
               if (vm["macAddress"].lower(), vm["ip"], vm["vmName"]) not in hosts]
    name = paths(ctx.settings).hosts.name
    if missing:
        return failed(f"Missing elements in {name} - \n" + ", ".join(missing))
    return ok(f"All {len(vms)} VMs are present in {name}")


def dns(ctx: Context) -> Outcome:
    """health_checks/dns_check.py: every VM's address and name are a line of
    dnsmasq's names file (upstream: "ip<TAB>name" in /etc/hosts; here
    "ip fqdn name")."""
    vms = _vms(ctx)
    if isinstance(vms, Outcome):
        return vms
    path = NAMES.of(ctx.settings)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        lines = []
    names: set[tuple[str, str]] = set()
    for line in lines:
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            names.update((fields[0], n) for n in fields[1:])
    missing = [f"{vm['ip']} {vm['vmName']}" for vm in vms if (vm["ip"], vm["vmName"]) not in names]
    if missing:
        return failed(f"Missing entries for VMs in {path.name} -\n" + ", ".join(missing))
    return ok(f"All {len(vms)} VMs are present in {path.name}")


CHECKS = (
    Check("dhcp_check.py", "advanced", dhcp),
    Check("dns_check.py", "advanced", dns),
)
