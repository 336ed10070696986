"""No module of the agent imports from a layer above its own (``vragent/layers.py``).

Every module under config-agent/src/vragent is parsed (not imported) and
every import of a ``vragent`` module is resolved: absolute (``import
vragent.x``, ``from vragent.x import y``) and relative (``from ..x import
y``), at module level and inside functions and classes alike, since an
import deferred into a function still runs when the function does.
``from p import n`` names the module ``p.n`` when that is a module of the
package, else ``p`` itself.

Not arrows, so not checked:
- imports under ``if TYPE_CHECKING:``: they are type-only, nothing runs them;
- the feature registry's ``importlib.import_module`` of the feature packages
  it is told of (``vragent.features``): that is how a lower layer reaches the
  features without naming them, by design;
- the parent packages an import runs first (``vragent.x`` before
  ``vragent.x.y``): every package here sits at or below its modules' layer,
  and its own imports are checked as its module's.

An import from the same layer is allowed either way.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest
from vragent.layers import LAYERS, layer_of

from tests.conftest import REPO

SRC = REPO / "config-agent/src"
PACKAGE = SRC / "vragent"

# Upward imports known and accepted, each with its reason: (importer, imported).
# Empty: every upward arrow found so far was removed by moving code.
ALLOWED: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Arrow:
    importer: str
    imported: str
    line: int
    text: str  # the import statement as written


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, but those only a type checker runs."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _base(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The module ``from <here> import ...`` names, relative dots resolved."""
    if node.level == 0:
        return node.module or ""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    if node.level > 1:
        package = package[:-(node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def arrows(importer: str, path: Path) -> list[Arrow]:
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in _imports(tree):
        text = ast.unparse(node)
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = _base(importer, is_package, node)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                       for alias in node.names]
        for target in dict.fromkeys(targets):
            if target == "vragent" or target.startswith("vragent."):
                found.append(Arrow(importer, target, node.lineno, text))
    return found


def _layer_name(layer: int) -> str:
    return f"[layer {layer}: {', '.join(p or 'vragent' for p in LAYERS[layer])}]"


def test_the_package_is_found() -> None:
    assert "vragent.agent" in MODULES and "vragent.features.routes.subsystem" in MODULES


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in MODULES if layer_of(m) is None]
    assert not unplaced, f"modules not placed in vragent/layers.py LAYERS: {unplaced}"


def test_every_import_resolves_to_a_module_of_the_package() -> None:
    unknown = [f"{a.importer}:{a.line}: {a.text} -> {a.imported}"
               for m, p in MODULES.items() for a in arrows(m, p)
               if a.imported not in MODULES]
    assert not unknown, "imports of no module of the package:\n" + "\n".join(unknown)


def test_no_import_runs_up_a_layer() -> None:
    upward = []
    for module, path in MODULES.items():
        own = layer_of(module)
        if own is None:
            continue  # reported by test_every_module_has_a_layer
        for a in arrows(module, path):
            theirs = layer_of(a.imported)
            if theirs is None or theirs <= own or (a.importer, a.imported) in ALLOWED:
                continue
            upward.append(f"{a.importer} {_layer_name(own)} imports {a.imported} "
                          f"{_layer_name(theirs)}, line {a.line}: {a.text}")
    assert not upward, "imports running up a layer:\n" + "\n".join(upward)


def test_allowed_exceptions_are_still_needed() -> None:
    found = {(a.importer, a.imported) for m, p in MODULES.items() for a in arrows(m, p)}
    stale = sorted(ALLOWED - found)
    assert not stale, f"ALLOWED names imports that no longer exist: {stale}"


@pytest.mark.parametrize(("module", "layer"), [
    ("vragent", 0),
    ("vragent.features", 0),
    ("vragent.features.routes", 4),
    ("vragent.features.routes.subsystem", 4),
    ("vragent.system", 2),
    ("vragent.system.iproute", 2),
    ("vragent.ha.daemon", 7),
    ("vragent.elsewhere", None),
    ("other.errors", None),
])
def test_layer_of(module: str, layer: int | None) -> None:
    assert layer_of(module) == layer


def test_relative_imports_resolve(tmp_path: Path) -> None:
    path = tmp_path / "subsystem.py"
    path.write_text("from typing import TYPE_CHECKING\n"
                    "from ...system import iproute\n"
                    "from ...store import Store\n"
                    "from ... import __version__, features\n"
                    "from . import model\n"
                    "import vragent.errors\n"
                    "if TYPE_CHECKING:\n"
                    "    from ...agent import Agent\n"
                    "def later() -> None:\n"
                    "    from ...reconcile import plan\n")
    assert [a.imported for a in arrows("vragent.features.routes.subsystem", path)] == [
        "vragent.system.iproute", "vragent.store", "vragent", "vragent.features",
        "vragent.features.routes.model", "vragent.errors", "vragent.reconcile"]
    init = tmp_path / "__init__.py"
    init.write_text("from .store import Store\n")
    assert [a.imported for a in arrows("vragent.store", init)] == ["vragent.store.store"]
