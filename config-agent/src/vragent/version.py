"""What this router was built from and patched with, as CloudStack reads it.

A CloudStack system VM carries two lines the management server records
(get_template_version.sh, after every boot or live patch) and later hands
back in the ``routerVersion`` health-check data for router_version_check.py
to compare:

* the template's release, the first line of ``/etc/cloudstack-release``
  (tools/appliance/.../configure_systemvm_services.sh: "Cloudstack Release
  <version> <date>"), written by the image build;
* the scripts' signature, the first line of
  ``/var/cache/cloud/cloud-scripts-signature``: the md5 of the
  cloud-scripts.tgz the router was built or last patched with (a 4.20
  server's ``scriptsVersion``, 32 hex digits; 4.22 moved to sha512).

Here the scripts are the agent: its signature is the md5 of every file of
the installed ``vragent`` package (path and content, in path order), so
whatever changes the code the router runs changes it. The image build writes
it (``vragent signature --write``), and so does whatever installs another
agent (a patch): a router whose recorded signature is not the one the
management server last read is outdated, and the check says so.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).parent
# What the agent is made of (bytecode caches are not).
SUFFIXES = (".py", ".j2", ".json", ".conf")


def scripts_signature(package: Path = PACKAGE) -> str:
    h = hashlib.md5(usedforsecurity=False)
    for path in sorted(p for p in package.rglob("*") if p.is_file() and p.suffix in SUFFIXES):
        h.update(path.relative_to(package).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def first_line(path: Path) -> str | None:
    """The first line of ``path``, stripped (upstream's getFirstLine); None
    when it cannot be read."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return lines[0].strip() if lines else None
