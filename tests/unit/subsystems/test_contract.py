"""Every feature has the declared shape (vragent.feature), and every
subsystem the four steps (vragent.feature.Subsystem).

The registry (vragent.features.FEATURES) is the one list: every package of
vragent/features is in it, each subsystem has the four steps with the
protocol's parameters, render returns a Rendered, and nothing outside
``apply`` touches the system (rendering runs here against a root that does
not exist).
"""

from __future__ import annotations

import inspect
import pkgutil
from types import ModuleType

import pytest
from vragent import cli, features
from vragent.feature import Rendered, Subsystem
from vragent.reconcile import subsystems

from tests.unit.builders import pair_topology, sample_topology, settings

SUBSYSTEMS = subsystems()
NAMES = [m.NAME for m in SUBSYSTEMS]
STEPS = ("desired", "verify", "render", "apply")


def _protocol_params(step: str) -> list[str]:
    return list(inspect.signature(getattr(Subsystem, step)).parameters)[1:]  # minus self


def test_every_package_of_features_is_registered() -> None:
    packages = {m.name for m in pkgutil.iter_modules(features.__path__) if m.ispkg}
    assert packages == set(features.FEATURES)


def test_names_are_unique_and_match_the_packages() -> None:
    names = [f.name for f in features.features()]
    assert len(set(names)) == len(names) == len(features.FEATURES)
    for name, f in zip(features.FEATURES, features.features(), strict=True):
        assert f.name == name
        assert features.by_name(name) is f
        if f.subsystem is not None:
            assert f.subsystem.NAME == name
    with pytest.raises(KeyError, match="unknown feature"):
        features.by_name("firewall")


@pytest.mark.parametrize("module", SUBSYSTEMS, ids=NAMES)
def test_module_has_the_four_steps_with_the_protocol_signatures(module: ModuleType) -> None:
    for step in STEPS:
        fn = getattr(module, step)
        assert inspect.isfunction(fn), step
        assert list(inspect.signature(fn).parameters) == _protocol_params(step), step
    # dry_run defaults to False: a forgotten argument must never mean "apply".
    assert inspect.signature(module.apply).parameters["dry_run"].default is False


@pytest.mark.parametrize("module", SUBSYSTEMS, ids=NAMES)
@pytest.mark.parametrize("scenario", [sample_topology, pair_topology])
def test_pure_steps_run_without_a_system(module: Subsystem, scenario: object) -> None:
    cfg, topo = scenario()  # type: ignore[operator]
    desired = module.desired(cfg, topo, settings())
    assert isinstance(module.verify(desired), list)
    rendered = module.render(desired)
    assert isinstance(rendered, Rendered)
    assert isinstance(rendered.text(), str)


def test_cli_render_choices_are_the_registry() -> None:
    parser = cli._parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    render = sub.choices["render"]  # type: ignore[index]
    what = next(a for a in render._actions if a.dest == "what")
    assert tuple(what.choices) == features.FEATURES
