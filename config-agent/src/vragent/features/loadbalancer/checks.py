"""The load balancer's health check: upstream's haproxy_check.py."""

from __future__ import annotations

from ...feature import Check, Outcome, failed, ok
from ...feature import CheckContext as Context


def haproxy(ctx: Context) -> Outcome:
    """health_checks/haproxy_check.py: this router does not run haproxy yet, so
    load balancing rules sent to it are not served; records without a
    ``sourceIp`` are haproxy's global and default settings, not rules."""
    records = ctx.data("haproxyData") or []
    rules = [r for r in records if "sourceIp" in r]
    if not rules:
        return ok("No data provided to check, skipping")
    return failed(f"This router does not run haproxy yet: {len(rules)} load balancing "
                  f"rule(s) not served")


CHECKS = (Check("haproxy_check.py", "advanced", haproxy),)
