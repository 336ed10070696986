from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Router, vpc_lab


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        raise pytest.UsageError("integration tests create network namespaces: run as root")


@pytest.fixture
def router(tmp_path: Path) -> Iterator[Router]:
    """The sample VPC's router, booted from its boot parameters, no bags yet."""
    with vpc_lab(tmp_path) as r:
        r.run("boot")
        yield r
