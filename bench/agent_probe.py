"""Run ``vragent`` exactly as ``python -m vragent`` would, and report on it.

bench_apply.py starts the agent as ``python bench/agent_probe.py ARGS...``
instead of ``python -m vragent ARGS...``: the same interpreter start, the same
imports, the same ``vragent.cli.main(ARGS)``. At exit it writes, to the file
named by $VRAGENT_BENCH_STATS, a JSON object with

* ``inproc_s``: seconds from the first line of this file to the end of main()
  (interpreter start-up is the parent's wall time minus this);
* ``import_s``: seconds importing vragent.cli and vragent.agent (main() would
  import them anyway; done up front only to tell import time apart);
* ``maxrss_self_kb``: peak RSS of this Python process (the agent itself);
* ``maxrss_children_kb``: ru_maxrss of its children; not nft's own peak: a child
  forked from the agent inherits the agent's high-water mark, so it is at
  least the agent's RSS at the time;
* ``subprocess``: per command (first words of argv) how many runs and how many
  seconds the agent waited on them (subprocess.run is wrapped, nothing else
  is touched).

With $VRAGENT_BENCH_PROFILE set, main() runs under cProfile and the profile is
dumped to that path (timings are then inflated; use it only to look at).
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

_STATS = os.environ.pop("VRAGENT_BENCH_STATS", "")
_PROFILE = os.environ.pop("VRAGENT_BENCH_PROFILE", "")
_calls: dict[str, list[float]] = {}
_import_s = 0.0
_real_run = subprocess.run


def _key(argv: object) -> str:
    if isinstance(argv, (list, tuple)):
        words = [str(a) for a in argv]
    else:
        words = str(argv).split()
    head = [words[0].rsplit("/", 1)[-1]] if words else ["?"]
    # "nft -f -", "nft -s list", "ip -json address", "ip route replace" ...
    head += [w for w in words[1:3]]
    return " ".join(head)


def _timed_run(*args: Any, **kwargs: Any) -> Any:
    argv = args[0] if args else kwargs.get("args")
    t = time.perf_counter()
    try:
        return _real_run(*args, **kwargs)
    finally:
        entry = _calls.setdefault(_key(argv), [0, 0.0])
        entry[0] += 1
        entry[1] += time.perf_counter() - t


def _write_stats(rc: Any) -> None:
    if not _STATS:
        return
    data = {
        "rc": rc if isinstance(rc, int) else (0 if rc is None else 1),
        "inproc_s": time.perf_counter() - T0,
        "import_s": _import_s,
        "maxrss_self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "maxrss_children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "subprocess": {k: {"n": int(v[0]), "s": v[1]} for k, v in _calls.items()},
    }
    with open(_STATS, "w") as f:
        json.dump(data, f)


def run() -> None:
    global _import_s
    subprocess.run = _timed_run
    rc: Any = 1
    try:
        t = time.perf_counter()
        import vragent.agent  # noqa: F401
        from vragent.cli import main

        _import_s = time.perf_counter() - t

        if _PROFILE:
            import cProfile

            prof = cProfile.Profile()
            try:
                rc = prof.runcall(main, sys.argv[1:])
            finally:
                prof.dump_stats(_PROFILE)
        else:
            rc = main(sys.argv[1:])
    except SystemExit as exc:  # argparse
        rc = exc.code
        raise
    finally:
        _write_stats(rc)
    sys.exit(rc)


if __name__ == "__main__":
    run()
