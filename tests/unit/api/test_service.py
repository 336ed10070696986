"""The command queue's results: what each error becomes for the API and the CLI."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from vragent.api.service import CommandService, Job, Result, _typed, log_command
from vragent.errors import (
    ApplyError,
    BagError,
    RevisionNotKept,
    StoreError,
    VerifyError,
    VragentError,
)
from vragent.log import setup
from vragent.settings import Settings
from vragent.store.batch import Command


@pytest.mark.parametrize(("error", "outcome", "status", "code"), [
    (None, "applied", 200, 0),
    (BagError("ips", ["x: bad"]), "rejected", 422, 2),
    (VerifyError(["no tier"]), "unrealisable", 409, 3),
    (ApplyError("nft said no"), "failed", 500, 4),
    (RevisionNotKept("revision 9 is not kept"), "not-kept", 404, 5),
    (StoreError("unreadable"), "store-unreadable", 500, 5),
    (VragentError("internal"), "failed", 500, 1),
])
def test_each_error_has_its_outcome_status_and_exit_code(
        error: VragentError | None, outcome: str, status: int, code: int) -> None:
    result = Result("apply", 7, ["netfilter: x"], [], error)
    assert (result.outcome, result.http_status, result.exit_code) == (outcome, status, code)
    body = result.to_json()
    assert body["outcome"] == outcome and body["exit_code"] == code and body["revision"] == 7
    if error is None:
        assert "error" not in body
    else:
        assert body["error"]["message"] == str(error)
        assert body["error"]["problems"] == list(getattr(error, "problems", []))


def test_a_bag_endpoint_fills_in_the_type_and_refuses_another() -> None:
    assert _typed(Command("a.json", {"device": "eth2"}), "networkacl").bag == {
        "type": "networkacl", "device": "eth2"}
    with pytest.raises(BagError) as info:
        _typed(Command("a.json", {"type": "ips"}), "networkacl")
    assert "this is the networkacl endpoint (got 'ips')" in info.value.problems[0]


def test_the_log_line_names_the_command_never_its_content(
        capsys: pytest.CaptureFixture[str]) -> None:
    job = Job("apply", lambda agent: None, {"sources": ["vm_password.json"]})  # type: ignore
    result = Result("apply", 3, ["dhcp: 1 entry"], [], BagError("vmpassword", ["password: x"]))
    result.duration_s = 0.0123
    root = logging.getLogger()
    level = root.level
    handler = setup(hooks=False)  # the resident agent's log: JSON lines on stderr
    try:
        log_command(job, result, ["dhcp"])
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    line = json.loads(capsys.readouterr().err)
    assert line["event"] == "command" and line["kind"] == "apply"
    assert line["sources"] == ["vm_password.json"] and line["outcome"] == "rejected"
    assert line["exit_code"] == 2 and line["duration_ms"] == 12.3 and line["revision"] == 3
    assert "password: x" not in json.dumps(line)


def test_jobs_run_in_the_order_queued_and_a_crashing_one_does_not_stop_the_queue(
        tmp_path: Path) -> None:
    service = CommandService(Settings(root=tmp_path))
    order: list[int] = []

    def job(n: int) -> Job:
        def run(agent: object) -> object:
            order.append(n)
            if n == 2:
                raise RuntimeError("boom")
            from vragent.agent import Outcome
            return Outcome(n)
        return Job("reconcile", run, {})  # type: ignore[arg-type]

    futures = [service.submit(job(n)) for n in range(5)]
    service.start()
    results = [f.result(10) for f in futures]
    service.stop()
    assert order == [0, 1, 2, 3, 4]
    assert [r.revision for r in results if r.error is None] == [0, 1, 3, 4]
    assert "internal error: RuntimeError: boom" in str(results[2].error)
