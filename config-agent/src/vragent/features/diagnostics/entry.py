"""CloudStack's diagnostics entry points, as console scripts of the same names
(the image links them into /opt/cloud/bin, where the management server
calls them: VirtualRoutingResource.execute(DiagnosticsCommand),
execute(PrepareFilesCommand), execute(DeleteFileInVrCommand)).

- ``diagnostics.py <type> <address> [<params>]`` (runDiagnostics): the
  three-part answer of ``tools.answer`` on stdout, exit 0 whenever it is
  printed, as upstream's script exits 0 whatever the tool did.
- ``get_diagnostics_files.py <file|command>...`` (getDiagnosticsData): the
  zip (``bundle``), its path the only output; exit 1 with the reason on
  stderr when it cannot be written.
- ``cleanup.sh <path>`` (systemvm/debian/opt/cloud/bin/cleanup.sh): removes
  the zip, with upstream's messages ("Deleting diagnostics zip file <path>",
  "File <path> not found in vm ", both exit 0); a path that is not one of
  the zips get_diagnostics_files.py writes is refused (exit 1), nothing
  removed.

Each imports only what it uses.
"""

from __future__ import annotations

import sys

from ...settings import Settings


def diagnostics(argv: list[str] | None = None) -> int:
    from ...system.diagnostics import run_tool
    from .tools import BUDGET, NOT_FOUND, REFUSED, SCRIPT, Refused, answer, parse

    args = sys.argv[1:] if argv is None else argv
    try:
        command = parse(args)
    except Refused as exc:
        sys.stdout.write(answer("", str(exc), REFUSED))
        return 0
    try:
        ran = run_tool(command.argv(), BUDGET)
    except FileNotFoundError:
        sys.stdout.write(answer("", f"{SCRIPT}: {command.tool.name}: not installed on this "
                                    "router", NOT_FOUND))
        return 0
    stderr = ran.stderr
    if ran.stopped:
        stderr += (f"\n{SCRIPT}: {command.tool.name} stopped after {BUDGET:g} s (the "
                   "management server waits 60 s for an answer)")
    sys.stdout.write(answer(ran.stdout, stderr, ran.code))
    return 0


def get_diagnostics_files(argv: list[str] | None = None) -> int:
    from .bundle import collect, write

    args = sys.argv[1:] if argv is None else argv
    settings = Settings.from_env()
    try:
        path = write(settings, collect(settings, args))
    except OSError as exc:
        print(f"get_diagnostics_files.py: the zip cannot be written: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def cleanup(argv: list[str] | None = None) -> int:
    from ...system.diagnostics import regular_file, remove
    from .bundle import ZIP_PREFIX, ours, zip_dir

    args = sys.argv[1:] if argv is None else argv
    settings = Settings.from_env()
    value = args[0] if len(args) == 1 else ""
    path = ours(settings, value)
    if path is None:
        shown = repr(value) if len(args) == 1 else f"{len(args)} arguments"
        print(f"cleanup.sh: {shown}: not a diagnostics zip of this router (only "
              f"{zip_dir(settings)}/{ZIP_PREFIX}<time>.zip, as get_diagnostics_files.py "
              "writes them); nothing removed", file=sys.stderr)
        return 1
    if not regular_file(path):
        if path.exists() or path.is_symlink():
            print(f"cleanup.sh: {path}: not a regular file; nothing removed", file=sys.stderr)
            return 1
        print(f"File {path} not found in vm ")
        return 0
    try:
        remove(path)
    except OSError as exc:
        print(f"cleanup.sh: {path}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"Deleting diagnostics zip file {path}")
    return 0
