"""Databag models: CloudStack's JSON, validated field by field.

``parse_bag`` is the single entry point: it returns a validated model or raises
``BagError`` listing every bad field as ``path: reason (got value)``.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import BagError
from .cmdline import CmdLine
from .dhcpentry import DhcpEntry
from .firewallrules import FirewallRule, FirewallRules
from .forwardrules import ForwardRule, ForwardRules, StaticNatRule, StaticNatRules
from .guestnetwork import GuestNetwork
from .ipaliases import IpAlias, IpAliases
from .ips import IpAddress, Ips
from .limits import REDACTED, SECRET_FIELDS, escape
from .monitorservice import MonitorService
from .networkacl import AclRule, NetworkAcl
from .staticroutes import StaticRoute, StaticRoutes
from .vmdata import VmData
from .vmpassword import VmPassword

BAG_MODELS: dict[str, type[BaseModel]] = {
    "cmdline": CmdLine,
    "ips": Ips,
    "guestnetwork": GuestNetwork,
    "networkacl": NetworkAcl,
    "firewallrules": FirewallRules,
    "forwardrules": ForwardRules,
    "staticnatrules": StaticNatRules,
    "staticroutes": StaticRoutes,
    "dhcpentry": DhcpEntry,
    "vmdata": VmData,
    "vmpassword": VmPassword,
    "ipaliases": IpAliases,
    "monitorservice": MonitorService,
}

__all__ = [
    "AclRule", "BAG_MODELS", "CmdLine", "DhcpEntry", "FirewallRule", "FirewallRules",
    "ForwardRule", "ForwardRules", "GuestNetwork", "IpAddress", "IpAlias", "IpAliases", "Ips",
    "MonitorService", "NetworkAcl", "StaticNatRule", "StaticNatRules", "StaticRoute",
    "StaticRoutes", "VmData", "VmPassword", "describe_errors", "parse_bag",
]


def redact(docs: dict[str, Any]) -> dict[str, Any]:
    """The stored configuration as it may be shown: every secret replaced."""
    out = dict(docs)
    if "vmpassword" in out:
        out["vmpassword"] = {ip: REDACTED for ip in out["vmpassword"]}
    config = out.get("cmdline", {}).get("config")
    if isinstance(config, dict) and SECRET_FIELDS & set(config):
        out["cmdline"] = {**out["cmdline"], "config": {
            k: REDACTED if k in SECRET_FIELDS else v for k, v in config.items()}}
    return out


def parse_bag(raw: Any, type_hint: str = "") -> BaseModel:
    if not isinstance(raw, dict):
        raise BagError(type_hint, [f"the bag must be a JSON object, got {type(raw).__name__}"])
    bag_type = raw.get("type", type_hint)
    if not isinstance(bag_type, str) or bag_type not in BAG_MODELS:
        known = ", ".join(sorted(BAG_MODELS))
        raise BagError(str(bag_type), [f"type: unknown bag type {bag_type!r} (known: {known})"])
    if "type" not in raw:
        raw = {**raw, "type": bag_type}
    try:
        return BAG_MODELS[bag_type].model_validate(raw)
    except ValidationError as exc:
        raise BagError(bag_type, describe_errors(exc)) from None


# pydantic's wording where ours reads better next to a field path.
_MESSAGES = {
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "list_type": "must be a list",
    "dict_type": "must be an object",
}


_PLAIN = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)


def _segment(part: object) -> str:
    """One step of a field path; an unknown key may hold anything."""
    text = str(part)
    return text if _PLAIN.fullmatch(text) else escape(text, 40)


def describe_errors(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        path = ".".join(_segment(p) for p in err["loc"]) or "(bag)"
        msg = _MESSAGES.get(err["type"]) or err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            problems.append(f"{path}: required field is missing")
            continue
        given = err.get("input")
        if isinstance(given, dict) or (isinstance(given, list)
                                       and any(isinstance(x, (dict, list)) for x in given)):
            # A whole object or list: the message names what is wrong in it,
            # and echoing it could show megabytes, or a secret next to it.
            problems.append(f"{path}: {msg}")
            continue
        value = REDACTED if SECRET_FIELDS & {str(p) for p in err["loc"]} else escape(given)
        problems.append(f"{path}: {msg} (got {value})")
    return problems
