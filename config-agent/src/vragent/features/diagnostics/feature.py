"""The diagnostics feature declares nothing the reconciler reads: no bag, no
daemon, no traffic. Its work is done by its entry points (``entry``), on the
management server's request, from what the other features declare (their
daemons' ``shown`` files, their bag types' redactions)."""

from __future__ import annotations

from ...feature import Feature

NAME = "diagnostics"

FEATURE = Feature(name=NAME)
