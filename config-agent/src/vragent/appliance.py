"""The appliance's first process (a container's entry point, a system VM's init hook).

A CloudStack router learns its boot parameters from its kernel command line.
In a container they come either as a mounted ``cmd_line.json`` or as one
environment variable, ``VRAGENT_CMDLINE``, holding that same
``key=value key=value ...`` string. They are checked, written where the agent
reads them, and the run directory is emptied (a container start is a boot);
then supervisord takes over as the main process and its agent boots the box.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

from . import programs
from .bags import parse_bag
from .errors import BagError
from .settings import Settings
from .store import atomic_write
from .store.store import private_dir
from .system.proc import become

ENV_CMDLINE = "VRAGENT_CMDLINE"


def parse_kernel_cmdline(text: str) -> dict[str, str]:
    """``key=value`` words of a kernel command line; words without ``=`` are not parameters.

    The last of a repeated key wins, as the router's own early boot reads them
    (createRedundantRouterArgs repeats redundant_router and advert_int).
    """
    params: dict[str, str] = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if sep and key:
            params[key] = value
    return params


def write_boot_parameters(settings: Settings, text: str) -> None:
    """Validate the command line and store it as ``cmd_line.json``; nothing on bad input."""
    bag = {"type": "cmdline", "cmd_line": parse_kernel_cmdline(text)}
    parse_bag(bag, "cmdline")  # raises BagError naming each bad key
    settings.cmdline_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(settings.cmdline_file, json.dumps(bag, indent=1).encode())


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    text = os.environ.get(ENV_CMDLINE, "")
    try:
        if text.strip():
            write_boot_parameters(settings, text)
    except BagError as exc:
        print(f"vragent-init: {ENV_CMDLINE}: {exc}", file=sys.stderr)
        return 2
    if not settings.cmdline_file.exists():
        print(f"vragent-init: no boot parameters ({ENV_CMDLINE} unset and no "
              f"{settings.cmdline_file}): booting from the stored configuration only",
              file=sys.stderr)
    # A start is a boot: until the agent has rebuilt the box, the management
    # server's get_template_version.sh must wait (the agent says when).
    settings.boot_up_done.unlink(missing_ok=True)
    shutil.rmtree(settings.run_dir, ignore_errors=True)
    private_dir(settings.run_dir)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    programs.write(settings)
    become(["supervisord", "--nodaemon", "-c", str(settings.supervisord_conf)])


if __name__ == "__main__":
    sys.exit(main())
