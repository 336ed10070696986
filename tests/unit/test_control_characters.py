"""No raw control character from a bag ever reaches what the CLI prints
(errors on stderr, changes and warnings): every field of every bag type,
the type included, fed ESC, CR, vertical tab, NEL, U+2028 and friends.
The same property runs against a live router (integration/test_properties)."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vragent import cli
from vragent.errors import BagError, shown

from tests.integration.properties_worker import CONTROL, EXAMPLES, _paths, raw_control


def _cli(root: Path, *args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(["--root", str(root), "--local", *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, err.getvalue()


@st.composite
def poisoned(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A sample bag with one string value (or the type) carrying a control character."""
    bag_type = draw(st.sampled_from(sorted(EXAMPLES)))
    doc = copy.deepcopy(EXAMPLES[bag_type])
    strings = [p for p in _paths(doc) if isinstance(_at(doc, p), str)]
    path = draw(st.sampled_from(strings))
    parent = _at(doc, path[:-1])
    old = parent[path[-1]]
    c = draw(st.sampled_from(CONTROL))
    i = draw(st.integers(0, len(old)))
    parent[path[-1]] = old[:i] + c + old[i:]
    return bag_type, doc


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=poisoned())
def test_no_raw_control_character_reaches_stderr(tmp_path: Path,
                                                  case: tuple[str, dict[str, Any]]) -> None:
    bag_type, doc = case
    path = tmp_path / "bag.json"
    path.write_text(json.dumps(doc))
    # A dry run: what the command would print, the system untouched.
    code, err = _cli(tmp_path, "diff", str(path))
    assert code in (0, 2, 3), err
    assert not raw_control(err), (bag_type, err)


def test_the_type_is_escaped_on_the_first_line_too() -> None:
    for c in CONTROL:
        message = str(BagError(f"ips{c}", ["type: unknown bag type"], f"x{c}.json"))
        first = message.splitlines()[0]
        assert not raw_control(message), repr(message)
        assert first == f"rejected {shown('ips' + c)} from {shown('x' + c + '.json', 200)}: " \
                        f"nothing was changed by it"
    # Plain names stay as they are.
    assert str(BagError("ips", [], "bags/ips.json")).splitlines()[0] == \
        "rejected ips from bags/ips.json: nothing was changed by it"
