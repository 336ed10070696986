"""Failover in containers (the compose lab): ``make bench-lab``.

For advert_int 1.0 and 0.2: N hard kills of the master container (``docker
kill``) under load (50 TCP connections through source NAT, one through the
port forward, a UDP probe every 10 ms), each followed by the dead router's
restart, then one graceful stop (``docker stop``). Prints the probe's outage
(median, p95, max), the connections kept, and as a ratio the outage against
the takeover the lab saw in the same rounds (kill until the backup reports
PRIMARY), plus the graceful stop's outage against the kills'.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from vragent_lab.lab import Lab, LabError
from vragent_lab.scenario import CONNECTIONS, configure, failover


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else args.rounds
    rows = []
    for advert_int in (1.0, 0.2):
        lab = Lab(advert_int=advert_int, workdir=Path(tempfile.mkdtemp(prefix="vrlab-bench-")))
        try:
            lab.up()
            configure(lab)
            kills = [failover(lab, "kill") for _ in range(rounds)]
            stop = failover(lab, "stop")
        except LabError as exc:
            print(f"bench-lab: {exc}", file=sys.stderr)
            return 1
        finally:
            lab.down(quiet=True)
        outages = [k.outage_ms for k in kills]
        takeovers = [float(k.takeover_ms) for k in kills]
        kept = sum(k.connections["source_nat"][1] + k.connections["port_forward"][1]
                   for k in kills)
        rows.append((advert_int, statistics.median(outages), p95(outages), max(outages),
                     statistics.median(takeovers), kept, rounds * (CONNECTIONS + 1),
                     stop.outage_ms))
    print(f"\n{rounds} hard kills per row, in containers (docker kill of the master)\n")
    print("| advert_int | outage median | p95 | max | takeover median | outage / takeover "
          "| connections kept | graceful stop outage | stop / kill |")
    print("|---|---|---|---|---|---|---|---|---|")
    for adv, med, q95, mx, take, kept, total, stop_ms in rows:
        print(f"| {adv:g} | {med:.0f} ms | {q95:.0f} ms | {mx:.0f} ms | {take:.0f} ms | "
              f"{med / take:.2f} | {100 * kept / total:.0f} % ({kept}/{total}) | "
              f"{stop_ms:.0f} ms | {stop_ms / med:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
