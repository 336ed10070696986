"""The pair upgrade's pure decisions: whom first, when a backup is in sync,
which revision a router holds, which NICs to plug back, losses per step.

The procedure improves on upstream's rolling restart
(apache/cloudstack NetworkOrchestrator.rollingRestartRouters): see
vragent_lab/upgrade.py; tests/e2e/test_upgrade.py runs it on real containers.
"""

from __future__ import annotations

import pytest
from vragent_lab.lab import LabError
from vragent_lab.upgrade import (
    UpgradeRefused,
    compose_overrides,
    current_revision,
    established,
    extra_networks,
    image_ref,
    order,
    phase_losses,
    sync_problem,
)

# conntrackd -i (internal cache, both directions) and -e (external cache, the
# original direction only), as conntrackd 1.4.7 prints them in the lab.
INTERNAL = """\
tcp      6 ESTABLISHED src=10.10.1.10 dst=100.64.99.1 sport=55826 dport=7000 \
src=100.64.99.1 dst=100.64.10.10 sport=7000 dport=55826 [ASSURED] [active since 2s]
tcp      6 ESTABLISHED src=100.64.10.100 dst=100.64.10.11 sport=40000 dport=2222 \
src=10.10.1.10 dst=100.64.10.100 sport=22 dport=40000 [ASSURED] [active since 2s]
tcp      6 TIME_WAIT src=10.10.1.10 dst=100.64.99.1 sport=55800 dport=7000 \
src=100.64.99.1 dst=100.64.10.10 sport=7000 dport=55800 [ASSURED] [active since 9s]
udp      17 src=10.10.1.10 dst=100.64.99.1 sport=41000 dport=7001 \
src=100.64.99.1 dst=100.64.10.10 sport=7001 dport=41000 [ASSURED] [active since 3s]

"""
EXTERNAL = """\
tcp      6 ESTABLISHED src=10.10.1.10 dst=100.64.99.1 sport=55826 dport=7000 [ASSURED] \
[active since 2s]
tcp      6 ESTABLISHED src=100.64.10.100 dst=100.64.10.11 sport=40000 dport=2222 \
[ASSURED] [active since 2s]
"""


def test_the_backup_is_replaced_first() -> None:
    assert order({"r1": "PRIMARY", "r2": "BACKUP"}) == ("r2", "r1")
    assert order({"r1": "BACKUP", "r2": "PRIMARY"}) == ("r1", "r2")


@pytest.mark.parametrize("statuses", [
    {"r1": "PRIMARY", "r2": "PRIMARY"},  # a partition: two masters
    {"r1": "PRIMARY", "r2": "FAULT"},
    {"r1": "PRIMARY", "r2": "DOWN"},
    {"r1": "BACKUP", "r2": "BACKUP"},
    {"r1": "PRIMARY", "r2": "UNKNOWN"},
    {"r1": "PRIMARY"},
    {},
])
def test_a_pair_that_is_not_whole_is_refused_naming_each_state(
        statuses: dict[str, str]) -> None:
    with pytest.raises(UpgradeRefused) as exc:
        order(statuses)
    message = str(exc.value)
    assert "not healthy" in message
    for router, state in statuses.items():
        assert f"{router}: {state}" in message


def test_established_reads_original_directions_of_established_tcp_only() -> None:
    want = {("10.10.1.10", "100.64.99.1", 55826, 7000),
            ("100.64.10.100", "100.64.10.11", 40000, 2222)}
    assert established(INTERNAL) == want
    assert established(EXTERNAL) == want
    assert established("") == set()


def test_a_backup_holding_every_connection_of_the_master_is_in_sync() -> None:
    master, backup = established(INTERNAL), established(EXTERNAL)
    assert sync_problem(master, backup, 2) == ""
    # The backup may hold more (entries the master already forgot).
    assert sync_problem(master, backup | {("10.10.2.10", "100.64.99.1", 1, 7000)}, 2) == ""


