"""CloudStack's health-check entry points, as console scripts of the same names
(the image links them into /opt/cloud/bin, where the management server calls
them: VirtualRoutingResource.execute(GetRouterMonitorResultsCommand)).

Both import only what they use: printing saved results and the filesystem
check must answer at once.
"""

from __future__ import annotations

import sys

from ...settings import Settings


def get_router_monitor_results(argv: list[str] | None = None) -> int:
    """systemvm/debian/opt/cloud/bin/getRouterMonitorResults.sh ``[true|false]``.

    ``true``: run the basic checks, then the advanced ones (monitorServices.py
    without an argument), then print; anything else prints the saved results.
    Exit 0 whatever happens, as the script's last ``echo`` does; a failed run
    is reported on standard error and the saved results are printed.
    """
    args = sys.argv[1:] if argv is None else argv
    settings = Settings.from_env()
    if args[:1] == ["true"]:
        from ...errors import VragentError
        from .results import KINDS
        from .runner import run

        for kind in KINDS:
            try:
                run(settings, kind)
            except (VragentError, OSError) as exc:
                print(f"getRouterMonitorResults.sh: {kind} checks: {exc}", file=sys.stderr)
    from .results import cloudstack_output

    sys.stdout.write(cloudstack_output(settings))
    return 0


def filesystem_writable_check(argv: list[str] | None = None) -> int:
    """systemvm/debian/opt/cloud/bin/filesystem_writable_check.py: exit 1 with
    "Read-only file system : ..." when the results' or the bag files'
    filesystem is mounted read-only (the management server then records
    filesystem.writable.test as failed), else exit 0."""
    from ...system.proc import read_only

    settings = Settings.from_env()
    for what, path in (("monitor results", settings.monitor_results),
                       ("config info", settings.cache_dir)):
        if read_only(path):
            print(f"Read-only file system : {what} ({path}) file system is mounted as "
                  f"read-only")
            return 1
    print("file system is writable")
    return 0
