"""The box's databag models (boot parameters, addresses, tiers, aliases) and
the shared value types: CloudStack's JSON, validated field by field. Each
feature's own bag models live in its package; ``bags.parse_bag`` is the
single entry point for all of them."""

from __future__ import annotations

import re

from pydantic import ValidationError

from .cmdline import CmdLine
from .guestnetwork import GuestNetwork
from .ipaliases import IpAlias, IpAliases
from .ips import IpAddress, Ips
from .limits import REDACTED, escape

__all__ = ["CmdLine", "GuestNetwork", "IpAddress", "IpAlias", "IpAliases", "Ips",
           "describe_errors"]


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


def describe_errors(exc: ValidationError,
                    secret: frozenset[str] = frozenset()) -> list[str]:
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
        value = REDACTED if secret & {str(p) for p in err["loc"]} else escape(given)
        problems.append(f"{path}: {msg} (got {value})")
    return problems
