"""The toy feature's declaration: its bag type, view, subsystem, opening and
health check (``vragent.feature``), found through ``$VRAGENT_FEATURES``."""

from __future__ import annotations

import http.client
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictStr
from vragent.feature import (
    BagType,
    Check,
    CheckContext,
    Docs,
    Feature,
    Opening,
    Outcome,
    Traffic,
    failed,
    ok,
    raw,
)
from vragent.models.common import Bag
from vragent.settings import Settings

from . import subsystem
from .daemon import INDEX

BAG = "toyecho"
MAX_MESSAGE = 256
# A check gets this long per gateway.
CHECK_TIMEOUT = 2.0


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


def _fetch(address: str, port: int) -> str:
    """What the daemon serves at ``address``, or why nothing came."""
    conn = http.client.HTTPConnection(address, port, timeout=CHECK_TIMEOUT)
    try:
        conn.request("GET", f"/{INDEX}")
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
        return body if response.status == 200 else f"HTTP {response.status}"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    finally:
        conn.close()


def toy_check(ctx: CheckContext) -> Outcome:
    """Every tier gateway serves the configured message on the configured port."""
    from vragent.config import RouterConfig
    from vragent.store import Store
    from vragent.system import iproute
    from vragent.topology import resolve

    cfg = RouterConfig.from_docs(Store(ctx.settings).load())
    d = subsystem.desired(cfg, resolve(cfg, iproute.links()), ctx.settings)
    if not d.enabled:
        return ok("No toyecho configured, skipping")
    wrong = [f"{gw}:{d.port} {got!r}" for gw in d.gateways
             if (got := _fetch(gw, d.port)) != f"{d.message}\n"]
    if wrong:
        return failed("toyecho does not serve its message -\n" + ", ".join(wrong))
    return ok(f"toyecho serves its message on {len(d.gateways)} gateways, port {d.port}")


FEATURE = Feature(
    name=subsystem.NAME,
    bags=(BagType(BAG, ToyEcho, merge_toyecho),),
    view=view,
    subsystem=subsystem,
    traffic=traffic,
    checks=(Check("toy_check", "basic", toy_check),),
)
