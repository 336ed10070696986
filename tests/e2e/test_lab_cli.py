"""The lab remembers what it brought up: ``vragent-lab``, one process per command.

``vragent-lab --mode cloudstack up`` then ``vragent-lab failover`` used to write
a report labelled "sync-link mode": each command took the mode from its own
default. Now ``up`` records the topology, mode and advert interval on the
router containers and every later command reads them back
(vragent_lab/recorded.py; its pure logic in tests/unit/lab/test_recorded.py).
The routers' logs are read on the way, every line as one JSON record.

Two labs cannot run at once (the compose files fix their subnets), so this
works on the session lab's own project: the CLI brings it up again in
CloudStack mode, and the test gives it back as the session made it (sync-link
mode, the sample VPC) for the tests after it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from vragent.log import parse_lines
from vragent_lab.lab import Lab
from vragent_lab.recorded import PREFIX
from vragent_lab.scenario import configure


def contradiction(project: str) -> str:
    return (f"vragent-lab: the lab (project {project}) was brought up as redundant-vpc, "
            "CloudStack mode, advert interval 1 s; failover was given --mode sync-link (it "
            "runs in CloudStack mode). Leave the option out (the lab remembers how it was "
            f"brought up), or bring it up again that way: vragent-lab --project {project} "
            "--topology redundant-vpc --mode sync-link --advert-int 1 up")


def vragent_lab(lab: Lab, results: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a person runs it: a process of its own per command."""
    return subprocess.run([sys.executable, "-m", "vragent_lab.cli", "--project", lab.project,
                           "--results", str(results), *args],
                          capture_output=True, text=True, timeout=900, check=False)


def shown(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n" \
           f"{proc.stderr[-4000:]}"


@pytest.fixture
def given_back(lab: Lab) -> Iterator[Lab]:
    """The session lab, brought up again as the session made it afterwards."""
    try:
        yield lab
    finally:
        lab.up()
        configure(lab)


def test_up_in_cloudstack_mode_then_failover_reports_cloudstack_mode(
        given_back: Lab, tmp_path: Path) -> None:
    lab = given_back
    results = tmp_path / "results"
    up = vragent_lab(lab, results, "--mode", "cloudstack", "up")
    assert up.returncode == 0, shown(up)
    for r in lab.routers:
        labels = lab.container(r).labels
        assert (labels[PREFIX + "topology"], labels[PREFIX + "mode"],
                labels[PREFIX + "advert_int"]) == ("redundant-vpc", "cloudstack", "1"), r
    # The routers really run CloudStack mode: multicast VRRP on the public
    # network, no sync link.
    conf = lab.exec("r1", "cat", "/etc/vragent/keepalived.conf")
    assert "    interface eth1\n" in conf and "unicast_peer" not in conf

    # No option: the failover is the running lab's, and so is its report.
    failover = vragent_lab(lab, results, "failover")
    assert failover.returncode == 0, shown(failover)
    assert "lab report (redundant-vpc, CloudStack mode, advert_int 1)" in failover.stdout
    report_file = results / "lab-report.json"
    report = json.loads(report_file.read_text())
    assert (report["topology"], report["mode"], report["advert_int"]) == \
        ("redundant-vpc", "cloudstack", 1.0)
    assert report["failover"]["returned_as"] == "BACKUP"
    print(f"\nvragent-lab failover after --mode cloudstack up: outage "
          f"{report['failover']['outage_ms']:.0f} ms, report in {report['mode']} mode")
    # The routers' logs across it, a hard kill included: every line one record
    # (vragent/log.py), the takeover among them.
    after = report["failover"]["master_after"]
    for r in lab.routers:
        records = parse_lines(lab.exec(r, "cat", "/var/log/vragent/agent.log"))
        assert any(x["event"] == "command" for x in records), r
        if r == after:
            assert any(x["event"] == "transition" and x["state"] == "PRIMARY"
                       and x["previous"] == "BACKUP" for x in records), records[-20:]

    # An option that contradicts it is refused before anything is touched.
    routers = {r: lab.container(r).id for r in lab.routers}
    states = lab.statuses()
    reports = len(Lab(project=lab.project, workdir=results).reports())
    refused = vragent_lab(lab, results, "--mode", "sync-link", "failover")
    assert refused.returncode == 2, shown(refused)
    assert refused.stderr.strip() == contradiction(lab.project)  # no traceback either
    assert refused.stdout == ""
    assert {r: lab.container(r).id for r in lab.routers} == routers
    assert lab.statuses() == states
    assert len(Lab(project=lab.project, workdir=results).reports()) == reports
    assert json.loads(report_file.read_text()) == report

    # An option that agrees is taken; the others are read back.
    status = vragent_lab(lab, results, "--mode", "cloudstack", "status")
    assert status.returncode == 0, shown(status)
    assert status.stdout.splitlines() == [f"{r}: {s}" for r, s in states.items()]
    for option in (["--advert-int", "3"], ["--topology", "single-router"]):
        other = vragent_lab(lab, results, *option, "status")
        assert other.returncode == 2, shown(other)
        assert f"status was given {' '.join(option)}" in other.stderr
