"""HTTP backends and clients for the load balancer tests, run inside namespaces.

``serve <name> <port>``: the lab's HTTP backend (vragent_lab.web.serve): its
name and the forwarding headers it got (``<name> proto=<X-Forwarded-Proto>
for=<X-Forwarded-For>``), a new session cookie (``JSESSIONID``); "ready"
once bound.

``load <url> <threads> <stop file> <out file>``: new connections, one request
each, in ``threads`` threads until the stop file exists; then writes what
happened as JSON: every response counted by backend, every failure by error,
and each request's start, latency and success.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
import urllib.parse
from pathlib import Path

from vragent_lab.web import serve


def load(url: str, threads: int, stop: Path, out: Path) -> None:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    lock = threading.Lock()
    backends: dict[str, int] = {}
    failures: dict[str, int] = {}
    samples: list[tuple[float, float, bool]] = []  # (start, seconds, answered 200)

    def worker() -> None:
        while not stop.exists():
            started = time.monotonic()
            try:
                conn = http.client.HTTPConnection(host, port, timeout=5)
                conn.request("GET", parts.path or "/")
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace")
                conn.close()
                key = body.split(" ", 1)[0] if resp.status == 200 else f"http {resp.status}"
                bucket = backends if resp.status == 200 else failures
            except (OSError, http.client.HTTPException) as exc:
                key, bucket = type(exc).__name__, failures
            with lock:
                bucket[key] = bucket.get(key, 0) + 1
                samples.append((started, time.monotonic() - started, bucket is backends))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    print("ready", flush=True)
    for t in pool:
        t.join()
    out.write_text(json.dumps({"backends": backends, "failures": failures,
                               "samples": samples}))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "load":
        load(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
    else:
        sys.exit(f"unknown command {sys.argv[1]!r}")
