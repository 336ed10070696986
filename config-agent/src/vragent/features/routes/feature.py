"""The routes feature: connected and default routes, policy routing for the
public links, and the ``staticroutes`` bag (cs_staticroutes.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ...feature import BagType, Docs, Feature, raw
from . import subsystem
from .model import StaticRoute, StaticRoutes


def view(docs: Docs, v: Any) -> list[StaticRoute]:
    return [v(StaticRoute, r) for _, r in sorted(docs.get("staticroutes", {}).items())]


def merge_staticroutes(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    assert isinstance(bag, StaticRoutes)
    routes = dict(docs.get("staticroutes", {}))
    for route in bag.routes:
        if route.revoke:
            routes.pop(route.network, None)
        else:
            routes[route.network] = raw(route)
    return {**docs, "staticroutes": routes}


FEATURE = Feature(
    name=subsystem.NAME,
    bags=(BagType("staticroutes", StaticRoutes, merge_staticroutes),),
    view=view,
    subsystem=subsystem,
)
