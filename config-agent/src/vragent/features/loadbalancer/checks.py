"""The load balancer's health check: upstream's haproxy_check.py
(systemvm/debian/root/health_checks/haproxy_check.py), asked of the running
haproxy rather than of its file.

Upstream compares haproxy.cfg with the management server's ``haproxyData``
(one record per rule: sourceIp, sourcePortStart, destPortStart, vmIps,
algorithm…), and its bind comparison rejects valid SSL binds ("ip:443 ssl"
against "ip:443", #12591). Here each rule must be served by the running
haproxy: its listener open at ``<ip>:<port>`` and every VM's address among
the listener's servers; a rule whose servers are all down fails too (it
serves nothing). Binds are compared by their address only, so SSL offload
passes. The global maxconn is compared when the first record carries one.
"""

from __future__ import annotations

from ...feature import Check, Outcome, failed, ok
from ...feature import CheckContext as Context


def haproxy(ctx: Context) -> Outcome:
    from .stats import ROLLUPS, _rows

    records = ctx.data("haproxyData") or []
    rules = [r for r in records if "sourceIp" in r]
    if not rules:
        return ok("No data provided to check, skipping")
    rows = _rows(ctx.settings)
    if rows is None:
        return failed(f"haproxy is not running: {len(rules)} load balancing rule(s) not served")
    by_proxy: dict[str, dict[str, dict[str, str]]] = {}
    for r in rows:
        by_proxy.setdefault(r["pxname"], {})[r["svname"]] = r
    problems = []
    down = []
    for rule in rules:
        ip, port = rule.get("sourceIp", ""), rule.get("sourcePortStart", "")
        pool = f"{ip.replace('.', '_')}-{port}"
        proxy = by_proxy.get(pool)
        if proxy is None or proxy.get("FRONTEND", {}).get("status") != "OPEN":
            problems.append(f"{ip}:{port} is not served")
            continue
        dest = rule.get("destPortStart", "")
        servers = {n: r for n, r in proxy.items() if n not in ROLLUPS}
        for vm in rule.get("vmIps", "").split():
            name = f"{vm.replace('.', '_')}-{dest}"
            if name not in servers:
                problems.append(f"{ip}:{port}: server {vm}:{dest} missing")
        up = [n for n, r in servers.items() if r.get("status", "").startswith("UP")]
        if servers and not up:
            problems.append(f"{ip}:{port}: no server is up")
        down += [f"{ip}:{port} {n} {r.get('status', '?')}" for n, r in sorted(servers.items())
                 if not r.get("status", "").startswith("UP")]
    maxconn = records[0].get("maxconn") if records else None
    if maxconn:
        from ...system.haproxy import ask
        from .daemon import SOCKET

        try:
            info = dict(line.split(": ", 1) for line in
                        ask(SOCKET.of(ctx.settings), "show info").splitlines() if ": " in line)
        except OSError:
            info = {}
        if info.get("Maxconn") and info["Maxconn"] != maxconn:
            problems.append(f"maxconn is {info['Maxconn']}, the management server expects "
                            f"{maxconn}")
    if problems:
        return failed("; ".join(problems))
    note = f" (down: {', '.join(down)})" if down else ""
    return ok(f"All {len(rules)} load balancing rule(s) are served{note}")


CHECKS = (Check("haproxy_check.py", "advanced", haproxy),)
