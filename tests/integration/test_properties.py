"""Hostile input, generated (Hypothesis), through the CLI and the resident
agent's boot entry, on a router in a network namespace: see properties_worker.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .harness import vpc_lab
from .properties_worker import raw_control

WORKER = str(Path(__file__).with_name("properties_worker.py"))
# Per run; VRAGENT_PROPERTY_EXAMPLES raises it (CI keeps the default).
EXAMPLES = int(os.environ.get("VRAGENT_PROPERTY_EXAMPLES", "400"))


def test_hostile_bags_end_cleanly_and_change_nothing_when_rejected(tmp_path: Path) -> None:
    with vpc_lab(tmp_path) as router:
        proc = subprocess.run(
            ["ip", "netns", "exec", router.ns, sys.executable, WORKER, str(router.root),
             str(EXAMPLES)], capture_output=True, text=True, check=False, timeout=1800)
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nproperty cases: {result['cases']} {result['outcomes']}")
    assert result["failures"] == [], "\n\n".join(result["failures"])
    # Generated bags were accepted as well as rejected: the accepted path ran too.
    assert result["outcomes"].get("accepted", 0) > 0
    assert result["outcomes"].get("rejected (2)", 0) > 0
    assert result["cases"] >= EXAMPLES


def test_hostile_bags_through_the_api_end_cleanly_and_change_nothing_when_rejected(
        tmp_path: Path) -> None:
    """The same cases as request bodies to the resident agent's API (its
    queue, FastAPI app and uvicorn on the router's unix socket): every answer
    is 200, 422 or 409 as the result's exit code says, never a 5xx."""
    with vpc_lab(tmp_path) as router:
        proc = subprocess.run(
            ["ip", "netns", "exec", router.ns, sys.executable, WORKER, str(router.root),
             str(EXAMPLES // 2), "api"], capture_output=True, text=True, check=False,
            timeout=1800)
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nproperty cases through the API: {result['cases']} {result['outcomes']}")
    assert result["failures"] == [], "\n\n".join(result["failures"])
    # The agent's log (one JSON line per command, on the worker's stderr):
    # whatever the bags held, no raw control character reached it.
    assert "\"event\": \"command\"" in proc.stderr
    assert not raw_control(proc.stderr), [ln for ln in proc.stderr.splitlines()
                                          if raw_control(ln)][:3]
    assert result["outcomes"].get("accepted", 0) > 0
    assert result["outcomes"].get("rejected (2)", 0) > 0
