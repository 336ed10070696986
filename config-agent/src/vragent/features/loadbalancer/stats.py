"""The load balancer's figures: CloudStack's ``get_haproxy_stats.sh`` and the
metrics endpoint, both from haproxy's admin socket with the counters of
workers retired by reloads added (``system.haproxy.stats``).
"""

from __future__ import annotations

import re
import sys

from ...feature import Metric
from ...settings import Settings

_IPV4_PORT = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", re.ASCII)
ROLLUPS = ("FRONTEND", "BACKEND")


def _rows(settings: Settings) -> list[dict[str, str]] | None:
    from ...system import haproxy
    from .daemon import CONF, paths

    if not CONF.of(settings).exists():
        return None
    try:
        # Not the agent's own listener: only what the bag configured.
        return [r for r in haproxy.stats(paths(settings)) if r.get("pxname") != haproxy.HOLD]
    except OSError:
        return None


def average_sessions(rows: list[dict[str, str]], ip: str, port: int) -> int:
    """get_haproxy_stats.sh's answer: the current sessions of the pool's
    servers that are UP, averaged (0 without one). Upstream: ``show stat``,
    rows ``<pool>,<pool>_N`` (field 5 scur, field 18 status UP)."""
    pool = f"{ip.replace('.', '_')}-{port}"
    up = [int(r.get("scur") or 0) for r in rows
          if r.get("pxname") == pool and r.get("svname") not in ROLLUPS
          and r.get("status") == "UP"]
    return sum(up) // len(up) if up else 0


def main(argv: list[str] | None = None) -> int:
    """``get_haproxy_stats.sh <public ip> <port>``: one integer, as the
    hypervisor resources' getNetworkLbStats parses it (split on ',', the
    first field as a long), for the autoscale counter LB_AVERAGE_CONNECTIONS."""
    args = sys.argv[1:] if argv is None else argv
    if (len(args) != 2 or not _IPV4_PORT.fullmatch(args[0]) or not args[1].isascii()
            or not args[1].isdigit()):
        print("usage: get_haproxy_stats.sh <public ip> <port>", file=sys.stderr)
        return 1
    rows = _rows(Settings.from_env())
    if rows is None:
        # Upstream prints 0 when haproxy does not answer: so does this.
        print("haproxy is not running", file=sys.stderr)
        rows = []
    print(average_sessions(rows, args[0], int(args[1])))
    return 0


def _num(row: dict[str, str], name: str) -> float | None:
    value = row.get(name) or ""
    return float(value) if value.isdigit() else None


def metrics(settings: Settings) -> list[Metric]:
    rows = _rows(settings)
    if rows is None:
        return []
    labels = ("proxy", "server")
    out = []
    for name, column, kind, help in (
            ("vragent_haproxy_sessions", "stot", "counter",
             "Sessions (connections) taken, per frontend, backend and server"),
            ("vragent_haproxy_bytes_in", "bin", "counter", "Bytes received from clients"),
            ("vragent_haproxy_bytes_out", "bout", "counter", "Bytes sent to clients"),
            ("vragent_haproxy_connection_errors", "econ", "counter",
             "Failed connections to servers"),
            ("vragent_haproxy_response_errors", "eresp", "counter",
             "Responses aborted or failed"),
            ("vragent_haproxy_current_sessions", "scur", "gauge", "Sessions open now")):
        samples = tuple(((r["pxname"], r["svname"]), v) for r in rows
                        for v in [_num(r, column)] if v is not None)
        out.append(Metric(name, help, kind, labels, samples))  # type: ignore[arg-type]
    out.append(Metric("vragent_haproxy_up", "1 while a frontend is open or a backend or "
                      "server is up", "gauge", labels,
                      tuple(((r["pxname"], r["svname"]),
                             1.0 if r.get("status") in ("UP", "OPEN") else 0.0)
                            for r in rows)))
    codes = []
    for r in rows:
        for code in ("1xx", "2xx", "3xx", "4xx", "5xx", "other"):
            v = _num(r, f"hrsp_{code}")
            if v is not None and r.get("svname") in ROLLUPS:
                codes.append(((r["pxname"], r["svname"], code), v))
    out.append(Metric("vragent_haproxy_http_responses", "HTTP responses by class",
                      "counter", ("proxy", "server", "code"), tuple(codes)))
    return out
