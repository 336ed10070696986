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
from .subsystems import REGISTRY, Subsystem
from .subsystems.base import Rendered
from .system.iproute import Link
from .topology import Topology, resolve


@dataclass(frozen=True)
class Step:
    subsystem: Subsystem
    desired: Any
    rendered: Rendered


@dataclass
class Plan:
    topo: Topology
    steps: list[Step] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def plan(cfg: RouterConfig, settings: Settings, links: dict[str, Link]) -> Plan:
    topo = resolve(cfg, links)
    result = Plan(topo)
    seen: set[str] = set()
    for module in REGISTRY:
        desired = module.desired(cfg, topo, settings)
        for problem in module.verify(desired):
            if problem not in seen:  # several subsystems notice a missing NIC
                seen.add(problem)
                result.problems.append(problem)
        result.warnings += list(getattr(desired, "warnings", ()))
        result.steps.append(Step(module, desired, module.render(desired)))
    return result


def execute(p: Plan, settings: Settings, dry_run: bool = False) -> list[str]:
    changes: list[str] = []
    for step in p.steps:
        changes += step.subsystem.apply(step.desired, step.rendered, settings, dry_run=dry_run)
    return changes
