"""The toy feature's declaration: its bag type, view, subsystem, opening and
health check (``vragent.feature``), found through ``$VRAGENT_FEATURES``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictStr
from vragent.feature import (
    BagType,
    Docs,
    Feature,
    Opening,
    Traffic,
    raw,
)
from vragent.models.common import Bag
from vragent.settings import Settings

from . import subsystem

BAG = "toyecho"
MAX_MESSAGE = 256


def _message(value: str) -> str:
    if not value or len(value) > MAX_MESSAGE:
        raise ValueError(f"must be 1-{MAX_MESSAGE} characters, got {len(value)}")
    for i, c in enumerate(value):
        if not c.isprintable():  # control characters, line and paragraph separators
            raise ValueError(f"control character {c!r} at {i} (printable text only)")
    return value


class ToyEcho(Bag):
    """``{"type": "toyecho", "port": 7007, "message": "hello"}``: the message
    every VM reads at its tier gateway on that port."""

    type: Literal["toyecho"]
    port: Annotated[int, Field(strict=True, ge=1024, le=65535)]
    message: Annotated[StrictStr, AfterValidator(_message)]


def merge_toyecho(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    """The bag is the toy's whole configuration: stored as it came."""
    assert isinstance(bag, ToyEcho)
    return {**docs, BAG: raw(bag)}


def view(docs: Docs, v: Any) -> ToyEcho | None:
    return v(ToyEcho, docs[BAG]) if BAG in docs else None


def traffic(cfg: Any, settings: Settings, d: subsystem.Desired | None) -> Traffic:
    if d is None or not d.enabled:
        return Traffic()
    return Traffic(accept=(Opening("guests", "tcp", (d.port,)),))


FEATURE = Feature(
    name=subsystem.NAME,
    bags=(BagType(BAG, ToyEcho, merge_toyecho),),
    view=view,
    subsystem=subsystem,
    traffic=traffic,
)
