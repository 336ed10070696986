"""Reconciling the whole box against the configuration.

``plan`` runs the pure steps of every feature's subsystem (desired, verify,
render) from the configuration and the observed interfaces, in two passes:
first the desired state of every feature, then what each declares it needs
let through (``Traffic``) goes to the subsystems that take it (netfilter's
``with_traffic``), whatever the order of the features; then verify and
render. ``execute`` runs the apply steps in order. Every command re-checks
everything and only what differs from the running system is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import RouterConfig
from .feature import Rendered, Subsystem, Traffic
from .features import by_name, features
from .settings import Settings
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


def subsystems() -> list[Subsystem]:
    """Every feature's subsystem, in the order they apply."""
    return [f.subsystem for f in features() if f.subsystem is not None]


def desired_states(cfg: RouterConfig, topo: Topology, settings: Settings) -> dict[str, Any]:
    """Every feature's desired state, by feature name, in the features' order (pure).

    First pass: each subsystem's own. Second: the traffic every feature
    declares, given its desired state, to the subsystems that take it."""
    feats = features()
    desired: dict[str, Any] = {f.name: f.subsystem.desired(cfg, topo, settings)
                               for f in feats if f.subsystem is not None}
    traffic = Traffic()
    for f in feats:
        if f.traffic is not None:
            traffic += f.traffic(cfg, settings, desired.get(f.name))
    for f in feats:
        takes = getattr(f.subsystem, "with_traffic", None)
        if takes is not None:
            desired[f.name] = takes(desired[f.name], traffic)
    return desired


def plan(cfg: RouterConfig, settings: Settings, links: dict[str, Link]) -> Plan:
    topo = resolve(cfg, links)
    result = Plan(topo)
    daemon_subsystems = {d.subsystem for d in registry(settings)}
    seen: set[str] = set()
    for name, d in desired_states(cfg, topo, settings).items():
        module = by_name(name).subsystem
        assert module is not None
        problems = module.verify(d)
        for problem in problems:
            if problem not in seen:  # several subsystems notice a missing NIC
                seen.add(problem)
                result.problems.append(problem)
        result.warnings += list(getattr(d, "warnings", ()))
        invalid = tuple(x for x in problems if x not in topo.missing) \
            if module.NAME in daemon_subsystems else ()
        result.steps.append(Step(module, d, module.render(d), invalid))
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
