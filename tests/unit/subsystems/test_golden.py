"""Everything the sample routers render to, compared with reviewed golden files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from vragent.config import RouterConfig
from vragent.feature import Subsystem
from vragent.features.bgp import subsystem as bgp
from vragent.features.conntrack import subsystem as conntrack
from vragent.features.ra import subsystem as ra
from vragent.features.vrrp import subsystem as vrrp
from vragent.reconcile import desired_states, subsystems
from vragent.topology import Topology

from tests.unit.builders import (
    cloudstack_pair_topology,
    isolated_topology,
    pair_topology,
    sample_topology,
    settings,
)

from .golden_files import GOLDEN, check_golden, updating

SCENARIOS: dict[str, Callable[[], tuple[RouterConfig, Topology]]] = {
    "vpc": sample_topology,
    "isolated": isolated_topology,
    "pair": pair_topology,  # the sample VPC booted as one of a redundant pair
    # the sample VPC as a management server drives a redundant one: no sync link
    "cloudstack_pair": cloudstack_pair_topology,
}
# Every registered subsystem, so a new one cannot go without golden files.
MODULES = {m.NAME: m for m in subsystems()}
# The scenarios that are one of a pair (checked below against RouterConfig.redundant).
REDUNDANT = {"pair", "cloudstack_pair"}
# Daemons only a pair runs. A standalone router renders nothing for them, which
# test_standalone_router_renders_no_pair_daemons asserts instead of empty golden files.
PAIR_ONLY = {conntrack.NAME, vrrp.NAME}
# Daemons only IPv6 needs: none of these scenarios has IPv6, so they render
# nothing (test_ipv6_only_daemons_render_nothing); their golden files are the
# dual-stack router's (test_ipv6.py).
IPV6_ONLY = {ra.NAME}
# Daemons only a bag of their own asks for (none of the scenarios sends it):
# they render nothing here (test_own_bag_daemons_render_nothing); their golden
# files are in their own test (test_bgp.py).
OWN_BAG = {bgp.NAME}
GOLDEN_CASES = sorted(
    (scenario, name)
    for scenario in SCENARIOS
    for name in MODULES
    if (scenario in REDUNDANT or name not in PAIR_ONLY) and name not in IPV6_ONLY | OWN_BAG
)


def rendered_text(module: Subsystem, cfg: RouterConfig, topo: Topology) -> str:
    # Both passes of the plan: netfilter renders every feature's traffic.
    desired = desired_states(cfg, topo, settings())[module.NAME]
    assert module.verify(desired) == []
    return module.render(desired).text()


def test_pair_only_subsystems_are_registered() -> None:
    assert PAIR_ONLY <= set(MODULES)


@pytest.mark.parametrize(("scenario", "name"), GOLDEN_CASES)
def test_golden(scenario: str, name: str) -> None:
    cfg, topo = SCENARIOS[scenario]()
    assert topo.missing == ()
    text = rendered_text(MODULES[name], cfg, topo)
    assert text  # an empty render has nothing to review
    check_golden(f"{scenario}_{name}.txt", text)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_redundant_scenarios_are_the_pairs(scenario: str) -> None:
    cfg, _ = SCENARIOS[scenario]()
    assert cfg.redundant is (scenario in REDUNDANT)


@pytest.mark.parametrize("name", sorted(PAIR_ONLY))
@pytest.mark.parametrize("scenario", sorted(set(SCENARIOS) - REDUNDANT))
def test_standalone_router_renders_no_pair_daemons(scenario: str, name: str) -> None:
    cfg, topo = SCENARIOS[scenario]()
    assert rendered_text(MODULES[name], cfg, topo) == ""


@pytest.mark.parametrize("name", sorted(IPV6_ONLY))
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_ipv6_only_daemons_render_nothing(scenario: str, name: str) -> None:
    cfg, topo = SCENARIOS[scenario]()
    assert len(topo.families) == 1
    assert rendered_text(MODULES[name], cfg, topo) == ""


@pytest.mark.parametrize("name", sorted(OWN_BAG))
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_own_bag_daemons_render_nothing(scenario: str, name: str) -> None:
    cfg, topo = SCENARIOS[scenario]()
    assert rendered_text(MODULES[name], cfg, topo) == ""


def test_rendering_is_deterministic() -> None:
    for scenario in SCENARIOS.values():
        first = [rendered_text(m, *scenario()) for m in MODULES.values()]
        second = [rendered_text(m, *scenario()) for m in MODULES.values()]
        assert first == second


def test_no_stray_golden_files() -> None:
    expected = {f"{s}_{n}.txt" for s, n in GOLDEN_CASES}
    present = {p.name for p in Path(GOLDEN).glob("*.txt")}
    if updating():
        for stale in present - expected:
            (GOLDEN / stale).unlink()
        present &= expected
    assert present == expected


def test_check_golden_compares_and_updates(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from . import golden_files

    monkeypatch.setattr(golden_files, "GOLDEN", tmp_path)
    monkeypatch.delenv("VRAGENT_UPDATE_GOLDEN", raising=False)
    with pytest.raises(pytest.fail.Exception, match="missing"):
        check_golden("x.txt", "one\n")
    monkeypatch.setenv("VRAGENT_UPDATE_GOLDEN", "1")
    check_golden("x.txt", "one\n")
    assert (tmp_path / "x.txt").read_text() == "one\n"
    monkeypatch.setenv("VRAGENT_UPDATE_GOLDEN", "0")
    check_golden("x.txt", "one\n")
    with pytest.raises(AssertionError, match="differs from its golden file"):
        check_golden("x.txt", "two\n")
    assert (tmp_path / "x.txt").read_text() == "one\n"  # comparing never writes
