"""The lab remembers what it brought up (vragent_lab/recorded.py, pure).

``vragent-lab --mode cloudstack up`` then ``vragent-lab failover`` used to
report a sync-link failover: each command took the mode from its own default.
These cover how a command's options come from the routers' labels, and that a
contradicting option is refused with a message naming both values. The CLI
and the labels on real containers are covered by tests/e2e/test_lab_cli.py.
"""

from __future__ import annotations

import pytest
from vragent_lab import cli
from vragent_lab.lab import Lab
from vragent_lab.recorded import (
    PREFIX,
    Contradiction,
    Given,
    Options,
    describe,
    resolve,
    running,
)

CLOUDSTACK = Options("redundant-vpc", "cloudstack", 1.0)


def labels(topology: str = "redundant-vpc", mode: str = "cloudstack",
           advert: str = "1") -> dict[str, str]:
    return {"com.docker.compose.service": "r1", PREFIX + "topology": topology,
            PREFIX + "mode": mode, PREFIX + "advert_int": advert}


def test_what_up_records_is_what_running_reads_back() -> None:
    for opts in (CLOUDSTACK, Options("single-router", "sync-link", 0.5),
                 Options("redundant-vpc", "sync-link", 3.0)):
        env = Lab(opts.topology, opts.mode, opts.advert_int).compose_env()
        # The compose files render these variables into the routers' labels.
        recorded = {PREFIX + "topology": opts.topology, PREFIX + "mode": env["VRLAB_MODE"],
                    PREFIX + "advert_int": env["VRLAB_ADVERT_INT"]}
        assert running({"r1": recorded, "r2": recorded}) == opts


def test_nothing_recorded_is_nothing_running() -> None:
    assert running({}) is None
    # A lab brought up before the labels were written: no record either.
    assert running({"r1": {"com.docker.compose.service": "r1"}}) is None
    assert running({"r1": labels(topology="", mode="", advert="")}) is None


@pytest.mark.parametrize(("bad", "message"), [
    (labels(mode="multicast"), "r1: label org.vragent.lab.mode='multicast' is not one of"),
    (labels(topology="mesh"), "r1: label org.vragent.lab.topology='mesh' is not one of"),
    (labels(advert="fast"), "r1: label org.vragent.lab.advert_int='fast' is not a positive"),
    (labels(advert="nan"), "advert_int='nan' is not a positive"),
    (labels(advert="0"), "advert_int='0' is not a positive"),
    (labels(advert=""), "advert_int='' is not a positive"),
])
def test_a_label_the_lab_does_not_write_is_named(bad: dict[str, str], message: str) -> None:
    with pytest.raises(Contradiction, match=message):
        running({"r1": bad})


def test_routers_brought_up_differently_are_named_both() -> None:
    with pytest.raises(Contradiction) as info:
        running({"r1": labels(), "r2": labels(mode="sync-link")})
    assert str(info.value).startswith(
        "the routers were brought up differently: r1 as redundant-vpc, CloudStack mode, "
        "advert interval 1 s, r2 as redundant-vpc, sync-link mode, advert interval 1 s")


@pytest.mark.parametrize("command", ["failover", "status", "report", "lb", "vpn", "apply",
                                     "upgrade", "down"])
def test_a_command_after_up_takes_what_runs_not_its_defaults(command: str) -> None:
    assert resolve(command, Given(), CLOUDSTACK, "vrlab") == CLOUDSTACK
    # Options that agree are accepted (an advert interval written another way too).
    agree = Given("redundant-vpc", "cloudstack", 1.0000000001)
    assert resolve(command, agree, CLOUDSTACK, "vrlab") == CLOUDSTACK


def test_a_contradicting_option_is_refused_naming_both_values() -> None:
    with pytest.raises(Contradiction) as info:
        resolve("failover", Given(mode="sync-link"), CLOUDSTACK, "vrlab")
    assert str(info.value) == (
        "the lab (project vrlab) was brought up as redundant-vpc, CloudStack mode, advert "
        "interval 1 s; failover was given --mode sync-link (it runs in CloudStack mode). "
        "Leave the option out (the lab remembers how it was brought up), or bring it up "
        "again that way: vragent-lab --topology redundant-vpc --mode sync-link "
        "--advert-int 1 up")


def test_every_contradicting_option_is_named_and_the_project_when_not_the_default() -> None:
    with pytest.raises(Contradiction) as info:
        resolve("status", Given("single-router", "sync-link", 3.0), CLOUDSTACK, "vrlabcli")
    text = str(info.value)
    assert "the lab (project vrlabcli) was brought up as" in text
    assert ("status was given --topology single-router (it runs redundant-vpc), --mode "
            "sync-link (it runs in CloudStack mode), --advert-int 3 (it runs with 1 s)") in text
    assert text.endswith("vragent-lab --project vrlabcli --topology single-router --mode "
                         "sync-link --advert-int 3 up")


@pytest.mark.parametrize("command", ["up", "run"])
def test_up_records_its_options_whatever_ran_before(command: str) -> None:
    assert resolve(command, Given(), CLOUDSTACK, "vrlab") == Options()
    assert resolve(command, Given(mode="cloudstack", advert_int=2.0), None, "vrlab") == \
        Options("redundant-vpc", "cloudstack", 2.0)


def test_with_nothing_running_the_options_or_the_defaults_apply() -> None:
    assert resolve("down", Given(), None, "vrlab") == Options()
    assert resolve("status", Given(topology="single-router"), None, "vrlab") == \
        Options("single-router", "sync-link", 1.0)


def test_the_report_names_the_mode_as_an_operator_does() -> None:
    assert describe(CLOUDSTACK) == "redundant-vpc, CloudStack mode, advert interval 1 s"


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "256", "fast"])
def test_the_cli_refuses_an_advert_interval_that_is_not_one(
        bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--advert-int", bad, "status"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --advert-int: {bad!r} is not a number of seconds in (0, 255]" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("bad", ["", "Vrlab", "vr-lab", "1lab", "vrlab;rm", "averylongname"])
def test_the_cli_refuses_a_project_that_cannot_name_the_lab(
        bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--project", bad, "status"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --project: {bad!r} is not a project name" in err
    assert "Traceback" not in err
