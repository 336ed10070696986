"""The toy feature's health check: every tier gateway serves the configured
message on the configured port (features.checks finds ``CHECKS`` here)."""

from __future__ import annotations

import http.client

from vragent.feature import Check, CheckContext, Outcome, failed, ok

from . import subsystem
from .daemon import INDEX

# A check gets this long per gateway.
CHECK_TIMEOUT = 2.0


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


CHECKS = (Check("toy_check", "basic", toy_check),)
