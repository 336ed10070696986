"""CloudStack's health-check result files, and what the management server reads.

The files (systemvm/debian/root/monitorServices.py, step 4), in
``Settings.monitor_results`` rather than upstream's working directory /root:

* ``<kind>_monitor_results.json``: one line, ``json.dump(..., ensure_ascii=False)``;
  every check's ``success`` ("true"/"false"), ``lastUpdate`` (epoch ms),
  ``lastRunDuration`` (ms) and ``message``, all strings, plus ``lastRun``;
* ``<kind>_failing_health_checks``: the failing names joined by ",", no
  newline; removed when nothing fails.

``cloudstack_output`` is what systemvm/debian/opt/cloud/bin/getRouterMonitorResults.sh
prints, which VirtualRoutingResource.parseLinesForHealthChecks reads.
Kept free of heavy imports: printing saved results must be quick.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from ...settings import Settings

Kind = Literal["basic", "advanced"]
KINDS: tuple[Kind, ...] = ("basic", "advanced")
_IFS = re.compile(r"[ \t\n]+")


def results_file(settings: Settings, kind: str) -> Path:
    return settings.monitor_results / f"{kind}_monitor_results.json"


def failing_file(settings: Settings, kind: str) -> Path:
    return settings.monitor_results / f"{kind}_failing_health_checks"


def write(settings: Settings, kind: str, outcome: dict[str, Any], failing: list[str]) -> None:
    """Both files of ``kind``, each replaced atomically."""
    from ...store.store import atomic_write, private_dir

    private_dir(settings.state_dir)
    settings.monitor_results.mkdir(mode=0o700, exist_ok=True)
    atomic_write(results_file(settings, kind),
                 json.dumps(outcome, ensure_ascii=False).encode())
    path = failing_file(settings, kind)
    if failing:
        atomic_write(path, ",".join(failing).encode())
    else:
        path.unlink(missing_ok=True)


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None


def results(settings: Settings) -> dict[str, Any]:
    """The last results: ``{"basic": {...}, "advanced": {...}, "failing": [...]}``
    (a kind never run, or whose file is unreadable, is ``{}``)."""
    out: dict[str, Any] = {}
    failing: list[str] = []
    for kind in KINDS:
        text = _read(results_file(settings, kind))
        try:
            doc = json.loads(text) if text is not None else {}
        except ValueError:
            doc = {}
        out[kind] = doc if isinstance(doc, dict) else {}
        names = _read(failing_file(settings, kind))
        failing += [n.strip() for n in (names or "").split(",") if n.strip()]
    out["failing"] = failing
    return out


def _echo_cat(text: str) -> str:
    """What ``echo `cat FILE``` prints: the words of the file (split as the
    shell splits unquoted text) joined by single spaces, and a newline."""
    return " ".join(w for w in _IFS.split(text) if w) + "\n"


def cloudstack_output(settings: Settings) -> str:
    """getRouterMonitorResults.sh's standard output, line for line.

    Exactly: "FAILING CHECKS:", then a line per failing-checks file that
    exists (basic, advanced), "MONITOR RESULTS:", ``{"basic":``, the basic
    results (``{}`` without a file), ``,"advanced":``, the advanced results,
    ``}``. One difference: the script's unquoted ``echo `cat``` would also
    expand a word that looks like a file pattern in its working directory.
    """
    out = ["FAILING CHECKS:\n"]
    for kind in KINDS:
        names = _read(failing_file(settings, kind))
        if names is not None:
            out.append(_echo_cat(names))
    out.append("MONITOR RESULTS:\n")
    for i, kind in enumerate(KINDS):
        out.append(f'{"," if i else "{"}"{kind}":\n')
        text = _read(results_file(settings, kind))
        out.append(_echo_cat(text) if text is not None else "{}\n")
    out.append("}\n")
    return "".join(out)
