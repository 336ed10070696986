"""``vragent``: the command line the management plane (and operators) use.

When the resident agent runs, every command that reads or changes the
configuration is forwarded to it over its unix socket (``api/client.py``)
and applied by its queue, in order, with the configuration already in
memory; this module then imports nothing heavy. Only when no agent answers
(first boot, recovery, a router without supervisord) does the command run
in this process. Output, exit codes and the store are the same either way.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import VragentError, printable, shown
from .features import EXTRA, FEATURES
from .settings import Settings

if TYPE_CHECKING:
    from .store.batch import Command

# Commands the resident agent serves when it runs.
FORWARDED = ("apply", "diff", "show", "history", "rollback", "reconcile", "render", "boot")
# Read client-side at most this much of a file (the server's limit refuses more).
MAX_FILE_BYTES = 64 * 1024 * 1024


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vragent", description=__doc__)
    parser.add_argument("--root", help="prefix of every path (default: $VRAGENT_ROOT or /)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("apply", help="merge CloudStack bags (or batch files) and reconcile")
    p.add_argument("files", nargs="+", type=Path)
    p = sub.add_parser("diff", help="dry run: what applying FILEs would change on the system")
    p.add_argument("files", nargs="*", type=Path)
    p = sub.add_parser("show", help="print the stored configuration")
    # Checked where the bag types are known (a clear error names the type):
    # the command line only forwards, without importing them.
    p.add_argument("type", nargs="?")
    p.add_argument("--rev", type=int, help="show an earlier revision")
    sub.add_parser("boot", help="boot parameters plus the stored configuration onto the box")
    sub.add_parser("reconcile", help="re-apply the stored configuration")
    sub.add_parser("history", help="list kept revisions")
    p = sub.add_parser("rollback", help="make revision REV (default: the previous) current")
    p.add_argument("rev", nargs="?", type=int)
    p = sub.add_parser("render", help="print what the configuration renders to")
    # A feature registered through $VRAGENT_FEATURES renders too: the name is
    # checked where the features are loaded (a clear error lists them).
    p.add_argument("what", help=f"a feature ({', '.join(FEATURES)}, or one "
                                f"registered in ${EXTRA})")
    p = sub.add_parser("state", help="this router's pair state, as CloudStack polls it")
    p.add_argument("--json", action="store_true", help="the whole persisted state")
    p = sub.add_parser("switchover", help="hand mastership to the peer, losing nothing "
                                          "(for maintenance; needs the resident agent)")
    p.add_argument("--timeout", type=float,
                   help="seconds to wait for the peer (default: its master-down interval + 2)")
    sub.add_parser("daemon", help="run the resident agent (under supervisord)")
    sub.add_parser("programs", help="write supervisord's program list from the declared "
                                    "daemons (before supervisord starts)")
    p = sub.add_parser("signature", help="the md5 of this agent, as CloudStack's "
                                         "cloud-scripts-signature (router_version_check.py)")
    p.add_argument("--write", action="store_true",
                   help="record it as what the router was built or patched with "
                        "(the image build; installing another agent)")
    parser.add_argument("--local", action="store_true",
                        help="work in this process even when the resident agent runs")
    return parser


def _report(changes: list[str], warnings: list[str], rev: int) -> None:
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    for c in changes:
        print(c)
    print(f"revision {rev}: {len(changes)} change(s)" if changes else
          f"revision {rev}: system already matches")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.from_env(args.root)
    try:
        return _run(args, settings)
    except VragentError as exc:
        print(f"vragent: {exc}", file=sys.stderr)
        return exc.exit_code


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "switchover":
        return _switchover(args, settings)
    if args.command in FORWARDED and not args.local \
            and not os.environ.get("VRAGENT_LOCAL"):
        from .api.client import AgentGone, NoAgent

        try:
            return _forward(args, settings)
        except NoAgent:
            pass  # no resident agent: do it here
        except AgentGone as exc:
            print(f"vragent: the resident agent went away during the command ({exc}); "
                  f"`vragent history` shows whether it was committed", file=sys.stderr)
            return 1
    return _local(args, settings)


def _local(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "state":
        from .pairstate import HaState, agent_alive, status_line

        if args.json:
            state = HaState.load(settings.ha_state)
            print(json.dumps({**state.__dict__, "agent_alive": agent_alive(settings.agent_pid)},
                             sort_keys=True))
        else:
            print(status_line(settings.ha_state, settings.agent_pid))
        return 0
    if args.command == "daemon":
        from .ha import daemon

        return daemon.main(settings)
    if args.command == "signature":
        from .store.store import atomic_write
        from .version import scripts_signature

        signature = scripts_signature()
        if args.write:
            path = settings.scripts_signature
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, f"{signature}\n".encode(), 0o644)
            except OSError as exc:
                raise VragentError(f"signature: cannot write {shown(str(path), 200)}: "
                                   f"{exc.strerror}") from None
        print(signature)
        return 0
    if args.command == "programs":
        from . import programs

        for change in programs.write(settings):
            print(f"supervisor.d: {change}")
        return 0

    from .agent import Agent

    agent = Agent(settings)
    if args.command in ("apply", "diff"):
        commands = [c for f in args.files for c in _read(f)]
        if args.command == "diff" and not commands:
            out = agent.reconcile(dry_run=True)
        else:
            out = agent.apply(commands, dry_run=args.command == "diff")
        _report(out.changes, out.warnings, out.rev)
        if out.error is not None:
            raise out.error
        return 0
    if args.command == "show":
        from .bags import redact, types
        from .models.limits import escape

        if args.type and args.type not in types():
            raise VragentError(f"show: unknown bag type {escape(args.type)} "
                               f"(known: {', '.join(sorted(types()))})")
        docs = redact(agent.store.load(args.rev))
        print(json.dumps(docs.get(args.type, {}) if args.type else docs, indent=2,
                         sort_keys=True))
        return 0
    if args.command == "history":
        previous: dict[str, str] = {}
        for r in agent.store.history():
            changed = sorted(t for t in set(r.docs) | set(previous)
                             if r.docs.get(t) != previous.get(t))
            when = datetime.datetime.fromtimestamp(r.time).isoformat(timespec="seconds")
            print(f"{r.rev:6d}  {when}  {printable(r.cause)}  "
                  f"[{', '.join(changed) or 'no change'}]")
            previous = r.docs
        return 0
    if args.command == "render":
        from .config import RouterConfig
        from .reconcile import plan
        from .system import iproute

        p = plan(RouterConfig.from_docs(agent.store.load()), settings, iproute.links())
        for step in p.steps:
            if step.subsystem.NAME == args.what:
                print(step.rendered.text(), end="")
        return 0
    if args.command == "boot":
        out = agent.boot()
    elif args.command == "reconcile":
        out = agent.reconcile()
    else:
        out = agent.rollback(args.rev)
    _report(out.changes, out.warnings, out.rev)
    return 0


# -- forwarded to the resident agent -----------------------------------------


def _forward(args: argparse.Namespace, settings: Settings) -> int:
    from .api.client import Client, path_segment

    client = Client(settings.api_socket)
    cmd = args.command
    if cmd in ("apply", "diff"):
        files = []
        for path in args.files:
            try:
                with path.open("rb") as f:
                    files.append((path.name, f.read(MAX_FILE_BYTES + 1)))
            except OSError as exc:
                return _fail(f"rejected bag: nothing was changed by it\n  "
                             f"{shown(str(path), 200)}: cannot be read ({exc.strerror})", 2)
        header = json.dumps([[name, len(data)] for name, data in files]).encode()
        status, body = client.json("POST", "/v1/local/apply",
                                   body=b"\n".join([header, *(d for _, d in files)]),
                                   query=[("dry_run", "true")] if cmd == "diff" else None,
                                   content_type="application/octet-stream")
        return _result(status, body)
    if cmd in ("reconcile", "boot"):
        return _result(*client.json("POST", f"/v1/{cmd}"))
    if cmd == "rollback":
        payload = json.dumps({"revision": args.rev}).encode()
        return _result(*client.json("POST", "/v1/rollback", body=payload))
    if cmd == "render":
        status, text = client.call("GET", f"/v1/render/{path_segment(args.what)}")
        if status != 200:
            return _fail(_detail(text), 5)
        print(text.decode(), end="")
        return 0
    query = [("revision", str(args.rev))] if cmd == "show" and args.rev is not None else None
    if cmd == "show":
        path = f"/v1/config/{path_segment(args.type)}" if args.type else "/v1/config"
        status, data = client.json("GET", path, query=query)
        if status != 200:
            return _fail(str(data.get("detail", data)), 5)
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    status, data = client.json("GET", "/v1/revisions")
    if status != 200:
        return _fail(str(data.get("detail", data)), 5)
    previous: dict[str, str] = {}
    for r in data:
        docs = r["documents"]
        changed = sorted(t for t in set(docs) | set(previous) if docs.get(t) != previous.get(t))
        when = datetime.datetime.fromtimestamp(r["time"]).isoformat(timespec="seconds")
        print(f"{r['revision']:6d}  {when}  {printable(str(r['cause']))}  "
              f"[{', '.join(changed) or 'no change'}]")
        previous = docs
    return 0


def _switchover(args: argparse.Namespace, settings: Settings) -> int:
    """0 once this router is backup; 3 when it had nothing to hand over or the
    peer did not take over (it is then still master); 1 without an agent."""
    from .api.client import AgentGone, Client, NoAgent

    if args.timeout is not None and not 0 < args.timeout <= 600:
        return _fail(f"--timeout {args.timeout:g}: must be between 0 and 600 seconds", 2)
    body = json.dumps({"timeout": args.timeout}).encode()
    try:
        status, data = Client(settings.api_socket).json("POST", "/v1/switchover", body=body)
    except NoAgent:
        return _fail("no resident agent runs on this router: there is no pair to switch over", 1)
    except AgentGone as exc:
        return _fail(f"the resident agent went away during the switchover ({exc})", 1)
    if not isinstance(data, dict) or "outcome" not in data:
        return _fail(f"the resident agent answered {status}: {data}", 1)
    if data["outcome"] != "switched":
        return _fail(str(data["message"]), 3)
    print(data["message"])
    return 0


def _result(status: int, body: Any) -> int:
    """Print a command's result exactly as the in-process command does."""
    if not isinstance(body, dict) or "outcome" not in body:
        detail = body.get("detail", body) if isinstance(body, dict) else body
        return _fail(f"the resident agent answered {status}: {detail}", 2 if status < 500 else 1)
    if body.get("completed", True):
        _report(body["changes"], body["warnings"], body["revision"])
    if body.get("error"):
        return _fail(body["error"]["message"], body["exit_code"])
    return 0


def _detail(data: bytes) -> str:
    try:
        return str(json.loads(data).get("detail", ""))
    except (ValueError, AttributeError):
        return data.decode("utf-8", "replace")


def _fail(message: str, code: int) -> int:
    print(f"vragent: {message}", file=sys.stderr)
    return code


def _read(path: Path) -> list[Command]:
    from .errors import BagError
    from .store.batch import read_commands

    try:
        return read_commands(path)
    except OSError as exc:
        raise BagError("", [f"{path}: cannot be read ({exc.strerror})"]) from None


if __name__ == "__main__":
    sys.exit(main())
