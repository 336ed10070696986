"""A test-only toy feature: proof that a feature is registered and run end to
end by the hubs alone, named nowhere in the agent.

It declares a bag type (``toyecho``: a port and a message), a subsystem that
renders busybox httpd's files (``httpd.conf.j2``), its daemon (``daemon.py``),
one opening (the port, from the guest tiers) and one health check
(``toy_check``). It is registered as any extra feature is, by one line in the
environment of every process of the router (the agent, supervisord,
``vragent-launch``, the command line)::

    VRAGENT_FEATURES=tests.toy   # with the repository on PYTHONPATH

(``tests.toy.env``). Kept free of imports: ``vragent-launch`` and
supervisord's watchdog import only ``daemon.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = __name__
REPO = Path(__file__).resolve().parents[2]


def env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the toy registered:
    ``$VRAGENT_FEATURES`` names it, and the repository is first on ``$PYTHONPATH``."""
    out = dict(os.environ if base is None else base)
    path = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(REPO)]
    out["PYTHONPATH"] = os.pathsep.join([str(REPO), *path])
    out["VRAGENT_FEATURES"] = PACKAGE
    return out
