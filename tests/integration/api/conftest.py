"""A standalone sample-VPC router run as an appliance (supervisord, the
resident agent), its boot parameters carrying an API token, so its API
listens on the control address (169.254.0.10) as well as on its unix socket."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from vragent.api.client import Client
from vragent_lab.netns import in_ns, wait_for

from ..harness import Router, ns_of, vpc_lab
from ..services.conftest import Appliance

TOKEN = "t0k3n-" + "a1B2c3D4" * 5
CONTROL_IP = "169.254.0.10"
PORT = 3923
BASE = f"http://{CONTROL_IP}:{PORT}"


@dataclass
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class ApiRouter:
    def __init__(self, router: Router, appliance: Appliance) -> None:
        self.router = router
        self.appliance = appliance
        self.ctl = ns_of(router, "ctl")
        self.local = Client(router.root / "run/vragent/api.sock")

    def http(self, method: str, path: str, body: bytes | None = None,
             token: str | None = TOKEN, headers: tuple[str, ...] = (),
             host: str = CONTROL_IP, ns: str | None = None, timeout: float = 30) -> Response:
        """A request from the management network (the ctl namespace), with curl."""
        argv = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-m", str(timeout),
                "-X", method]
        if token is not None:
            argv += ["-H", f"Authorization: Bearer {token}"]
        for h in headers:
            argv += ["-H", h]
        if body is not None:
            argv += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        argv.append(f"http://{host}:{PORT}{path}")
        proc = subprocess.run(["ip", "netns", "exec", ns or self.ctl, *argv], input=body,
                              capture_output=True, check=False, timeout=timeout + 5)
        out, _, code = proc.stdout.rpartition(b"\n")
        return Response(int(code or b"0"), out)

    def rev(self) -> int:
        status, data = self.local.json("GET", "/v1/revisions")
        assert status == 200
        return int(data[-1]["revision"]) if data else 0

    def nft(self) -> str:
        return in_ns(self.router.ns, ["nft", "list", "table", "inet", "vragent"])


def api_cmdline(root: Path) -> None:
    path = root / "var/cache/cloud/cmd_line.json"
    doc = json.loads(path.read_text())
    doc["cmd_line"]["api_token"] = TOKEN
    path.write_text(json.dumps(doc))


@pytest.fixture
def api_router(tmp_path: Path) -> Iterator[ApiRouter]:
    with vpc_lab(tmp_path) as router:
        api_cmdline(router.root)
        app = Appliance(router)
        try:
            app.start()
            r = ApiRouter(router, app)
            wait_for(lambda: r.http("GET", "/v1/state", timeout=2).status == 200, 20,
                     "the API to answer on the control address")
            yield r
        finally:
            app.stop()
