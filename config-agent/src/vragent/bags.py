"""Every bag type the router accepts: the box's own and every feature's.

The one switchboard a bag goes through: ``parse_bag`` validates it into its
model, ``merge`` files it into the stored documents by its type's rule,
``redact`` shows the stored documents with every declared secret replaced.
It names no bag type: the declarations do (``box.BAGS``, ``Feature.bags``).
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel, ValidationError

from . import box
from .errors import BagError
from .feature import BagType, Docs
from .features import features, packages
from .models import describe_errors


@functools.lru_cache(maxsize=4)
def _types(packages: tuple[str, ...]) -> dict[str, BagType]:
    found: dict[str, BagType] = {}
    for bt in (*box.BAGS, *(b for f in features() for b in f.bags)):
        if bt.name in found:
            raise RuntimeError(f"bag type {bt.name!r} is declared twice")
        found[bt.name] = bt
    return found


def types() -> dict[str, BagType]:
    """Every declared bag type, by CloudStack's ``type``."""
    return _types(packages())


def models() -> dict[str, type[BaseModel]]:
    return {name: bt.model for name, bt in types().items()}


def secret_fields() -> frozenset[str]:
    return frozenset().union(*(bt.secret_fields for bt in types().values()))


def parse_bag(raw: Any, type_hint: str = "") -> BaseModel:
    """A validated model, or ``BagError`` listing every bad field as
    ``path: reason (got value)``."""
    if not isinstance(raw, dict):
        raise BagError(type_hint, [f"the bag must be a JSON object, got {type(raw).__name__}"])
    known = types()
    bag_type = raw.get("type", type_hint)
    if not isinstance(bag_type, str) or bag_type not in known:
        names = ", ".join(sorted(known))
        raise BagError(str(bag_type), [f"type: unknown bag type {bag_type!r} (known: {names})"])
    if "type" not in raw:
        raw = {**raw, "type": bag_type}
    try:
        return known[bag_type].model.model_validate(raw)
    except ValidationError as exc:
        raise BagError(bag_type, describe_errors(exc, secret_fields())) from None


def merge(docs: Docs, bag_type: str, bag: BaseModel, sent: Any = None) -> Docs:
    """``docs`` with ``bag`` filed by its type's rule (pure). ``sent``: the bag
    as it arrived, for types that store it as sent."""
    bt = types()[bag_type]
    out = bt.merge(docs, bag, sent if isinstance(sent, dict) else None)
    tier = bt.removes_tier(bag) if bt.removes_tier is not None else None
    if tier is not None:
        # What is kept per tier filters or serves an interface that no longer
        # serves the tier, and would block every later command.
        for other in types().values():
            key = other.store_key
            if other.per_tier and key in out and tier in out[key]:
                out = {**out, key: {k: v for k, v in out[key].items() if k != tier}}
    return out


def stored_model_part(docs: Docs, bag: BaseModel) -> Any:
    """The stored dict that ``bag`` itself became, for the bag types stored
    whole (one ACL, one tier): the configuration's model of it is ``bag``."""
    bt = types().get(str(getattr(bag, "type", "")))
    if bt is None or bt.stored_part is None:
        return None
    return bt.stored_part(docs, bag)


def redact(docs: dict[str, Any]) -> dict[str, Any]:
    """The stored configuration as it may be shown: every secret replaced."""
    out = dict(docs)
    for bt in types().values():
        if bt.redact is not None and bt.store_key in out:
            out[bt.store_key] = bt.redact(out[bt.store_key])
    return out
