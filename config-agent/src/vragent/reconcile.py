"""Reconciling the whole box against the configuration.

``plan`` runs the pure steps of every subsystem (desired, verify, render) from
the configuration and the observed interfaces; ``execute`` runs the apply
steps in order. Every command re-checks everything and only what differs from
the running system is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import RouterConfig
from .settings import Settings
from .subsystems import ORDER
from .system.iproute import Link
from .topology import Topology, resolve


@dataclass
class Plan:
    topo: Topology
    steps: list[tuple[Any, Any]] = field(default_factory=list)  # (module, rendered)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def plan(cfg: RouterConfig, settings: Settings, links: dict[str, Link]) -> Plan:
    topo = resolve(cfg, links)
    result = Plan(topo)
    seen: set[str] = set()
    for module in ORDER:
        desired = module.desired(cfg, topo, settings)
        for problem in module.verify(desired):
            if problem not in seen:  # several subsystems notice a missing NIC
                seen.add(problem)
                result.problems.append(problem)
        result.warnings += list(getattr(desired, "warnings", ()))
        rendered = desired if module.NAME != "netfilter" else module.render(desired)
        result.steps.append((module, rendered))
    return result


def execute(p: Plan, settings: Settings, dry_run: bool = False) -> list[str]:
    changes: list[str] = []
    for module, rendered in p.steps:
        changes += module.apply(rendered, settings, dry_run=dry_run)
    return changes
