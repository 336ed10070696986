"""The box itself: its boot parameters, its addresses, its tiers and their aliases.

Not a feature: every feature reads them, through ``topology``, which resolves
them to the links the router has. Their bag types are declared here with
CloudStack's merge rules, as a feature declares its own; ``bags`` assembles
both.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from .feature import BagType, Doc, Docs, raw
from .models import CmdLine, GuestNetwork, IpAddress, IpAlias, IpAliases, Ips
from .models.cmdline import SECRET_KEYS
from .models.limits import REDACTED


def merge_cmdline(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
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


def merge_ips(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    assert isinstance(bag, Ips)
    ips = copy.deepcopy(docs.get("ips", {}))
    for model in bag.ip_address:
        entry = raw(model)
        _merge_ip(ips, entry, _device_of(model))
    return {**docs, "ips": ips}


def _device_of(model: IpAddress) -> str:
    if model.nic_dev_id is not None:
        return model.device_key
    return f"mac-{model.vif_mac_address}"


def merge_guestnetwork(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    assert isinstance(bag, GuestNetwork)
    guests = copy.deepcopy(docs.get("guestnetwork", {}))
    ips = copy.deepcopy(docs.get("ips", {}))
    sent_raw = raw(bag)
    if bag.add:
        guests[bag.device] = sent_raw
    else:
        # What features keep per tier goes with it (bags.merge: BagType.per_tier).
        guests.pop(bag.device, None)
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
    return {**docs, "guestnetwork": guests, "ips": ips}


def merge_ipaliases(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    assert isinstance(bag, IpAliases)
    aliases = dict(docs.get("ipaliases", {}))
    for alias in bag.aliases:
        # In order: a bag revokes and re-adds the same address (the example does).
        if alias.revoke:
            aliases.pop(alias.ip_address, None)
        else:
            aliases[alias.ip_address] = raw(alias)
    return {**docs, "ipaliases": aliases}


def removed_tier(bag: BaseModel) -> str | None:
    assert isinstance(bag, GuestNetwork)
    return None if bag.add else bag.device


def _stored_tier(docs: Docs, bag: BaseModel) -> Any:
    assert isinstance(bag, GuestNetwork)
    return docs.get("guestnetwork", {}).get(bag.device) if bag.add else None


def _redact_cmdline(doc: Doc) -> Doc:
    config = doc.get("config")
    if isinstance(config, dict) and SECRET_KEYS & set(config):
        return {**doc, "config": {k: REDACTED if k in SECRET_KEYS else v
                                  for k, v in config.items()}}
    return doc


CMDLINE = BagType("cmdline", CmdLine, merge_cmdline, secret_fields=SECRET_KEYS,
                  redact=_redact_cmdline)
GUESTNETWORK = BagType("guestnetwork", GuestNetwork, merge_guestnetwork,
                       stored_part=_stored_tier, removes_tier=removed_tier)
BAGS: tuple[BagType, ...] = (
    CMDLINE,
    BagType("ips", Ips, merge_ips),
    GUESTNETWORK,
    BagType("ipaliases", IpAliases, merge_ipaliases),
)


def view(docs: Docs, v: Any) -> dict[str, Any]:
    """The box's part of the configuration, validated (``v``: config.Memo.validate)."""
    cmd = docs.get("cmdline", {}).get("config", {})
    return {
        "cmdline": CmdLine.model_validate({"type": "cmdline", "cmd_line": cmd}),
        "ips": {dev: [v(IpAddress, a) for a in addrs]
                for dev, addrs in sorted(docs.get("ips", {}).items())},
        "guests": {dev: v(GuestNetwork, g)
                   for dev, g in sorted(docs.get("guestnetwork", {}).items())},
        "aliases": [v(IpAlias, a) for _, a in sorted(docs.get("ipaliases", {}).items())],
    }
