"""Assertions shared by the model tests."""

from __future__ import annotations

from typing import Any

import pytest
from vragent.bags import parse_bag
from vragent.errors import BagError


def assert_rejected(raw: Any, path: str, *fragments: str) -> BagError:
    """parse_bag refuses ``raw`` with a problem on ``path`` mentioning every fragment."""
    with pytest.raises(BagError) as info:
        parse_bag(raw)
    err = info.value
    matching = [p for p in err.problems if p.startswith(f"{path}: ")]
    assert matching, f"no problem reported on {path!r}: {err.problems}"
    for fragment in fragments:
        assert any(fragment in p for p in matching), (fragment, matching)
        assert fragment in str(err)  # the operator sees it too
    return err
