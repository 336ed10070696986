"""The resident agent's log, as the pair's modules call it: ``vragent.log``
(one JSON object per line on stderr, which supervisord keeps)."""

from __future__ import annotations

from ..log import log

__all__ = ["log"]
