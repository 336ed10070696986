"""Load balancing on a redundant pair: both routers run haproxy bound to the
public VIP (whether they hold it or not), so a hard kill of the master moves
the balanced traffic with the address.

Upstream's redundant router runs haproxy on the master only (CsRedundant
starts it in set_master); here both run it, and the new master serves as
soon as it holds the address. What is lost is what was in flight on the
dead master: its connections die with it (a proxy's TCP sessions cannot be
taken over), and new connections wait for the address to move.

Upstream file: systemvm/debian/opt/cloud/bin/cs/CsRedundant.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vragent_lab import loadbalancer as lb
from vragent_lab.netns import wait_for
from vragent_lab.pair import Pair

from .conftest import ADVERT_INT, running_pair

PEER = str(Path(__file__).resolve().parents[1] / "http_peer.py")
LB_IP = "100.64.10.11"
BACKENDS = (("vm1", "10.10.1.10"), ("vm2", "10.10.2.10"))


@contextmanager
def backends(pair: Pair) -> Iterator[None]:
    procs = [subprocess.Popen(["ip", "netns", "exec", pair.lab.ns(vm), sys.executable, PEER,
                               "serve", vm, "80"], stdout=subprocess.PIPE, text=True)
             for vm, _ in BACKENDS]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def get(pair: Pair) -> str:
    proc = subprocess.run(["ip", "netns", "exec", pair.lab.ns("out"), "curl", "-s", "-m", "2",
                           f"http://{LB_IP}/"], capture_output=True, text=True, check=False)
    return proc.stdout.split(" ", 1)[0] if proc.returncode == 0 else ""


def served(router: Any) -> int:
    """Sessions the router's haproxy took on the balanced IP (0 while it does not answer)."""
    from vragent.system.haproxy import ask, parse_stat

    try:
        from vragent.features.loadbalancer.daemon import SOCKET

        rows = parse_stat(ask(router.root / "run/vragent" / SOCKET.name, "show stat"))
    except OSError:
        return 0
    return sum(int(r["stot"]) for r in rows if r["svname"] == "FRONTEND"
               and r["pxname"] == f"{LB_IP.replace('.', '_')}-80")


def test_hard_kill_of_the_master_moves_the_balanced_traffic(tmp_path: Path) -> None:
    bag = lb.bag(lb.Command(rules=[lb.Rule(LB_IP, 80, [(ip, 80) for _, ip in BACKENDS])],
                            stats=lb.Stats("10.10.1.1")), router_ip="10.10.1.1")
    with running_pair(tmp_path / "pair", ADVERT_INT) as (pair, sampler), backends(pair):
        for r in pair.routers:
            r.apply(bag)
        # Both run haproxy, the backup too: bound to the VIP it does not hold.
        for r in pair.routers:
            wait_for(lambda r=r: r.service_running("haproxy"), 20,  # type: ignore[misc]
                     f"haproxy on {r.name}")
        wait_for(lambda: {get(pair) for _ in range(4)} == {"vm1", "vm2"}, 20,
                 "both backends through the master")
        master = pair.master()
        assert master is not None
        other = pair.other(master)
        stop, out = tmp_path / "stop", tmp_path / "load.json"
        client = subprocess.Popen(["ip", "netns", "exec", pair.lab.ns("out"), sys.executable,
                                   PEER, "load", f"http://{LB_IP}/", "4", str(stop), str(out)],
                                  stdout=subprocess.PIPE, text=True)
        assert client.stdout is not None and client.stdout.readline().strip() == "ready"
        sampler.healthy(False)
        try:
            wait_for(lambda: served(master) >= 200, 10, "load through the master")
            killed = time.monotonic()
            master.kill()
            wait_for(lambda: other.status() == "PRIMARY", 10, "the backup to take over")
            wait_for(lambda: {get(pair) for _ in range(4)} == {"vm1", "vm2"}, 10,
                     "both backends through the new master")
            served_again = time.monotonic() - killed
            wait_for(lambda: served(other) >= 200, 10, "load through the new master")
        finally:
            stop.touch()
            client.wait(timeout=30)
        result: dict[str, Any] = json.loads(out.read_text())
        ok = sum(result["backends"].values())
        failed = sum(result["failures"].values())
        # The outage: the longest stretch without a successful response.
        done = sorted(start + took for start, took, good in result["samples"] if good)
        outage = max(b - a for a, b in zip(done, done[1:], strict=False))
        # Requests lost in flight: connections the dead master held. The
        # refusals are new connections tried (at once, again and again) while
        # the dead router's kernel still held the address.
        in_flight = sum(n for e, n in result["failures"].items()
                        if e in ("RemoteDisconnected", "IncompleteRead", "ConnectionResetError"))
        print(f"\nload balancer, hard kill of the master at advert_int {ADVERT_INT} s: "
              f"{ok} requests served, {in_flight} lost in flight, {failed} failed in all "
              f"({result['failures']}); outage {outage * 1000:.0f} ms; both backends again "
              f"after {served_again * 1000:.0f} ms")
        assert ok > 0 and set(result["backends"]) == {"vm1", "vm2"}
        # At most what each of the 4 clients had in flight, twice over.
        assert in_flight <= 8
        # The address moves after 3 missed adverts; the backends are up within
        # half a second of it (downinter, fastinter).
        assert outage < 3.0 and served_again < 5.0
        master.start()
        wait_for(lambda: master.status() == "BACKUP", 30, "the old master to rejoin as backup")
        wait_for(lambda: master.service_running("haproxy"), 20, "haproxy on the old master")
        pair.wait_one_master()
        sampler.healthy(True)
