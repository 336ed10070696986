"""The names the command line offers without importing the models (vragent.names)."""

from __future__ import annotations

from vragent import subsystems
from vragent.models import BAG_MODELS
from vragent.names import BAG_TYPES, SUBSYSTEMS


def test_bag_types_are_the_models_sorted() -> None:
    assert BAG_TYPES == tuple(sorted(BAG_MODELS))


def test_subsystems_are_the_registry_in_order() -> None:
    assert SUBSYSTEMS == subsystems.NAMES
