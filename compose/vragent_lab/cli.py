"""``vragent-lab``: the compose lab for a person (the tests use the library).

    vragent-lab run                 the main job (make lab): up, configure, check, fail over, report
    vragent-lab up [--mode M]       bring a topology up (redundant-vpc or single-router)
    vragent-lab apply ROUTER FILE   send a CloudStack bag to a router, as a management server does
    vragent-lab failover [--kind kill|stop]
    vragent-lab lb [--kind kill|stop]   a load balancer on both routers, HTTP through a failover
    vragent-lab vpn [--kind kill|stop]  a VPN peer container and a site-to-site tunnel through a
                                        failover
    vragent-lab upgrade [--image REF]   replace both routers by containers of a new image under
                                        traffic: the backup, a planned switchover, the other
    vragent-lab status | report | down
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .lab import Lab, LabError
from .scenario import (
    check_traffic,
    configure,
    failover,
    lb_job,
    main_job,
    vpn_job,
    write_report,
)
from .upgrade import upgrade_job


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vragent-lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topology", default="redundant-vpc",
                        choices=("redundant-vpc", "single-router"))
    parser.add_argument("--mode", default="sync-link", choices=("sync-link", "cloudstack"),
                        help="how the pair finds its peer (default: sync-link)")
    parser.add_argument("--advert-int", type=float, default=1.0)
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    lab = Lab(topology=args.topology, mode=args.mode, advert_int=args.advert_int,
              workdir=args.results)
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
