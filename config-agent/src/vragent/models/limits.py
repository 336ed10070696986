"""Reading untrusted JSON: one place, with limits, and a clean error for everything.

What the management plane sends is parsed here before any model sees it: a
bag must be valid UTF-8 and valid JSON, without duplicate keys (upstream's
parser keeps the last silently; here it is an error, since one of the two
values was not what the sender meant), no deeper than ``MAX_DEPTH``, and
within the size limits below. The limits leave room for the largest real
CloudStack configurations: 10,000-rule ACLs are about 2 MB, a batch of 2,000
DHCP entries about 600 KB, and user data is at most 1 MB decoded (CloudStack's
``vm.userdata.max.length``), about 1.4 MB in base64.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import BagError
from ..errors import escape as escape  # where the models and their callers have it

MAX_FILE_BYTES = 64 * 1024 * 1024  # a bag file or an aggregated batch
MAX_BAG_BYTES = 16 * 1024 * 1024  # one bag inside a batch
MAX_DEPTH = 32  # CloudStack's bags nest 4 levels
MAX_ITEMS = 100_000  # in any one list or object
MAX_STRING = 4 * 1024 * 1024  # one string value (user data)
MAX_COMMANDS = 100_000  # bags in one batch

REDACTED = "(secret, not shown)"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Called for every object of a bag (10,000 rules): the dict is built in C,
    # and only when it came out short is the repeated key looked for.
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
    return _bounded(out)


def _last_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return _bounded(dict(pairs))


def _bounded(out: dict[str, Any]) -> dict[str, Any]:
    if len(out) > MAX_ITEMS:
        raise _TooLarge(f"an object has {len(out)} keys (at most {MAX_ITEMS})")
    return out


class _Duplicate(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _TooLarge(ValueError):
    pass


def _check_shape(doc: Any) -> None:
    """Depth, list lengths and string sizes, level by level, without recursion
    (a bag of 10,000 rules is walked in a few milliseconds)."""
    if type(doc) is str and len(doc) > MAX_STRING:
        raise _TooLarge(f"a string of {len(doc)} characters (at most {MAX_STRING})")
    level = [doc] if type(doc) in (dict, list) else []
    depth = 1
    while level:
        if depth > MAX_DEPTH:
            raise _TooLarge(f"nested deeper than {MAX_DEPTH} levels")
        below: list[Any] = []
        for value in level:
            if type(value) is dict:
                children: Any = value.values()
            else:
                if len(value) > MAX_ITEMS:
                    raise _TooLarge(f"a list has {len(value)} items (at most {MAX_ITEMS})")
                children = value
            for child in children:
                kind = type(child)
                if kind is dict or kind is list:
                    below.append(child)
                elif kind is str and len(child) > MAX_STRING:
                    raise _TooLarge(f"a string of {len(child)} characters "
                                    f"(at most {MAX_STRING})")
        level = below
        depth += 1


def load_json(data: bytes, source: str, limit: int = MAX_BAG_BYTES,
              duplicates_allowed: bool = False) -> Any:
    """Parse one JSON document from ``source`` or raise ``BagError`` saying what is wrong.

    ``duplicates_allowed``: only for cmd_line.json, which CloudStack's early
    boot writes line by line from the kernel command line, where a repeated
    key is legal and the last one counts.
    """
    if len(data) > limit:
        raise BagError("", [f"{source}: {len(data)} bytes, more than the limit of {limit}"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BagError("", [f"{source}: not valid UTF-8 (byte {exc.start})"]) from None
    try:
        doc = json.loads(text, object_pairs_hook=_last_wins if duplicates_allowed
                         else _no_duplicates)
    except _Duplicate as exc:
        raise BagError("", [f"{source}: key {escape(exc.key)} appears twice in one "
                            f"object"]) from None
    except _TooLarge as exc:
        raise BagError("", [f"{source}: {exc}"]) from None
    except RecursionError:
        raise BagError("", [f"{source}: nested deeper than {MAX_DEPTH} levels"]) from None
    except ValueError as exc:
        raise BagError("", [f"{source}: not valid JSON ({str(exc)[:120]})"]) from None
    try:
        _check_shape(doc)
    except _TooLarge as exc:
        raise BagError("", [f"{source}: {exc}"]) from None
    return doc
