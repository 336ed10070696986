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
from .supervised import registry
from .system.iproute import Link
from .topology import Topology, resolve


@dataclass(frozen=True)
class Step:
    subsystem: Subsystem
    desired: Any
    rendered: Rendered
    # What verify found wrong with the files this subsystem gives a daemon.
    # Only daemons' files: the kernel-state subsystems (netfilter, addresses,
    # routes) report references to what is absent (a tier, a public IP, a
    # NIC) and render without them; skipping those at boot would leave the
    # router with no filtering and no NAT at all.
    invalid: tuple[str, ...] = ()


@dataclass
class Plan:
    topo: Topology
    steps: list[Step] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def plan(cfg: RouterConfig, settings: Settings, links: dict[str, Link]) -> Plan:
    topo = resolve(cfg, links)
    result = Plan(topo)
    daemon_subsystems = {d.subsystem for d in registry(settings)}
    seen: set[str] = set()
    for module in REGISTRY:
        desired = module.desired(cfg, topo, settings)
        problems = module.verify(desired)
        for problem in problems:
            if problem not in seen:  # several subsystems notice a missing NIC
                seen.add(problem)
                result.problems.append(problem)
        result.warnings += list(getattr(desired, "warnings", ()))
        invalid = tuple(x for x in problems if x not in topo.missing) \
            if module.NAME in daemon_subsystems else ()
        result.steps.append(Step(module, desired, module.render(desired), invalid))
    return result


def execute(p: Plan, settings: Settings, dry_run: bool = False,
            skipped: list[str] | None = None) -> list[str]:
    """Apply every step. With ``skipped`` (boot, reconcile: nothing may be refused
    as a whole), a step whose own configuration failed verification is not
    applied: what is in force stays, and why is appended to ``skipped``."""
    changes: list[str] = []
    for step in p.steps:
        if skipped is not None and step.invalid:
            skipped.append(f"{step.subsystem.NAME}: not applied, the previous configuration "
                           f"stays in force: {'; '.join(step.invalid)}")
            continue
        changes += step.subsystem.apply(step.desired, step.rendered, settings, dry_run=dry_run)
    return changes
