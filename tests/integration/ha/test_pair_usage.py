"""Network usage on a redundant pair: the counters grow where the traffic is
forwarded, the master's; a hard failover neither counts a datagram twice nor
leaves one uncounted that was delivered.

The management server polls each router of a pair on its own and keeps a
running total per router (RouterNetworkStatsServiceImpl.collectNetworkStatistics:
user_statistics by router id; a figure lower than the last is taken for a
reset). So each router must answer what it carried itself: the backup, which
forwards nothing, counts nothing (upstream's backup answers its own iptables
counters the same way, vpc_netusage.sh -g), and the old master keeps the
figures it reached, for its next poll.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from vragent_lab.netns import wait_for
from vragent_lab.pair import OUTSIDE, PUBLIC_FORWARD, PUBLIC_SNAT, Pair, PairRouter

from tests.cloudstack import network_usage

from ..usage.helpers import UDP_HEADERS, Echo, Stream, delta, nft_counters, script
from .conftest import ADVERT_INT, Sampler, running_pair

ECHO_PORT = 7100
SIZE = 200  # each datagram's payload: 228 bytes counted
INTERVAL = 0.005
SENT, RECEIVED = "usage_eth1_fwd_tx", "usage_eth1_fwd_rx"


@pytest.fixture(scope="module", params=[False, True], ids=["sync-link", "cloudstack"])
def usage_pair(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pair, Sampler]]:
    with running_pair(tmp_path_factory.mktemp("upair"), ADVERT_INT,
                      cloudstack=request.param) as running:
        yield running


def polled(r: PairRouter, ip: str = PUBLIC_SNAT) -> tuple[int, int]:
    proc = script(r.ns, r.root, "vpc_netusage.sh", "-l", ip, "-g")
    assert (proc.returncode, proc.stderr) == (0, ""), proc
    return network_usage(proc.stdout)


def streamed(pair: Pair, count: int) -> tuple[dict[str, int], int]:
    """``count`` datagrams VM1 -> outside through source NAT, echoed back."""
    echo = Echo(pair.ns("out"), ECHO_PORT)
    try:
        result = Stream(pair.ns("vm1"), OUTSIDE, ECHO_PORT, count, INTERVAL, SIZE).result(60)
        return result, echo.stop()
    finally:
        echo.kill()


def test_only_the_master_counts(usage_pair: tuple[Pair, Sampler]) -> None:
    pair, _ = usage_pair
    master = pair.wait_one_master()
    backup = pair.other(master)
    before = {r.name: nft_counters(r.ns) for r in pair.routers}
    result, echoed = streamed(pair, 400)
    after = {r.name: nft_counters(r.ns) for r in pair.routers}
    assert result["replies"] == echoed == 400, result
    for name in (SENT, RECEIVED):
        d = delta(before[master.name], after[master.name], name)
        assert (d.packets, d.octets) == (400, 400 * (SIZE + UDP_HEADERS)), (name, d)
        assert delta(before[backup.name], after[backup.name], name).packets == 0
    # Both answer the poll; the backup with figures that did not move.
    assert polled(backup) == (after[backup.name][SENT][1], after[backup.name][RECEIVED][1])
    assert polled(master) == (after[master.name][SENT][1], after[master.name][RECEIVED][1])
    # Any address of the link answers the same: the server polls the NIC's address.
    assert polled(master, PUBLIC_FORWARD) == polled(master)


def test_a_hard_failover_counts_every_delivered_datagram_once(
        usage_pair: tuple[Pair, Sampler]) -> None:
    pair, sampler = usage_pair
    master = pair.wait_one_master()
    survivor = pair.other(master)
    count = 2400  # 12 s at one datagram every 5 ms, the failover in the middle
    before = {r.name: nft_counters(r.ns) for r in pair.routers}
    polled_before = {r.name: polled(r) for r in pair.routers}
    echo = Echo(pair.ns("out"), ECHO_PORT)
    stream = Stream(pair.ns("vm1"), OUTSIDE, ECHO_PORT, count, INTERVAL, SIZE)
    try:
        wait_for(lambda: delta(before[master.name], nft_counters(master.ns), SENT).packets
                 >= 500, 20, "the stream through the master")
        sampler.healthy(False)
        killed = time.monotonic()
        master.power_off()  # every process killed, every link down; the kernel stays
        wait_for(lambda: survivor.status() == "PRIMARY", 15, "the backup to take over")
        takeover = time.monotonic() - killed
        result = stream.result(60)
        echoed = echo.stop()
    finally:
        stream.kill()
        echo.kill()
    after = {r.name: nft_counters(r.ns) for r in pair.routers}
    old, new = master.name, survivor.name
    sent = {n: delta(before[n], after[n], SENT) for n in (old, new)}
    received = {n: delta(before[n], after[n], RECEIVED) for n in (old, new)}
    counted_sent = sum(d.packets for d in sent.values())
    counted_received = sum(d.packets for d in received.values())
    lost = result["sent"] - echoed
    print(f"\nfailover ({'cloudstack' if pair.cloudstack else 'sync-link'} mode, takeover "
          f"{takeover:.2f} s): {result['sent']} datagrams sent, {echoed} reached the outside "
          f"host, {result['replies']} replies came back; counted sent: {sent[old].packets} by "
          f"the old master + {sent[new].packets} by the new = {counted_sent} "
          f"(error {counted_sent - echoed}); counted received: {received[old].packets} + "
          f"{received[new].packets} = {counted_received} "
          f"(error {counted_received - result['replies']}); lost in the outage, counted by "
          f"neither: {lost} requests, {echoed - result['replies']} replies "
          f"({lost * INTERVAL:.2f} s of traffic)")
    # Both routers carried part of it: the failover happened mid-stream.
    assert sent[old].packets > 0 and sent[new].packets > 0
    # Every delivered datagram counted by exactly one router, nothing else counted.
    # A datagram counted in the instant the old master's links went down could
    # be counted and not delivered: at most one each way, stated above.
    assert 0 <= counted_sent - echoed <= 1
    assert 0 <= counted_received - result["replies"] <= 1
    for d in (*sent.values(), *received.values()):
        assert d.octets == d.packets * (SIZE + UDP_HEADERS)
    # What the management server records: each router's own figures. The old
    # master, powered off but not rebooted, still answers what it reached.
    for r in pair.routers:
        now = polled(r)
        assert (now[0] - polled_before[r.name][0], now[1] - polled_before[r.name][1]) == (
            sent[r.name].octets, received[r.name].octets)
    total = sum(polled(r)[0] - polled_before[r.name][0] for r in pair.routers)
    assert total == counted_sent * (SIZE + UDP_HEADERS)

    # The old master comes back (no reboot) as backup: its figures do not move.
    frozen = polled(master)
    master.power_on()
    wait_for(lambda: master.status() == "BACKUP", 30, "the old master to be backup")
    streamed(pair, 200)
    assert polled(master) == frozen
    pair.wait_one_master()
    sampler.healthy(True)
