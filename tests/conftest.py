"""Shared by every test: where the repository and the sample bags are."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "compose/vragent_lab/sample"
FIXTURES = REPO / "tests/fixtures"
# Sample bags of every CloudStack type (copied from the shared reference, so a
# clone anywhere has them).
REFERENCE = REPO / "tests/fixtures/cloudstack"
