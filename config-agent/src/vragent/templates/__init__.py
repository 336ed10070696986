"""Jinja2 templates, named ``<feature>/<daemon>.conf.j2``."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("vragent", "templates"),
        autoescape=False,  # noqa: S701 - daemon configs, not HTML; values are validated
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def render(name: str, **context: Any) -> str:
    return _env().get_template(name).render(**context)
