"""Every feature has the declared shape (vragent.feature), and every
subsystem the four steps (vragent.feature.Subsystem).

The registry (vragent.features.FEATURES) is the one list: every package of
vragent/features is in it, each subsystem has the four steps with the
protocol's parameters, render returns a Rendered, and nothing outside
``apply`` touches the system (rendering runs here against a root that does
not exist).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import vragent
from vragent import cli, features
from vragent.agent import Agent
from vragent.config import RouterConfig
from vragent.errors import VragentError
from vragent.feature import Files, Rendered, Subsystem, Traffic
from vragent.reconcile import desired_states, subsystems
from vragent.topology import Topology

from tests.unit.builders import (
    cloudstack_pair_topology,
    isolated_topology,
    pair_topology,
    sample_topology,
    settings,
)

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


def test_cli_render_takes_any_feature_and_the_agent_names_the_known_ones(
        tmp_path: Path) -> None:
    parser = cli._parser()
    assert parser.parse_args(["render", "toy"]).what == "toy"  # one of $VRAGENT_FEATURES
    with pytest.raises(VragentError) as exc:
        Agent(settings().__class__(root=tmp_path)).render("nosuch")
    assert str(exc.value) == f"render: no feature renders 'nosuch' (known: {', '.join(NAMES)})"


# -- ownership: a feature lives in one place --------------------------------------

SRC = Path(vragent.__file__).parent
_WORD = re.compile(r"[a-z0-9_]+")
# A port or protocol number in a string: "udp dport { 53, 67 }", "port=53", "l4proto 112".
_PORT_TEXT = re.compile(r"(?:port|proto)\D{0,4}(\d+)", re.IGNORECASE)


def _names_a_port(name: str) -> bool:
    return any(w in name.lower() for w in ("port", "proto"))


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                found.add(id(body[0].value))
    return found


def _code(path: Path) -> tuple[set[str], set[int]]:
    """The words a module's code uses (identifiers, attributes, strings; not
    comments or docstrings) and the ports it writes down: integers given to a
    name or keyword about a port or protocol (``PORT = 3780``), and numbers
    after "port" or "proto" in its strings ("udp dport 53")."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _docstrings(tree)
    words: set[str] = set()
    ints: set[int] = set()
    for node in ast.walk(tree):
        value = getattr(node, "value", None)
        number = value.value if isinstance(value, ast.Constant) \
            and type(value.value) is int else None
        if number is not None:
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and _names_a_port(t.id) for t in node.targets):
                ints.add(number)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                    and _names_a_port(node.target.id):
                ints.add(number)
            elif isinstance(node, ast.keyword) and node.arg and _names_a_port(node.arg):
                ints.add(number)
        text = None
        if isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute):
            text = node.attr
        elif isinstance(node, ast.arg):
            text = node.arg
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            text = node.name
        elif isinstance(node, ast.alias):
            text = node.asname or node.name
        elif isinstance(node, ast.Constant) and id(node) not in skip \
                and isinstance(node.value, str):
            text = node.value
            ints.update(int(n) for n in _PORT_TEXT.findall(node.value))
        if text:
            words.update(_WORD.findall(text.lower()))
    return words, ints


@dataclass(frozen=True)
class Owned:
    feature: str
    home: Path  # the feature's package
    helpers: frozenset[Path]  # system/<daemon>.py: the daemon's system helper
    names: frozenset[str]  # its daemons' and bag types' names
    ports: frozenset[int]  # what its traffic opens: ports and IP protocol numbers


def _scenarios() -> list[tuple[RouterConfig, Topology]]:
    return [sample_topology(), pair_topology(), pair_topology(sync_bfd="1", sync_peer="10.0.0.2"),
            cloudstack_pair_topology(), isolated_topology()]


