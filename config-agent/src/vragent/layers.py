"""The package's layers, lowest first: a module imports only from its own layer or below.

``tests/unit/test_layers.py`` reads ``LAYERS`` and fails on any import that
runs up a layer. Names are relative to ``vragent`` ("" is the package
itself); ``x.*`` is ``x`` and everything under it, and an exact name wins
over a pattern (``features``, the registry, is not ``features.*``, the
feature packages). A module that matches nothing fails the test too: a new
module is placed here when it is written.

0. Declarations, nothing below them: errors, settings, the feature
   declarations (``feature``), the feature registry (``features``: it finds
   the feature packages by name at run time, through importlib, and imports
   none of them at module level), the address families (``family``), the
   templates' loader, this module, what the router was built from (``version``),
   and the log every layer writes to (``log``: the standard library only).
1. Data: the bag models, the revisioned store, what a daemon last loaded,
   the alerts log supervisord's events append to (``alerts``).
2. ``system``: the only code that runs commands or reads and writes kernel
   state (links, routes, sysctls, /proc, netfilter, daemons' sockets); and
   the pair's persisted state (``pairstate``), which asks ``system.proc``
   whether the agent that wrote it is alive.
3. The router's configuration and how it maps onto this box: the bag-type
   hub (``bags``, ``box``), the typed configuration, the topology, the
   supervised daemons and supervisord's program list.
4. The features, each a package of ``vragent.features``.
5. The plan and its execution (``reconcile``), the agent that commits and applies.
6. What serves the agent: the API, the appliance's init.
7. Processes and entry points: the resident HA agent, the command line,
   CloudStack's entry points (they hand their work to the command line),
   the system VM's boot steps (``systemvm``: they end with the command line).
"""

from __future__ import annotations

LAYERS: tuple[tuple[str, ...], ...] = (
    ("", "errors", "settings", "feature", "features", "family", "templates", "layers",
     "version", "log"),
    ("models.*", "store.*", "daemon_state", "alerts"),
    ("system.*", "pairstate"),
    ("box", "bags", "config", "topology", "supervised", "programs"),
    ("features.*",),
    ("reconcile", "agent"),
    ("api.*", "appliance"),
    ("ha.*", "cli", "cloudstack", "systemvm", "__main__"),
)


def layer_of(module: str) -> int | None:
    """The layer of ``module`` (a dotted name under ``vragent``, or ``vragent``
    itself); None when ``LAYERS`` does not place it."""
    if module != "vragent" and not module.startswith("vragent."):
        return None
    name = module.removeprefix("vragent").removeprefix(".")
    best: tuple[int, int] | None = None  # (how specific, layer)
    for layer, patterns in enumerate(LAYERS):
        for pattern in patterns:
            if pattern == name:
                return layer
            prefix = pattern.removesuffix(".*")
            if pattern.endswith(".*") and (name == prefix or name.startswith(prefix + ".")):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), layer)
    return None if best is None else best[1]