def test_a_backup_missing_a_connection_is_not_in_sync() -> None:
    master = established(INTERNAL)
    backup = {("10.10.1.10", "100.64.99.1", 55826, 7000)}
    assert sync_problem(master, backup, 2) == (
        "1 of the master's 2 established connections are not in the backup's "
        "conntrackd cache yet")


def test_empty_caches_prove_nothing() -> None:
    """A master that tracks fewer connections than are held open (conntrackd
    not yet caught up, or not running) is no proof of sync."""
    problem = sync_problem(set(), set(), 52)
    assert "tracks 0 established connections, fewer than the 52 held open" in problem


def test_the_current_revision_is_the_last_line_of_the_history() -> None:
    history = ("     1  2026-12-06T11:06:09  apply ips.json.1  [ips]\n"
               "    12  2026-12-06T11:06:17  apply vmdata.json.2  [vmdata]\n")
    assert current_revision(history) == 12


@pytest.mark.parametrize("history", ["", "\n", "vragent: no resident agent\n"])
def test_a_history_without_revisions_is_an_error_quoting_it(history: str) -> None:
    with pytest.raises(LabError, match="cannot read the current revision"):
        current_revision(history)


def test_networks_beyond_the_compose_file_come_back_in_nic_order() -> None:
    attached = {"p_eth0-ctl": "169.254.100.12", "p_eth1-pub": "100.64.10.3",
                "p_tier10": "10.10.10.3", "p_tier4": "10.10.4.3", "p_tier5": "10.10.5.3"}
    macs = {net: f"02:42:00:00:00:{i:02x}" for i, net in enumerate(attached)}
    names = {macs["p_eth0-ctl"]: "eth0", macs["p_eth1-pub"]: "eth1",
             # Plugged at run time in this order: tier10 before tier4, and
             # eth10 after eth9 (numbers, not text, order NICs).
             macs["p_tier10"]: "eth9", macs["p_tier4"]: "eth10", macs["p_tier5"]: "eth11"}
    extras = extra_networks(attached, {"p_eth0-ctl", "p_eth1-pub"}, names, macs)
    assert extras == [("p_tier10", "10.10.10.3"), ("p_tier4", "10.10.4.3"),
                      ("p_tier5", "10.10.5.3")]
    assert extra_networks(attached, set(attached), names, macs) == []


def test_the_new_container_keeps_the_old_ones_boot_parameters_and_lab_record() -> None:
    labels = {"org.vragent.lab.topology": "redundant-vpc", "org.vragent.lab.mode": "cloudstack",
              "org.vragent.lab.advert_int": "0.2", "com.docker.compose.service": "r2"}
    assert compose_overrides("r2", "vragent-router:next", "type=vpcrouter name=r-2-VM",
                             labels) == {
        "VRAGENT_IMAGE": "vragent-router:next",
        "VRLAB_R2_CMDLINE": "type=vpcrouter name=r-2-VM",
        "VRLAB_MODE": "cloudstack", "VRLAB_ADVERT_INT": "0.2"}
    # A lab brought up before the record existed: only what it has.
    assert compose_overrides("r1", "x", "c", {}) == {"VRAGENT_IMAGE": "x",
                                                      "VRLAB_R1_CMDLINE": "c"}


def test_losses_per_step_from_cumulative_counts() -> None:
    assert phase_losses([0, 1, 1], 1) == [0, 1, 0]
    # A packet still in flight at the last mark and lost later counts in the last step.
    assert phase_losses([0, 0, 0], 2) == [0, 0, 2]
    assert phase_losses([], 0) == []


@pytest.mark.parametrize("ref", ["vragent-router:latest", "vragent-router:5a4188a3f0ad",
                                 "sha256:7f43c3f0e4a6", "registry.lab/vr/router@sha256:ab12"])
def test_image_references_are_accepted(ref: str) -> None:
    assert image_ref(ref) == ref


@pytest.mark.parametrize("ref", ["", "-rm", "a b", "x;rm", "$(id)", "router:${TAG}", "x" * 300])
def test_anything_else_is_refused_naming_the_value(ref: str) -> None:
    with pytest.raises(UpgradeRefused, match="--image") as exc:
        image_ref(ref)
    assert repr(ref) in str(exc.value)