def owned() -> list[Owned]:
    found = []
    for pkg, f in zip(features.packages(), features.features(), strict=True):
        module = importlib.import_module(pkg)
        home = Path(module.__file__ or "").parent
        daemons = features.daemons_of(pkg, settings())
        ports: set[int] = set()
        for cfg, topo in _scenarios():
            d = desired_states(cfg, topo, settings()).get(f.name)
            t = f.traffic(cfg, settings(), d) if f.traffic is not None else Traffic()
            # A port on one of the router's addresses the bag names (a load
            # balancer's public IP) is configuration, not the feature's own.
            ports |= {p for o in t.accept if not o.daddr for p in o.ports}
            ports |= {o.proto for o in (*t.accept, *t.own_source) if isinstance(o.proto, int)}
        found.append(Owned(
            feature=f.name, home=home,
            helpers=frozenset(SRC / "system" / f"{d.name}.py" for d in daemons),
            names=frozenset({d.name for d in daemons} | {b.name for b in f.bags}),
            ports=frozenset(ports)))
    return found


def violations(owners: list[Owned], files: list[Path], root: Path = SRC) -> list[str]:
    found = []
    registry_line = Path(features.__file__ or "")  # FEATURES: the one place features are named
    for path in files:
        if path == registry_line:
            continue
        words, ints = _code(path)
        for o in owners:
            if path.is_relative_to(o.home) or path in o.helpers:
                continue
            for name in sorted(o.names & words):
                found.append(f"{path.relative_to(root)} names {name!r} of feature {o.feature}")
            for port in sorted(o.ports & ints):
                found.append(f"{path.relative_to(root)} names port {port} of feature {o.feature}")
    return found


def test_every_feature_owns_what_it_declares() -> None:
    owners = owned()
    # What each declares: not an empty test.
    by = {o.feature: o for o in owners}
    assert {"dnsmasq", "dhcpentry"} <= by["dhcp"].names and {53, 67} <= by["dhcp"].ports
    assert {"conntrackd"} <= by["conntrack"].names and 3780 in by["conntrack"].ports
    assert {"keepalived"} <= by["vrrp"].names and {112, 3784} <= by["vrrp"].ports
    assert {"metadata", "vmdata", "vmpassword"} <= by["vmdata"].names
    assert {80, 8080} <= by["vmdata"].ports and 3922 in by["control"].ports
    assert {"networkacl", "forwardrules"} <= by["netfilter"].names
    assert {"haproxy", "loadbalancer"} <= by["loadbalancer"].names


def test_no_module_outside_a_feature_names_its_daemon_bag_type_or_port() -> None:
    """A feature's daemon, bag types and ports are named by its own package
    (and its daemon's system helper) alone: the hubs assemble them from the
    declarations."""
    files = sorted(SRC.rglob("*.py"))
    assert violations(owned(), files) == []


def test_ownership_check_sees_a_stray_name(tmp_path: Path) -> None:
    """The check itself goes red on a hub that names a feature's daemon or port."""
    stray = tmp_path / "stray.py"
    stray.write_text('"""dnsmasq in a docstring is fine"""\n'
                     'DAEMON = "dnsmasq"\nPORT = 3780\nWIDTH = 80\n'
                     'RULE = "tcp dport 8080 accept"\n# keepalived in a comment is fine\n')
    assert sorted(violations(owned(), [stray], root=tmp_path)) == [
        "stray.py names 'dnsmasq' of feature dhcp",
        "stray.py names port 3780 of feature conntrack",
        "stray.py names port 8080 of feature vmdata",
    ]


def test_every_rendered_file_is_a_declared_file_of_its_daemon() -> None:
    """File names are written once, in the daemon's declaration: what a
    feature renders for its daemon is exactly the files the daemon declares
    (an index of what it keeps elsewhere aside)."""
    for cfg, topo in _scenarios():
        states = desired_states(cfg, topo, settings())
        for pkg, f in zip(features.packages(), features.features(), strict=True):
            daemons = features.daemons_of(pkg, settings())
            if not daemons or f.subsystem is None:
                continue
            declared = {p.path.name for d in daemons for p in d.files}
            rendered = f.subsystem.render(states[f.name])
            if isinstance(rendered, Files):
                assert {name for name, _ in rendered.files} == declared, f.name
                assert not {name for name, _ in rendered.index} & declared, f.name
            else:
                assert len(declared) == 1, f.name  # one text: the main file
            for d in daemons:
                assert d.subsystem == f.name and d.files, d.name
                for file in d.files:
                    assert file.path.is_relative_to(settings().root), file.path
