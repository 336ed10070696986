"""The monitor feature: CloudStack's router health checks, from the
``monitorservice`` bag (cs_monitorservice.py, cs/CsMonitor.py,
monitorServices.py). The checks that belong to no other feature are here
(``checks``); ``runner`` runs every feature's."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ...feature import BagType, Docs, Feature, raw
from .model import MonitorService

NAME = "monitor"


# What cs_monitorservice.merge copies into the bag; disable_monitoring and
# delete_from_processed_cache are not kept.
MONITOR_KEYS = ("config", "health_checks_enabled", "health_checks_basic_run_interval",
                "health_checks_advanced_run_interval", "excluded_health_checks",
                "health_checks_config")


def merge_monitorservice(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    """systemvm/debian/opt/cloud/bin/cs_monitorservice.py merge: the listed keys
    overlay the stored ones, so ``config``, sent only at router start, stays
    when a refresh omits it."""
    assert isinstance(bag, MonitorService)
    sent_raw = raw(bag)
    # The @06c53e2 server's spelling, kept under the current one.
    sent_raw.setdefault("health_checks_advanced_run_interval",
                   sent_raw.get("health_checks_advance_run_interval"))
    doc = dict(docs.get("monitorservice", {}))
    for key in MONITOR_KEYS:
        if sent_raw.get(key) is not None:  # Gson never sends a null; one here means "not sent"
            doc[key] = sent_raw[key]
    return {**docs, "monitorservice": doc}


def view(docs: Docs, v: Any) -> MonitorService | None:
    """The stored bag (None: none received)."""
    doc = docs.get("monitorservice")
    return MonitorService.model_validate({**doc, "type": "monitorservice"}) \
        if doc is not None else None


FEATURE = Feature(
    name=NAME,
    bags=(BagType("monitorservice", MonitorService, merge_monitorservice),),
    view=view,
)
