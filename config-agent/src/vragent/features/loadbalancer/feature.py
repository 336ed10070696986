"""The loadbalancer feature: haproxy from the ``loadbalancer`` bag
(cs_loadbalancer.py, cs/CsLoadBalancer.py).

The bag is the whole configuration every time (cs_loadbalancer.merge
replaces it), so every tier's and every public IP's rules are in the one
stored document and all survive a restart (upstream #5553 and #8745 lost
all but one tier's). The firewall opens exactly the binds the bag names in
``add_rules`` and ``stat_rules`` that a listener serves (CsLoadBalancer's
``-A INPUT -d <ip> --dport <port> -j ACCEPT``), the statistics port only
to the sources ``stat_rules`` names (upstream ignores them).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ...feature import BagType, Docs, Feature, Opening, Traffic, raw
from ...models.limits import REDACTED
from . import stats, subsystem
from .haproxy import shown_line
from .model import LoadBalancer, LoadBalancerRule

KEY = "loadbalancer"


def view(docs: Docs, v: Any) -> LoadBalancerRule | None:
    rules = docs.get(KEY, {}).get("rules") or []
    return v(LoadBalancerRule, rules[0]) if rules else None


def merge_loadbalancer(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    assert isinstance(bag, LoadBalancer)
    stored = raw(bag)
    return {**docs, KEY: {"rules": stored.get("rules", [])}}


def _redact(doc: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for rule in doc.get("rules", []):
        rule = dict(rule)
        rule["configuration"] = [_redact_lines(item) for item in rule.get("configuration", [])]
        rule["ssl_certs"] = [{**c, "key": REDACTED,
                              **({"password": REDACTED} if c.get("password") else {})}
                             for c in rule.get("ssl_certs") or []]
        rules.append(rule)
    return {**doc, "rules": rules}


def _redact_lines(item: Any) -> Any:
    if not isinstance(item, str):
        return item
    return "\n".join(f"\t{shown_line(line)}" if line.split()[:2] == ["stats", "auth"]
                     else line for line in item.split("\n"))


def traffic(cfg: Any, settings: Any, d: Any) -> Traffic:
    if d is None or not d.enabled:
        return Traffic()
    accept = [Opening("public", "tcp", (port,), daddr=ip) for ip, port in d.frontends]
    accept += [Opening("any", "tcp", (s.port,), daddr=s.ip, saddr=",".join(s.sources))
               for s in d.stats_openings]
    return Traffic(accept=tuple(accept))


FEATURE = Feature(
    name=subsystem.NAME,
    bags=(BagType(KEY, LoadBalancer, merge_loadbalancer,
                  # cert and chain too: a key sent in the wrong field is never echoed.
                  secret_fields=frozenset({"configuration", "key", "password", "cert", "chain"}),
                  redact=_redact),),
    view=view,
    subsystem=subsystem,
    traffic=traffic,
    metrics=stats.metrics,
)
