"""What the running lab was brought up as, and the options a command runs with.

``vragent-lab up`` records the topology, the pair's mode and its advert
interval as labels on the router containers (the compose files render them
from ``Lab.compose_env``). Every later command reads them back from what
runs, so ``vragent-lab --mode cloudstack up`` followed by ``vragent-lab
failover`` reports a CloudStack-mode failover rather than the default's. An
option given to such a command must agree with what runs; one that
contradicts it is refused, naming both, before anything is touched. ``up``
and ``run`` bring a lab up, so their options (or the defaults) are what they
record, whatever ran before.

Pure: the labels come in as dictionaries (``Lab.router_labels``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "org.vragent.lab."
TOPOLOGIES = ("redundant-vpc", "single-router")
MODES = ("sync-link", "cloudstack")
MODE_NAMES = {"sync-link": "sync-link", "cloudstack": "CloudStack"}  # as a report names them
BRINGS_UP = ("up", "run")  # the commands whose options are recorded rather than checked


class Contradiction(ValueError):
    """An option that does not match the running lab, or labels that cannot be read."""


@dataclass(frozen=True)
class Options:
    topology: str = "redundant-vpc"
    mode: str = "sync-link"
    advert_int: float = 1.0

    def labels(self) -> dict[str, str]:
        """What ``up`` records (the compose files' ``VRLAB_*`` variables)."""
        return {"VRLAB_MODE": self.mode, "VRLAB_ADVERT_INT": f"{self.advert_int:g}"}


@dataclass(frozen=True)
class Given:
    """The options on a command line; None where one was left out."""

    topology: str | None = None
    mode: str | None = None
    advert_int: float | None = None


def _advert_int(router: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise Contradiction(f"{router}: label {PREFIX}advert_int={text!r} is not a positive "
                            "number of seconds")
    return value


def running(labels: Mapping[str, Mapping[str, str]]) -> Options | None:
    """What the routers (service name -> container labels) were brought up as.

    None when no router carries the record (nothing runs, or a lab brought up
    before it was kept); Contradiction when routers disagree or a label is not
    one the lab writes."""
    found: dict[str, Options] = {}
    for router, lab in sorted(labels.items()):
        topology, mode = lab.get(PREFIX + "topology", ""), lab.get(PREFIX + "mode", "")
        advert = lab.get(PREFIX + "advert_int", "")
        if not (topology or mode or advert):
            continue
        if topology not in TOPOLOGIES:
            raise Contradiction(f"{router}: label {PREFIX}topology={topology!r} is not one of "
                                f"{', '.join(TOPOLOGIES)}")
        if mode not in MODES:
            raise Contradiction(f"{router}: label {PREFIX}mode={mode!r} is not one of "
                                f"{', '.join(MODES)}")
        found[router] = Options(topology, mode, _advert_int(router, advert))
    if not found:
        return None
    first, *rest = found.items()
    for router, opts in rest:
        if opts != first[1]:
            raise Contradiction(f"the routers were brought up differently: {first[0]} as "
                                f"{describe(first[1])}, {router} as {describe(opts)}; "
                                "`vragent-lab down`, then up again")
    return first[1]


def describe(opts: Options) -> str:
    return f"{opts.topology}, {MODE_NAMES[opts.mode]} mode, advert interval {opts.advert_int:g} s"


def _over(base: Options, given: Given) -> Options:
    """``base`` with the options that were given in place of its own."""
    return Options(
        topology=given.topology if given.topology is not None else base.topology,
        mode=given.mode if given.mode is not None else base.mode,
        advert_int=given.advert_int if given.advert_int is not None else base.advert_int)


def resolve(command: str, given: Given, now: Options | None, project: str,
            default_project: str = "vrlab") -> Options:
    """The options ``command`` runs with: given ones (or the defaults) for a
    command that brings the lab up or finds nothing running; otherwise what
    runs, and Contradiction for a given option that differs from it."""
    if command in BRINGS_UP or now is None:
        return _over(Options(), given)
    wrong = []
    if given.topology is not None and given.topology != now.topology:
        wrong.append(f"--topology {given.topology} (it runs {now.topology})")
    if given.mode is not None and given.mode != now.mode:
        wrong.append(f"--mode {given.mode} (it runs in {MODE_NAMES[now.mode]} mode)")
    if given.advert_int is not None and not math.isclose(given.advert_int, now.advert_int):
        wrong.append(f"--advert-int {given.advert_int:g} (it runs with {now.advert_int:g} s)")
    if not wrong:
        return now
    wanted = _over(now, given)
    again = " ".join(([f"--project {project}"] if project != default_project else []) + [
        f"--topology {wanted.topology}", f"--mode {wanted.mode}",
        f"--advert-int {wanted.advert_int:g}", "up"])
    raise Contradiction(
        f"the lab (project {project}) was brought up as {describe(now)}; {command} was "
        f"given {', '.join(wrong)}. Leave the option out (the lab remembers how it was "
        f"brought up), or bring it up again that way: vragent-lab {again}")
