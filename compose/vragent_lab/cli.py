"""``vragent-lab``: the compose lab for a person (the tests use the library).

    vragent-lab run                 the main job (make lab): up, configure, check, fail over, report
    vragent-lab [--mode M] up       bring a topology up (redundant-vpc or single-router)
    vragent-lab apply ROUTER FILE   send a CloudStack bag to a router, as a management server does
    vragent-lab failover [--kind kill|stop]
    vragent-lab lb [--kind kill|stop]   a load balancer on both routers, HTTP through a failover
    vragent-lab vpn [--kind kill|stop]  a VPN peer container and a site-to-site tunnel through a
                                        failover
    vragent-lab v6 [--kind kill|stop]   IPv6 between the dual-stack tiers (SLAAC) through a
                                        failover: outage and TCP connections kept
    vragent-lab upgrade [--image REF]   replace both routers by containers of a new image under
                                        traffic: the backup, a planned switchover, the other
    vragent-lab status | report | down

Every command after up works on the lab as it was brought up: the topology,
mode and advert interval are read back from the running routers, and an
option that contradicts them is refused (vragent_lab/recorded.py).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

from .lab import PROJECT, Lab, LabError
from .recorded import BRINGS_UP, MODES, TOPOLOGIES, Contradiction, Given, resolve, running
from .scenario import (
    check_traffic,
    configure,
    failover,
    ipv6_job,
    lb_job,
    main_job,
    vpn_job,
    write_report,
)
from .upgrade import upgrade_job


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vragent-lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # Left out, these three are what the running lab was brought up with
    # (recorded.py); only up and run choose them.
    parser.add_argument("--topology", choices=TOPOLOGIES,
                        help="default: the running lab's, else redundant-vpc")
    parser.add_argument("--mode", choices=MODES,
                        help="how the pair finds its peer (default: the running lab's, "
                             "else sync-link)")
    parser.add_argument("--advert-int", type=_seconds, metavar="SECONDS",
                        help="VRRP advert interval (default: the running lab's, else 1)")
    parser.add_argument("--project", default=PROJECT, type=_project,
                        help=f"the compose project, which names everything the lab creates "
                             f"(default: {PROJECT})")
    parser.add_argument("--results", type=Path, default=Path("results"))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="the main job")
    sub.add_parser("up", help="bring the topology up and configure the sample VPC")
    p = sub.add_parser("apply", help="send bag files to a router")
    p.add_argument("router")
    p.add_argument("files", nargs="+", type=Path)
    p = sub.add_parser("failover", help="break the master under load and report")
    p.add_argument("--kind", choices=("kill", "stop"), default="kill")
    p = sub.add_parser("lb", help="load-balance HTTP over vm1 and vm2 on both routers, "
                       "break the master under HTTP load and report")
    p.add_argument("--kind", choices=("kill", "stop"), default="kill")
    p = sub.add_parser("vpn", help="a VPN peer on the public network and a site-to-site "
                       "tunnel on both routers; break the master and time the tunnel's return")
    p.add_argument("--kind", choices=("kill", "stop"), default="kill")
    p = sub.add_parser("v6", help="IPv6 between the dual-stack tiers' VMs (SLAAC addresses) "
                       "through a failover: the outage and the IPv6 TCP connections kept")
    p.add_argument("--kind", choices=("kill", "stop"), default="kill")
    p = sub.add_parser("upgrade", help="upgrade the running pair to a new router image without "
                       "an outage: the backup replaced (keeping its stored configuration), a "
                       "planned switchover, the other router replaced; under traffic, reported")
    p.add_argument("--image", metavar="REF",
                   help="the image to upgrade to (default: the one the routers were created "
                        "from, as fresh containers)")
    sub.add_parser("status", help="each router's state")
    sub.add_parser("report", help="the state reports the routers pushed")
    sub.add_parser("down", help="remove everything the lab created")
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 255):  # keepalived's advert_int range
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds in (0, 255]")
    return value


def _project(text: str) -> str:
    # It names the lab's bridges too: "<project>-sync" must fit IFNAMSIZ (15).
    if not re.fullmatch(r"[a-z][a-z0-9]{0,9}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a project name (a lowercase "
                                         "letter, then up to 9 lowercase letters or digits)")
    return text


def _lab(args: argparse.Namespace) -> Lab:
    """The lab this command works on: what runs under the project, as it was
    brought up (up and run: as the options say, after taking down what ran)."""
    given = Given(args.topology, args.mode, args.advert_int)
    now = running(Lab(project=args.project).router_labels())
    opts = resolve(args.command, given, now, args.project, PROJECT)
    if args.command in BRINGS_UP and now is not None and now.topology != opts.topology:
        # Another topology's compose file would not name all of it.
        Lab(now.topology, now.mode, now.advert_int, project=args.project,
            workdir=args.results).down(quiet=True)
    return Lab(opts.topology, opts.mode, opts.advert_int, project=args.project,
               workdir=args.results)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        lab = _lab(args)
    except (Contradiction, LabError) as exc:
        print(f"vragent-lab: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, Contradiction) else 1
    try:
        if args.command == "run":
            return main_job(lab)
        if args.command == "up":
            lab.up()
            configure(lab)
        elif args.command == "apply":
            for path in args.files:
                print(lab.apply(args.router, json.loads(path.read_text())), end="")
        elif args.command == "failover":
            master = lab.wait_one_master()
            traffic = check_traffic(lab, master)
            write_report(lab, traffic, failover(lab, args.kind))
        elif args.command == "lb":
            return lb_job(lab, args.kind)
        elif args.command == "v6":
            return ipv6_job(lab, args.kind)
        elif args.command == "vpn":
            return vpn_job(lab, args.kind)
        elif args.command == "upgrade":
            return upgrade_job(lab, args.image)
        elif args.command == "status":
            for router, state in lab.statuses().items():
                print(f"{router}: {state}")
        elif args.command == "report":
            for rep in lab.reports():
                print(json.dumps(rep))
        elif args.command == "down":
            lab.down()
    except LabError as exc:
        print(f"vragent-lab: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
