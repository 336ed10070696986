"""What get_diagnostics_files.py puts in the zip, and where the zip goes.

Upstream (apache/cloudstack):

- ``systemvm/debian/opt/cloud/bin/get_diagnostics_files.py``: each argument
  is a file to add (by its base name), or one of ``iptables``, ``ipaddr``,
  ``iprule``, ``iproute`` (or a ``[NAME]``: /opt/cloud/bin/NAME, run through
  a shell), whose output is added as ``<name>.log``; then ``fileinfo.txt``
  (the files found, then ``<path>File Not Found!!`` for the others). The zip
  is ``/root/diagnostics_files_<%Y%m%d-%H%M%S>.zip``, and its path the
  script's only output.
- ``server/.../diagnostics/fileprocessor/DiagnosticsFilesList.java``: the
  default list, ``diagnostics.data.router.defaults``: iptables, ipaddr,
  iprule, iproute, /etc/cloudstack-release, /etc/dnsmasq.conf,
  /etc/dhcphosts.txt, /etc/dhcpopts.txt, /etc/dnsmasq.d/cloud.conf,
  /etc/dnsmasq-resolv.conf, /var/lib/misc/dnsmasq.leases,
  /var/log/dnsmasq.log, /etc/hosts, /etc/resolv.conf,
  /etc/haproxy/haproxy.cfg, /var/log/haproxy.log, /etc/ipsec.d/l2tp.conf,
  /var/log/cloud.log, /var/log/routerServiceMonitor.log, /var/log/daemon.log.
- ``server/.../diagnostics/DiagnosticsServiceImpl.java``: the arguments are
  that list (or the API's ``files``) joined by spaces; the printed path,
  without its line break, is copied off the router (scp) and its install
  path is the path with "/root" cut off, so the zip must be in /root; then
  ``cleanup.sh <path>`` (``DeleteFileInVrCommand``). The script gets
  ``diagnostics.data.retrieval.timeout`` (1800 s).

Here:

- the command names run argument lists: ``iptables`` is this router's
  netfilter, ``nft list ruleset`` (it has no iptables rules); ``iprule`` and
  ``iproute`` add IPv6's; 4.11's ``[IFCONFIG]`` and ``[ROUTE]`` are ``ip
  address`` and the routes. No other ``[NAME]`` runs anything.
- a path upstream keeps something at is served from where this router keeps
  it, as its daemons declare (``Daemon.shown``: /etc/dnsmasq.conf is
  dnsmasq's configuration, /etc/haproxy/haproxy.cfg haproxy's, both as
  their features show them); ``/var/log/<daemon>.log`` is that daemon's
  log and ``/var/log/cloud.log`` the agent's. Any other path is given only
  if any local user could read it (``system.diagnostics.shareable``) and it
  is not one of the agent's own directories (its store, run and
  configuration directories, the bag cache: they are given below, redacted).
- then this router's own, under ``vragent/``: the stored configuration's
  current revision with every secret redacted (``bags.redact``), every
  daemon's configuration files (a file that holds a secret only through its
  feature's redaction, else not at all), every log of the agent and its
  daemons (their latest ``MAX_LOG`` bytes), the pair's state and the health
  checks' results.
- last, every member is scrubbed of every secret the stored configuration
  holds (``scrub``), whatever declared it.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ... import features
from ...bags import redact
from ...errors import VragentError
from ...feature import Daemon, Docs, Shown
from ...settings import Settings
from ...store import Store
from ...system import diagnostics as system
from .scrub import Scrubber, secrets

ZIP_PREFIX = "diagnostics_files_"
ZIP_NAME = re.compile(r"diagnostics_files_[0-9]{8}-[0-9]{6}(-[0-9]{1,3})?\.zip", re.ASCII)
MAX_LOG = 8 * 1024 * 1024
OWN = "vragent"
FILEINFO = "fileinfo.txt"

# The command names of diagnostics.data.router.defaults (and 4.11's bracketed
# ones), and what each runs here.
COMMANDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "iptables": (("nft", "list", "ruleset"),),
    "ipaddr": (("ip", "address"),),
    "iprule": (("ip", "rule", "list"), ("ip", "-6", "rule", "list")),
    "iproute": (("ip", "route", "show", "table", "all"),
                ("ip", "-6", "route", "show", "table", "all")),
    "ifconfig": (("ip", "address"),),
    "route": (("ip", "route", "show", "table", "all"),),
}
# Upstream's names for the agent's own log (its configuration scripts' log).
AGENT_LOGS = ("/var/log/cloud.log",)


def zip_dir(settings: Settings) -> Path:
    """Where the zip goes: root's home, as the management server's install
    path expects ("/root" is cut off the printed path)."""
    return settings.root / "root"


@dataclass
class Bundle:
    members: list[tuple[str, bytes]] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def add(self, name: str, data: bytes) -> str:
        """Add a member under ``name``, or a free variant of it (upstream
        flattens paths to base names, so two may meet)."""
        taken = {n for n, _ in self.members}
        unique, n = name, 1
        while unique in taken:
            n += 1
            stem, dot, ext = name.rpartition(".")
            unique = f"{stem}-{n}.{ext}" if dot and stem else f"{name}-{n}"
        self.members.append((unique, data))
        return unique

    def fileinfo(self) -> bytes:
        lines = [*self.found, *(f"{p}File Not Found!!" for p in self.missing),
                 *self.refused]
        return "".join(f"{line}\n" for line in lines).encode()


def _own_dirs(settings: Settings) -> tuple[Path, ...]:
    return (settings.state_dir, settings.run_dir, settings.conf_dir, settings.cache_dir)


def _under(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _upstream_map(settings: Settings) -> dict[str, tuple[Daemon, Shown]]:
    found: dict[str, tuple[Daemon, Shown]] = {}
    for d in features.daemons(settings):
        for s in d.shown:
            for name in s.upstream:
                found.setdefault(name, (d, s))
    return found


def _shown_text(d: Daemon, path: Path, shown: Shown | None) -> bytes:
    """A daemon's file as an operator may see it (``NotShared`` when it holds
    a secret its feature gives no redaction for)."""
    data = system.read(path)
    if shown is not None and shown.redact is not None:
        return shown.redact(data.decode("utf-8", "surrogateescape")).encode(
            "utf-8", "surrogateescape")
    declared = next((f for f in d.files if f.path == path), None)
    private = declared.mode & 0o077 == 0 if declared is not None else \
        os.stat(path).st_mode & 0o004 == 0
    if private:
        raise system.NotShared(f"holds secrets, and {d.name} declares no redacted view of it")
    return data


def _run(name: str) -> bytes:
    parts = []
    for argv in COMMANDS[name]:
        out = system.output(list(argv))
        parts.append(out if len(COMMANDS[name]) == 1 else f"# {' '.join(argv)}\n{out}")
    if name == "iptables":
        parts.insert(0, "# nft list ruleset: this router filters with nftables "
                        "(iptables-save would show nothing)\n")
    return "".join(parts).encode()


def requested(settings: Settings, items: list[str], bundle: Bundle) -> None:
    """Upstream's part: what the management server asked for, by upstream's names."""
    aliases = _upstream_map(settings)
    logs = {f"/var/log/{d.name}.log": settings.log_dir / f"{d.name}.log"
            for d in features.daemons(settings)}
    logs.update({name: settings.log_dir / "agent.log" for name in AGENT_LOGS})
    own = _own_dirs(settings)
    for raw_item in items:
        item = raw_item.strip()
        if not item:
            continue
        word = item[1:-1] if len(item) > 2 and item[0] == "[" and item[-1] == "]" else item
        if word.lower() in COMMANDS:
            log = f"{word.lower()}.log"
            if log not in bundle.found:  # iptables and [IPTABLES] are one
                bundle.found.append(bundle.add(log, _run(word.lower())))
            continue
        if not item.startswith("/"):
            known = ", ".join(COMMANDS)
            bundle.refused.append(f"{item} Not Given!! neither a command name ({known}) "
                                  "nor an absolute path; no script is run")
            continue
        key = os.path.normpath("/" + item.lstrip("/"))
        path = settings.root / key.lstrip("/")
        try:
            if key in aliases:
                d, s = aliases[key]
                data = _shown_text(d, s.path, s)
                where = s.path
            elif key in logs:
                where = logs[key]
                data = system.read(where, MAX_LOG, tail=True)
            else:
                if _under(path, own):
                    raise system.NotShared("one of the agent's own files: they are given "
                                           f"under {OWN}/, redacted")
                where = system.shareable(path, settings.root)
                data = system.read(where)
        except FileNotFoundError:
            bundle.missing.append(item)
            continue
        except (system.NotShared, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            bundle.refused.append(f"{item} Not Given!! {reason}")
            continue
        base = key.rsplit("/", 1)[-1] or "file"
        name = bundle.add(base, data)
        source = "/" + str(where.relative_to(settings.root)) \
            if where.is_relative_to(settings.root) else str(where)
        bundle.found.append(item if (source, name) == (key, base)
                            else f"{item} (as {name}, from {source})")


def _member(settings: Settings, path: Path) -> str:
    return f"{OWN}/{path.relative_to(settings.root)}"


def own(settings: Settings, bundle: Bundle, docs: Docs, revision: dict[str, object]) -> None:
    """This router's part, under ``vragent/``."""
    bundle.add(f"{OWN}/configuration.json",
               (json.dumps({**revision, "docs": redact(docs)}, indent=1, sort_keys=True)
                + "\n").encode())
    for d in features.daemons(settings):
        by_path = {s.path: s for s in d.shown}
        paths = [f.path for f in d.files] + [p for p in by_path if p not in
                                             {f.path for f in d.files}]
        for path in paths:
            name = _member(settings, path)
            try:
                data = _shown_text(d, path, by_path.get(path))
            except FileNotFoundError:
                continue  # not configured here
            except (system.NotShared, OSError) as exc:
                bundle.refused.append(f"{name} Not Given!! {exc}")
                continue
            bundle.found.append(bundle.add(name, data))
    if settings.log_dir.is_dir():
        for path in sorted(settings.log_dir.iterdir()):
            if system.regular_file(path):
                bundle.found.append(bundle.add(_member(settings, path),
                                               system.read(path, MAX_LOG, tail=True)))
    state = [settings.ha_state]
    if settings.monitor_results.is_dir():
        state += sorted(settings.monitor_results.iterdir())
    for path in state:
        if system.regular_file(path):
            bundle.found.append(bundle.add(_member(settings, path), system.read(path)))


