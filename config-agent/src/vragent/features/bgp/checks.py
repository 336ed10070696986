"""The BGP health check (upstream has none: systemvm/debian/root/health_checks/).
Every configured peer's session, with the reason one is not up (stats.py)."""

from __future__ import annotations

from ...feature import Check, Outcome, failed, ok
from ...feature import CheckContext as Context


def bgp(ctx: Context) -> Outcome:
    from ...pairstate import HaState
    from ...system import frr
    from .daemon import BGPD, CONF_DIR, RUN_DIR
    from .stats import _configured, peer_error

    peers = _configured(ctx.settings)
    if not peers:
        return ok("No BGP peer configured, skipping")
    if HaState.load(ctx.settings.ha_state).status == "BACKUP":
        return ok("BGP is spoken by the master only")
    if not ctx.running(BGPD):
        return failed(f"bgpd is not running: {len(peers)} BGP peer(s) down")
    live = frr.neighbors(CONF_DIR.of(ctx.settings), RUN_DIR.of(ctx.settings), BGPD)
    md5 = frr.md5_counters()
    down = [f"{p}: {peer_error(live.get(p, {}), pw, md5) or 'not known to bgpd'}"
            for p, pw in sorted(peers.items()) if live.get(p, {}).get("bgpState") != "Established"]
    if down:
        return failed("BGP session(s) down: " + "; ".join(down))
    return ok(f"All {len(peers)} BGP session(s) established")


CHECKS = (Check("bgp_check.py", "advanced", bgp),)
