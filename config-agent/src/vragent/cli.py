"""``vragent``: the command line the management plane (and operators) use."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import VragentError
from .models import BAG_MODELS
from .settings import Settings
from .subsystems import NAMES

if TYPE_CHECKING:
    from .store.batch import Command



def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vragent", description=__doc__)
    parser.add_argument("--root", help="prefix of every path (default: $VRAGENT_ROOT or /)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("apply", help="merge CloudStack bags (or batch files) and reconcile")
    p.add_argument("files", nargs="+", type=Path)
    p = sub.add_parser("diff", help="dry run: what applying FILEs would change on the system")
    p.add_argument("files", nargs="*", type=Path)
    p = sub.add_parser("show", help="print the stored configuration")
    p.add_argument("type", nargs="?", choices=sorted(BAG_MODELS))
    p.add_argument("--rev", type=int, help="show an earlier revision")
    sub.add_parser("boot", help="boot parameters plus the stored configuration onto the box")
    sub.add_parser("reconcile", help="re-apply the stored configuration")
    sub.add_parser("history", help="list kept revisions")
    p = sub.add_parser("rollback", help="make revision REV (default: the previous) current")
    p.add_argument("rev", nargs="?", type=int)
    p = sub.add_parser("render", help="print what the configuration renders to")
    p.add_argument("what", choices=NAMES)
    p = sub.add_parser("state", help="this router's pair state, as CloudStack polls it")
    p.add_argument("--json", action="store_true", help="the whole persisted state")
    sub.add_parser("daemon", help="run the resident agent (under supervisord)")
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
    if args.command == "state":
        from .ha.state import HaState, agent_alive, status_line

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
        from .models import redact

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
            print(f"{r.rev:6d}  {when}  {r.cause}  [{', '.join(changed) or 'no change'}]")
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


def _read(path: Path) -> list[Command]:
    from .errors import BagError
    from .store.batch import read_commands

    try:
        return read_commands(path)
    except OSError as exc:
        raise BagError("", [f"{path}: cannot be read ({exc.strerror})"]) from None


if __name__ == "__main__":
    sys.exit(main())
