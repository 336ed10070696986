"""HTTP backends and an HTTP load client for the load-balancer scenario.

Tools (run in a lab container's namespace with ``ip netns exec``):

``serve NAME PORT``: a threaded HTTP server answering every GET with its
name and the forwarding headers it got (``NAME proto=<X-Forwarded-Proto>
for=<X-Forwarded-For>``) and a new session cookie (``JSESSIONID``); prints
"ready" once bound.

``load URL``: requests on new connections, one each, in ``--threads`` threads
until its stdin closes; one JSON line per request on stdout:
``{"start": unix, "end": unix, "backend": NAME}`` or ``{..., "error": WHAT}``.

Controllers (in the lab process): ``HttpBackend`` and ``HttpLoad``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


def serve(name: str, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = (f"{name} proto={self.headers.get('X-Forwarded-Proto', '')} "
                    f"for={self.headers.get('X-Forwarded-For', '')}\n").encode()
            self.send_response(200)
            # An application session cookie, for AppCookie stickiness.
            self.send_header("Set-Cookie", f"JSESSIONID={name}-{time.monotonic_ns()}")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


def load(url: str, threads: int, timeout: float, pause: float) -> None:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    lock = threading.Lock()
    done = threading.Event()

    def worker() -> None:
        while not done.is_set():
            started = time.time()
            out: dict[str, Any] = {"start": started}
            try:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
                conn.request("GET", parts.path or "/")
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace").strip()
                conn.close()
                if resp.status == 200:
                    out["backend"] = body.split(" ", 1)[0]
                else:
                    out["error"] = f"http {resp.status}"
            except (OSError, http.client.HTTPException) as exc:
                out["error"] = type(exc).__name__
            out["end"] = time.time()
            with lock:
                try:
                    print(json.dumps(out), flush=True)
                except BrokenPipeError:
                    done.set()
            time.sleep(pause)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    print(json.dumps({"ready": True}), flush=True)
    for t in pool:
        t.start()
    sys.stdin.read()  # until the controller closes it
    done.set()
    for t in pool:
        t.join(timeout + 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vragent_lab.web", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("serve")
    p.add_argument("name")
    p.add_argument("port", type=int)
    p = sub.add_parser("load")
    p.add_argument("url")
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--pause", type=float, default=0.02)
    args = parser.parse_args(argv)
    try:
        if args.mode == "serve":
            serve(args.name, args.port)
        else:
            load(args.url, args.threads, args.timeout, args.pause)
    except KeyboardInterrupt:
        return 130
    return 0


# ---------------------------------------------------------------------------
# Controllers (run in the lab process)


def _spawn(ns: str, *argv: str, stdin: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "vragent_lab.web",
                             *argv], stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def _end(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


class HttpBackend:
    """``serve`` in ``ns``: a context that returns once the server is bound."""

    def __init__(self, ns: str, name: str, port: int = 80) -> None:
        self.ns, self.name, self.port = ns, name, port
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        self.proc = _spawn(self.ns, "serve", self.name, str(self.port),
                           stdin=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            _end(self.proc)
            raise RuntimeError(f"the HTTP backend {self.name} in {self.ns} did not start "
                               f"(port {self.port} taken?)")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc is not None:
            _end(self.proc)


class HttpLoad:
    """``load`` in ``ns``: every request's outcome, read as it happens."""

    def __init__(self, ns: str, url: str, threads: int = 4, timeout: float = 1.0) -> None:
        self.ns, self.url, self.threads, self.timeout = ns, url, threads, timeout
        self.proc: subprocess.Popen[str] | None = None
        self.outcomes: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Self:
        self.proc = _spawn(self.ns, "load", self.url, "--threads", str(self.threads),
                           "--timeout", str(self.timeout), stdin=subprocess.PIPE)
        assert self.proc.stdout is not None
        if "ready" not in self.proc.stdout.readline():
            _end(self.proc)
            raise RuntimeError(f"the HTTP load client in {self.ns} did not start")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                outcome = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                self.outcomes.append(outcome)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.outcomes)

    def stop(self) -> list[dict[str, Any]]:
        if self.proc is not None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=self.timeout + 5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            _end(self.proc)
            if self._reader is not None:
                self._reader.join(5)
            self.proc = None
        return self.snapshot()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def summary(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals, failures by error, answers by backend, the longest gap between
    successful responses (ms) and when it ended (the first success after it)."""
    ok = sorted(o["end"] for o in outcomes if "backend" in o)
    backends: dict[str, int] = {}
    errors: dict[str, int] = {}
    for o in outcomes:
        if "backend" in o:
            backends[o["backend"]] = backends.get(o["backend"], 0) + 1
        else:
            errors[o["error"]] = errors.get(o["error"], 0) + 1
    gap, gap_end = max(((b - a, b) for a, b in zip(ok, ok[1:], strict=False)),
                       default=(0.0, 0.0))
    return {"requests": len(outcomes), "failed": sum(errors.values()), "backends": backends,
            "errors": errors, "max_gap_ms": round(gap * 1000), "max_gap_end": gap_end}


if __name__ == "__main__":
    sys.exit(main())
