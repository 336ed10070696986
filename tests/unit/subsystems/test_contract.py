"""Every subsystem has the declared shape (vragent.subsystems.base.Subsystem).

The registry is the one list: every module of the package is in it, each has
the four steps with the protocol's parameters, render returns a Rendered,
and nothing outside ``apply`` touches the system (rendering runs here against
a root that does not exist).
"""

from __future__ import annotations

import inspect
import pkgutil
from types import ModuleType

import pytest
from vragent import cli, subsystems
from vragent.subsystems.base import Rendered, Subsystem

from tests.unit.builders import pair_topology, sample_topology, settings

NOT_SUBSYSTEMS = {"base"}  # the contract itself
STEPS = ("desired", "verify", "render", "apply")


def _protocol_params(step: str) -> list[str]:
    return list(inspect.signature(getattr(Subsystem, step)).parameters)[1:]  # minus self


def test_every_module_of_the_package_is_registered() -> None:
    names = {m.name for m in pkgutil.iter_modules(subsystems.__path__)} - NOT_SUBSYSTEMS
    registered = {m.__name__.rsplit(".", 1)[1] for m in subsystems.REGISTRY}  # type: ignore[attr-defined]
    assert names == registered


def test_names_are_unique_and_match_the_modules() -> None:
    assert len(set(subsystems.NAMES)) == len(subsystems.NAMES)
    for module in subsystems.REGISTRY:
        assert module.NAME == module.__name__.rsplit(".", 1)[1]  # type: ignore[attr-defined]
        assert subsystems.by_name(module.NAME) is module
    with pytest.raises(KeyError, match="unknown subsystem"):
        subsystems.by_name("firewall")


@pytest.mark.parametrize("module", subsystems.REGISTRY, ids=subsystems.NAMES)
def test_module_has_the_four_steps_with_the_protocol_signatures(module: ModuleType) -> None:
    for step in STEPS:
        fn = getattr(module, step)
        assert inspect.isfunction(fn), step
        assert list(inspect.signature(fn).parameters) == _protocol_params(step), step
    # dry_run defaults to False: a forgotten argument must never mean "apply".
    assert inspect.signature(module.apply).parameters["dry_run"].default is False


@pytest.mark.parametrize("module", subsystems.REGISTRY, ids=subsystems.NAMES)
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
    assert tuple(what.choices) == subsystems.NAMES
