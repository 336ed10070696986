"""Network usage with real packets: known traffic through source NAT, a port
forward and a static NAT, counted by ``vpc_netusage.sh -g`` as the management
server polls it; the counters across configuration changes (a change of
chains, and a reload of the whole table), ``-r``, ``-n`` and bad arguments.

Upstream: systemvm/debian/opt/cloud/bin/vpc_netusage.sh (the options and the
``<sent>:<received>:`` answer), cs/CsAddress.py (NETWORK_STATS_eth1: what
leaves by the public link from a tier is sent, what comes in by it to a tier
is received); the answer is read by tests.cloudstack.network_usage, the
hypervisor resources' parser.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vragent_lab.netns import OUTSIDE, OUTSIDE_FAR

from tests.cloudstack import network_usage

from ..harness import ALL_BAGS, SAMPLE, Router, ns_of
from .helpers import HEADER_MAX, HEADER_MIN, delta, nft_counters, script, send, serving

SNAT_IP, PF_IP, STATIC_IP = "100.64.10.10", "100.64.10.11", "100.64.10.12"
SENT, RECEIVED = "usage_eth1_fwd_tx", "usage_eth1_fwd_rx"
UP, DOWN = 300_000, 1_200_000


def usage(router: Router, *args: str) -> tuple[int, str, str]:
    proc = script(router.ns, router.root, "vpc_netusage.sh", *args)
    return proc.returncode, proc.stdout, proc.stderr


def polled(router: Router, ip: str = SNAT_IP) -> tuple[int, int]:
    """What the management server records from ``-g``: (sent, received)."""
    rc, out, err = usage(router, "-l", ip, "-g")
    assert (rc, err) == (0, ""), err
    return network_usage(out)


@pytest.fixture
def vpc(router: Router) -> Router:
    router.apply(*ALL_BAGS)
    return router


# Each path: (client ns, server ns, address and port the client dials, the
# server's port, which way the client's bytes go as the VPC sees them).
PATHS = {
    "source NAT": ("vm1", "out", OUTSIDE_FAR, 7000, 7000, "sent"),
    "port forward": ("out", "vm1", PF_IP, 2222, 22, "received"),
    "static NAT": ("out", "vm2", STATIC_IP, 80, 80, "received"),
}


@pytest.mark.parametrize("path", list(PATHS))
def test_known_traffic_is_counted_within_the_headers(vpc: Router, path: str) -> None:
    client, server, host, port, listen, client_way = PATHS[path]
    before = nft_counters(vpc.ns)
    polled_before = polled(vpc)
    with serving(ns_of(vpc, server), listen, DOWN):
        crossed = send(ns_of(vpc, client), host, port, UP)
    assert crossed == {"sent": UP, "received": DOWN}
    after = nft_counters(vpc.ns)
    polled_after = polled(vpc)
    payload = {"sent": UP, "received": DOWN} if client_way == "sent" else {
        "sent": DOWN, "received": UP}
    sent, received = delta(before, after, SENT), delta(before, after, RECEIVED)
    print(f"\n{path}: sent {sent.octets} B in {sent.packets} packets for {payload['sent']} B "
          f"of payload (+{sent.overhead(payload['sent'])} B, "
          f"{sent.overhead(payload['sent']) / max(sent.packets, 1):.1f} per packet); "
          f"received {received.octets} B in {received.packets} packets for "
          f"{payload['received']} B (+{received.overhead(payload['received'])} B, "
          f"{received.overhead(payload['received']) / max(received.packets, 1):.1f} per packet)")
    assert sent.within_headers(payload["sent"]), (sent, HEADER_MIN, HEADER_MAX)
    assert received.within_headers(payload["received"]), (received, HEADER_MIN, HEADER_MAX)
    # The poll answers exactly the counters: the server records what was counted.
    assert (polled_after[0] - polled_before[0], polled_after[1] - polled_before[1]) == (
        sent.octets, received.octets)
    # Every address of the link answers the link's counters (upstream: the
    # chain of the device that holds it).
    assert polled(vpc, PF_IP) == polled(vpc, STATIC_IP) == polled_after
    # Not VPN traffic.
    assert network_usage(usage(vpc, "-l", SNAT_IP, "-n")[1]) == (0, 0)


def _ftp_forward(tmp: Path) -> Path:
    bag = json.loads((SAMPLE / "forwarding_rules.json").read_text())
    bag["rules"].append({"revoke": False, "protocol": "tcp", "source_ip_address": PF_IP,
                         "source_port_range": "2121:2121", "destination_ip_address": "10.10.1.10",
                         "destination_port_range": "21:21"})
    out = tmp / "ftp_forward.json"
    out.write_text(json.dumps(bag))
    return out


def _acl_change(tmp: Path) -> Path:
    bag = json.loads((SAMPLE / "network_acl_tier2.json").read_text())
    bag["ingress_rules"][1]["allowed"] = True
    out = tmp / "acl.json"
    out.write_text(json.dumps(bag))
    return out


def test_counters_survive_configuration_changes_and_reset_on_r(vpc: Router,
                                                               tmp_path: Path) -> None:
    with serving(ns_of(vpc, "out"), 7000, DOWN):
        send(ns_of(vpc, "vm1"), OUTSIDE_FAR, 7000, UP)
    first = polled(vpc)
    assert first[0] > UP and first[1] > DOWN

    # A change of chains (an ACL): the counter objects are not touched.
    handle = vpc.table_handle()
    vpc.apply(_acl_change(tmp_path))
    assert vpc.table_handle() == handle
    assert polled(vpc) == first
    # A reload of the whole table (an FTP forward brings a conntrack helper):
    # the counters are declared again with the values they held.
    vpc.apply(_ftp_forward(tmp_path))
    assert vpc.table_handle() != handle, "the table was not reloaded whole"
    assert polled(vpc) == first
    # A reboot's own boot path: the agent reloads everything it does not trust.
    (vpc.root / "run/vragent/netfilter.applied.json").unlink()
    vpc.run("reconcile")
    assert polled(vpc) == first

    # The counts carry on from there.
    before = nft_counters(vpc.ns)
    with serving(ns_of(vpc, "out"), 7000, DOWN):
        send(ns_of(vpc, "vm1"), OUTSIDE, 7000, UP)
    after = nft_counters(vpc.ns)
    second = polled(vpc)
    assert second == (first[0] + delta(before, after, SENT).octets,
                      first[1] + delta(before, after, RECEIVED).octets)

    # -r: zero, and the server's next poll reads a reset (a lower figure).
    assert usage(vpc, "-l", SNAT_IP, "-r") == (0, "", "")
    assert usage(vpc, "-l", SNAT_IP, "-g")[1] == "0:0:"
    with serving(ns_of(vpc, "out"), 7000, 1000):
        send(ns_of(vpc, "vm1"), OUTSIDE, 7000, 1000)
    assert all(0 < n < 10_000 for n in polled(vpc))


def test_an_address_the_router_does_not_have(vpc: Router) -> None:
    # Upstream's getEthByIp finds no device: nothing printed, success.
    assert usage(vpc, "-l", "100.64.10.99", "-g") == (0, "", "")
    assert usage(vpc, "-l", "10.10.1.1", "-g") == (0, "", "")  # a tier's, not public
    rc, out, err = usage(vpc, "-l", "100.64.10.99", "-r")
    assert (rc, out) == (1, "") and "no public link holds 100.64.10.99" in err
    assert "Traceback" not in err


def test_bad_arguments_change_nothing(vpc: Router) -> None:
    with serving(ns_of(vpc, "out"), 7000, 5000):
        send(ns_of(vpc, "vm1"), OUTSIDE, 7000, 5000)
    counted = polled(vpc)
    for argv in (["-r", "-l", "100.64.10.10;reboot"], ["-r", "-l", "$(id)"],
                 ["-c", "-l", SNAT_IP, "-v", "10.10.0.0/99"], ["-r"], ["-rx", "-l", SNAT_IP]):
        rc, out, err = usage(vpc, *argv)
        assert (rc, out) == (2, ""), argv
        assert "Usage: vpc_netusage.sh" in err and "Traceback" not in err
    assert polled(vpc) == counted
    assert not (vpc.root / "var/lib/vragent/usage.json").exists()


def test_create_is_remembered_across_a_reboot(vpc: Router) -> None:
    assert usage(vpc, "-l", SNAT_IP, "-c", "-v", "10.10.0.0/16") == (0, "", "")
    saved = json.loads((vpc.root / "var/lib/vragent/usage.json").read_text())
    assert saved == {"created": {SNAT_IP: "10.10.0.0/16"}}
    assert usage(vpc, "-l", SNAT_IP, "-d") == (0, "", "")
    assert json.loads((vpc.root / "var/lib/vragent/usage.json").read_text()) == {
        "created": {}}


def test_isolated_script_answers_the_link_with_the_routers_own_tcp(vpc: Router) -> None:
    """netusage.sh: per public link, forwarded then the router's own TCP."""
    with serving(ns_of(vpc, "out"), 7000, 4000):
        send(ns_of(vpc, "vm1"), OUTSIDE, 7000, 4000)
    out = script(vpc.ns, vpc.root, "netusage.sh", "-g")
    assert out.returncode == 0 and out.stderr == ""
    fields = out.stdout.split(":")
    assert len(fields) == 5 and fields[-1] == ""
    counters = nft_counters(vpc.ns)
    assert [int(f) for f in fields[:4]] == [counters[n][1] for n in (
        SENT, RECEIVED, "usage_eth1_own_tx", "usage_eth1_own_rx")]
    assert network_usage(out.stdout)[0] >= 4000
