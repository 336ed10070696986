"""CloudStack merge semantics, one function per bag type.

Each function takes the stored document of its type (a plain dict, as kept on
disk) and a validated bag, and returns the new document. They are pure: the
caller decides when the result is written. The raw bag dict is stored, not the
model, so fields the agent does not know survive a round trip.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from ..models import (
    DhcpEntry,
    FirewallRule,
    ForwardRule,
    GuestNetwork,
    IpAddress,
    IpAliases,
    Ips,
    MonitorService,
    NetworkAcl,
    StaticNatRule,
    StaticRoutes,
    VmData,
    VmPassword,
)
from ..models.firewallrules import FirewallRules
from ..models.forwardrules import ForwardRules, StaticNatRules, forward_key

Doc = dict[str, Any]
Docs = dict[str, Doc]


def _raw(model: BaseModel) -> dict[str, Any]:
    # Keep exactly what was sent (unknown fields included), minus nulls.
    return model.model_dump(exclude_unset=True, by_alias=True)


def merge_cmdline(docs: Docs, bag: BaseModel) -> Docs:
    out = dict(docs)
    out["cmdline"] = {"config": dict(bag.cmd_line)}  # type: ignore[attr-defined]
    return out


def _merge_ip(ips: Doc, entry: dict[str, Any], device: str) -> None:
    """One address: drop it wherever it was filed, then file it under its device."""
    for dev in list(ips):
        kept = [a for a in ips[dev] if a["public_ip"] != entry["public_ip"]]
        if kept:
            ips[dev] = kept
        else:
            del ips[dev]
    if not entry.get("add", True):
        return
    entry["nw_type"] = str(entry.get("nw_type", "public")).lower()
    if entry["nw_type"] == "control":
        ips[device] = [entry]
        return
    addresses = ips.setdefault(device, [])
    addresses.append(entry)
    # The source-NAT address leads its device's list: it is the primary address.
    addresses.sort(key=lambda a: not a.get("source_nat", False))


def merge_ips(docs: Docs, bag: BaseModel) -> Docs:
    assert isinstance(bag, Ips)
    ips = copy.deepcopy(docs.get("ips", {}))
    for model in bag.ip_address:
        entry = _raw(model)
        _merge_ip(ips, entry, _device_of(model))
    return {**docs, "ips": ips}


def _device_of(model: IpAddress) -> str:
    if model.nic_dev_id is not None:
        return model.device_key
    return f"mac-{model.vif_mac_address}"


def merge_guestnetwork(docs: Docs, bag: BaseModel) -> Docs:
    assert isinstance(bag, GuestNetwork)
    guests = copy.deepcopy(docs.get("guestnetwork", {}))
    ips = copy.deepcopy(docs.get("ips", {}))
    raw = _raw(bag)
    acls = docs.get("networkacl", {})
    if bag.add:
        guests[bag.device] = raw
    else:
        guests.pop(bag.device, None)
        # The tier's ACL goes with it: it filters an interface that no longer
        # serves the tier, and would block every later command.
        acls = {dev: acl for dev, acl in acls.items() if dev != bag.device}
    # The tier's gateway address is filed with the other addresses, as upstream
    # does; one re-sent with a new address replaces the old one.
    ips[bag.device] = [a for a in ips.get(bag.device, []) if a.get("nw_type") != "guest"]
    if not ips[bag.device]:
        del ips[bag.device]
    _merge_ip(
        ips,
        {
            "public_ip": bag.router_guest_ip,
            "netmask": bag.router_guest_netmask,
            "add": bag.add,
            "source_nat": False,
            "one_to_one_nat": False,
            "nw_type": "guest",
            "vif_mac_address": bag.mac_address,
            "nic_dev_id": int(bag.device[3:]) if bag.device[3:].isdigit() else None,
        },
        bag.device,
    )
    out = {**docs, "guestnetwork": guests, "ips": ips}
    if "networkacl" in docs:
        out["networkacl"] = acls
    return out


def merge_networkacl(docs: Docs, bag: BaseModel, sent: Doc | None = None) -> Docs:
    """The tier's whole ACL, replaced. ``sent``: the bag as it was sent (and
    validated into ``bag``), stored as it is; an ACL of 10,000 rules is not
    dumped back from the model for every change."""
    assert isinstance(bag, NetworkAcl)
    acls = dict(docs.get("networkacl", {}))
    acls[bag.device] = sent if sent is not None else _raw(bag)
    return {**docs, "networkacl": acls}


def merge_firewallrules(docs: Docs, bag: BaseModel) -> Docs:
    assert isinstance(bag, FirewallRules)
    rules = dict(docs.get("firewallrules", {}).get("rules", {}))
    for rule in bag.rules:
        if rule.revoked:
            rules.pop(str(rule.id), None)
        else:
            rules[str(rule.id)] = _raw(rule)
    return {**docs, "firewallrules": {"rules": rules}}


def merge_forwardrules(docs: Docs, bag: BaseModel) -> Docs:
    assert isinstance(bag, ForwardRules)
    # A re-sent rule goes to the end, as the newest; others keep their order.
    keyed = {
        ip: {_forward_key(r): r for r in rules}
        for ip, rules in docs.get("forwardrules", {}).items()
    }
    for rule in bag.rules:
        rules = keyed.setdefault(rule.source_ip_address, {})
        rules.pop(rule.key, None)
        if not rule.revoke:
            rules[rule.key] = _raw(rule)
    by_ip = {ip: list(rules.values()) for ip, rules in keyed.items() if rules}
    return {**docs, "forwardrules": by_ip}


def _forward_key(raw: dict[str, Any]) -> str:
    return forward_key(raw["source_ip_address"], raw["source_port_range"], raw["protocol"],
                       raw.get("source_cidr_list"))


def merge_staticnatrules(docs: Docs, bag: BaseModel) -> Docs:
    assert isinstance(bag, StaticNatRules)
    by_ip = dict(docs.get("staticnatrules", {}))
    for rule in bag.rules:
        if rule.revoke:
            by_ip.pop(rule.source_ip_address, None)
        else:
            by_ip[rule.source_ip_address] = _raw(rule)
    return {**docs, "staticnatrules": by_ip}


def merge_staticroutes(docs: Docs, bag: BaseModel) -> Docs:
    assert isinstance(bag, StaticRoutes)
    routes = dict(docs.get("staticroutes", {}))
    for route in bag.routes:
        if route.revoke:
            routes.pop(route.network, None)
        else:
            routes[route.network] = _raw(route)
    return {**docs, "staticroutes": routes}


def dhcp_key(entry: dict[str, Any]) -> str:
    """Entries are filed by IPv4 address (cs_dhcp.py); one without, by its MAC."""
    return str(entry.get("ipv4_address") or f"mac-{entry['mac_address']}")


def merge_dhcpentry(docs: Docs, bag: BaseModel) -> Docs:
    assert isinstance(bag, DhcpEntry)
    # A shallow copy: a batch of thousands of entries merges one by one, and
    # the entries themselves are never changed in place.
    entries = dict(docs.get("dhcpentry", {}))
    raw = _raw(bag)
    key = dhcp_key(raw)
    # One lease per NIC: a MAC re-sent with a new address loses its old one.
    stale = [k for k, e in entries.items() if e["mac_address"] == bag.mac_address]
    for k in stale:
        del entries[k]
    if bag.remove:
        entries.pop(key, None)
    else:
        entries[key] = raw
    return {**docs, "dhcpentry": entries}


def merge_vmdata(docs: Docs, bag: BaseModel) -> Docs:
    assert isinstance(bag, VmData)
    vms = dict(docs.get("vmdata", {}))
    # The bag is the VM's whole data (cs_vmdata.merge replaces the list); an
    # empty value means that file is gone (CsVmMetadata deletes it).
    vm: dict[str, dict[str, str]] = {}
    for folder, name, data in bag.files():
        if data:
            vm.setdefault(folder, {})[name] = data
    if vm:
        vms[bag.vm_ip_address] = vm
    else:
        vms.pop(bag.vm_ip_address, None)
    return {**docs, "vmdata": vms}


def merge_vmpassword(docs: Docs, bag: BaseModel) -> Docs:
    assert isinstance(bag, VmPassword)
    return {**docs, "vmpassword": {**docs.get("vmpassword", {}), bag.ip_address: bag.password}}


def merge_ipaliases(docs: Docs, bag: BaseModel) -> Docs:
    assert isinstance(bag, IpAliases)
    aliases = dict(docs.get("ipaliases", {}))
    for alias in bag.aliases:
        # In order: a bag revokes and re-adds the same address (the example does).
        if alias.revoke:
            aliases.pop(alias.ip_address, None)
        else:
            aliases[alias.ip_address] = _raw(alias)
    return {**docs, "ipaliases": aliases}


# What cs_monitorservice.merge copies into the bag; disable_monitoring and
# delete_from_processed_cache are not kept.
MONITOR_KEYS = ("config", "health_checks_enabled", "health_checks_basic_run_interval",
                "health_checks_advanced_run_interval", "excluded_health_checks",
                "health_checks_config")


def merge_monitorservice(docs: Docs, bag: BaseModel) -> Docs:
    """systemvm/debian/opt/cloud/bin/cs_monitorservice.py merge: the listed keys
    overlay the stored ones, so ``config``, sent only at router start, stays
    when a refresh omits it."""
    assert isinstance(bag, MonitorService)
    raw = _raw(bag)
    # The @06c53e2 server's spelling, kept under the current one.
    raw.setdefault("health_checks_advanced_run_interval",
                   raw.get("health_checks_advance_run_interval"))
    doc = dict(docs.get("monitorservice", {}))
    for key in MONITOR_KEYS:
        if raw.get(key) is not None:  # Gson never sends a null; one here means "not sent"
            doc[key] = raw[key]
    return {**docs, "monitorservice": doc}


MERGERS: dict[str, Callable[[Docs, BaseModel], Docs]] = {
    "cmdline": merge_cmdline,
    "ips": merge_ips,
    "guestnetwork": merge_guestnetwork,
    "networkacl": merge_networkacl,
    "firewallrules": merge_firewallrules,
    "forwardrules": merge_forwardrules,
    "staticnatrules": merge_staticnatrules,
    "staticroutes": merge_staticroutes,
    "dhcpentry": merge_dhcpentry,
    "vmdata": merge_vmdata,
    "vmpassword": merge_vmpassword,
    "ipaliases": merge_ipaliases,
    "monitorservice": merge_monitorservice,
}

__all__ = ["MERGERS", "Docs", "FirewallRule", "ForwardRule", "StaticNatRule"]


def stored_model_part(docs: Docs, bag: BaseModel) -> Any:
    """The stored dict that ``bag`` itself became, for the bag types stored
    whole (one ACL, one tier): the configuration's model of it is ``bag``."""
    if isinstance(bag, NetworkAcl):
        return docs.get("networkacl", {}).get(bag.device)
    if isinstance(bag, GuestNetwork) and bag.add:
        return docs.get("guestnetwork", {}).get(bag.device)
    return None


def merge(docs: Docs, bag_type: str, bag: BaseModel, sent: Any = None) -> Docs:
    """``sent``: the bag as it arrived, when the caller has it (see merge_networkacl)."""
    if bag_type == "networkacl" and isinstance(sent, dict):
        return merge_networkacl(docs, bag, sent)
    return MERGERS[bag_type](docs, bag)