def collect(settings: Settings, items: list[str]) -> list[tuple[str, bytes]]:
    """Every member of the zip, scrubbed, ``fileinfo.txt`` last."""
    store = Store(settings)
    docs: Docs = {}
    revision: dict[str, object] = {}
    try:
        number = store.current_rev()
        if number:
            r = store.revision(number)
            revision = {"revision": r.rev, "time": r.time, "cause": r.cause}
            docs = store.load(number)
    except VragentError as exc:
        revision = {"error": str(exc)}
    bundle = Bundle()
    requested(settings, items, bundle)
    own(settings, bundle, docs, revision)
    scrubber = Scrubber(secrets(docs, redact(docs)))
    members = [(name, scrubber.data(data)) for name, data in bundle.members]
    members.append((FILEINFO, scrubber.data(bundle.fileinfo())))
    return members


def write(settings: Settings, members: list[tuple[str, bytes]]) -> Path:
    """The zip, written where the management server looks: its path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        path = zip_dir(settings) / f"{ZIP_PREFIX}{stamp}{'' if n == 1 else f'-{n}'}.zip"
        try:
            system.write_zip(path, members)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{zip_dir(settings)}: no free name for {ZIP_PREFIX}{stamp}.zip")


def ours(settings: Settings, value: str) -> Path | None:
    """``value`` if it names a zip this script writes (in ``zip_dir``, named
    as ``write`` names them), else None."""
    if not value.startswith("/") or "\0" in value:
        return None
    path = Path(os.path.normpath(value))
    if path.parent != zip_dir(settings) or not ZIP_NAME.fullmatch(path.name):
        return None
    return path
