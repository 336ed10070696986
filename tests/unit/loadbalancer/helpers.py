"""Shared by the load balancer's unit tests: bags as CloudStack builds them, rendered."""

from __future__ import annotations

import copy
from typing import Any

from vragent.bags import parse_bag
from vragent.config import RouterConfig
from vragent.errors import BagError
from vragent.features.loadbalancer import subsystem
from vragent.features.loadbalancer.model import LoadBalancer, LoadBalancerRule
from vragent.reconcile import desired_states
from vragent.topology import resolve
from vragent_lab import loadbalancer as lb

from tests.unit.builders import SAMPLE_ORDER, apply_bags, sample_bag, sample_links, settings

PUBLIC = "100.64.10.11"
PASSWORD = "AdMiN123"


def command(*rules: lb.Rule, stats: lb.Stats | None = None, keepalive: bool = False) -> lb.Command:
    return lb.Command(rules=list(rules), stats=stats, keepalive=keepalive)


def bag(cmd: lb.Command, router_ip: str = "10.10.1.1") -> dict[str, Any]:
    return lb.bag(cmd, router_ip=router_ip)


def rule_of(raw: dict[str, Any]) -> LoadBalancerRule:
    parsed = parse_bag(copy.deepcopy(raw))
    assert isinstance(parsed, LoadBalancer)
    assert len(parsed.rules) == 1
    return parsed.rules[0]


def refused(raw: dict[str, Any]) -> BagError:
    try:
        parse_bag(copy.deepcopy(raw))
    except BagError as exc:
        return exc
    raise AssertionError("the bag was accepted")


def desired(raw: dict[str, Any]) -> subsystem.Desired:
    docs = apply_bags([*(sample_bag(n) for n in SAMPLE_ORDER), raw])
    cfg = RouterConfig.from_docs(docs)
    d = desired_states(cfg, resolve(cfg, sample_links()), settings())[subsystem.NAME]
    assert isinstance(d, subsystem.Desired)
    assert subsystem.verify(d) == []
    return d


def rendered(raw: dict[str, Any]) -> str:
    return subsystem.render(desired(raw)).text()


def listen_block(text: str, name: str) -> list[str]:
    """The stripped lines of ``listen <name>`` in a rendered haproxy.cfg."""
    lines = text.splitlines()
    start = lines.index(f"listen {name}")
    out = []
    for line in lines[start + 1:]:
        if not line.strip() or not line.startswith("\t"):
            break
        out.append(line.strip())
    return out
