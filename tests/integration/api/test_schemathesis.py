"""schemathesis against the router's published OpenAPI description, from the
management network with the router's token: every operation, positive and
negative cases (VRAGENT_SCHEMATHESIS_EXAMPLES per operation). No response may
be a 5xx or break the description; none may apply a bag partly: at the end
the system matches the store. ``cmdline`` is left out: a boot-parameters bag
may move the control address the run talks to (its own tests cover it)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from .conftest import BASE, TOKEN, ApiRouter
from .test_api import setup

EXAMPLES = os.environ.get("VRAGENT_SCHEMATHESIS_EXAMPLES", "10")
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


def test_schemathesis_finds_no_server_error_and_no_partial_apply(
        api_router: ApiRouter, tmp_path: Path) -> None:
    r = api_router
    setup(r)
    proc = subprocess.run(
        ["ip", "netns", "exec", r.ctl, SCHEMATHESIS, "run", f"{BASE}/openapi.json",
         "-H", f"Authorization: Bearer {TOKEN}", "--checks", "all",
         # Schema-valid bags may still be refused on meaning (an address that is
         # not this router's, a tier that does not exist): 409/422 is right.
         "--exclude-checks", "positive_data_acceptance",
         "--exclude-path", "/v1/bags/cmdline", "-n", EXAMPLES, "--seed", "1",
         "--workers", "1", "--request-timeout", "60", "--no-color"],
        capture_output=True, text=True, check=False, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    ran = re.search(r"(\d+) generated, (\d+) passed", proc.stdout)
    assert ran is not None, proc.stdout[-3000:]
    print(f"\nschemathesis: {ran.group(1)} cases generated, {ran.group(2)} passed")
    assert int(ran.group(2)) > 500
    diff = r.router.run("diff")
    assert diff.stdout.strip().endswith("system already matches"), diff.stdout
    assert json.loads(r.router.run("show").stdout)
