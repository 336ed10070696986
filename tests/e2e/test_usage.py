"""Network usage in containers, polled through the entry point a management
server uses: ``/opt/cloud/bin/vpc_netusage.sh``, run in the router as its ssh
to port 3922 runs it (VRScripts.VPC_NETUSAGE; docker exec hands back stdout
and stderr as one text, as SshHelper does), and read with the hypervisor
resources' parser (tests.cloudstack.network_usage). The same figures are on
the agent's metrics endpoint.
"""

from __future__ import annotations

import json
import re

import pytest
from vragent_lab.lab import OUTSIDE, PUBLIC_FORWARD, PUBLIC_SNAT, PUBLIC_STATIC, Lab
from vragent_lab.scenario import SSH

from tests.cloudstack import network_usage
from tests.integration.usage.helpers import delta, send, serving

SCRIPT = "/opt/cloud/bin/vpc_netusage.sh"
VPC_CIDR = "10.10.0.0/16"
UP, DOWN = 200_000, 800_000
# (client, server, address and port the client dials, the server's port, which
# way the client's bytes go as the VPC sees them)
PATHS = {
    "source NAT": ("vm1", "outside", OUTSIDE, 7010, 7010, "sent"),
    "port forward": ("outside", "vm1", PUBLIC_FORWARD, 2222, SSH, "received"),
    "static NAT": ("outside", "vm2", PUBLIC_STATIC, 80, 80, "received"),
}
# The metrics endpoint, read where the agent serves it (its API socket).
METRICS = ("import http.client, socket\n"
           "c = http.client.HTTPConnection('localhost')\n"
           "c.sock = socket.socket(socket.AF_UNIX); c.sock.connect('/run/vragent/api.sock')\n"
           "c.request('GET', '/metrics'); print(c.getresponse().read().decode())\n")


def usage(lab: Lab, router: str, *args: str) -> tuple[int, str]:
    """What the management server gets back: the exit code and the one text."""
    result = lab.container(router).exec_run([SCRIPT, *args])
    return result.exit_code, result.output.decode()


def counters(lab: Lab, router: str) -> dict[str, tuple[int, int]]:
    out = json.loads(lab.exec(router, "nft", "-j", "list", "counters", "table", "inet",
                              "vragent"))
    return {c["name"]: (c["packets"], c["bytes"]) for item in out["nftables"]
            if (c := item.get("counter"))}


def scraped(lab: Lab, router: str) -> dict[tuple[str, str, str], float]:
    text = lab.exec(router, "/opt/vragent/bin/python", "-c", METRICS)
    found = {}
    for m in re.finditer(r'^vragent_usage_bytes_total\{direction="(\w+)",interface="([^"]*)",'
                         r'path="(\w+)"\} (\S+)$', text, re.M):
        found[(m[2], m[1], m[3])] = float(m[4])
    return found


def link_of(lab: Lab, router: str) -> str:
    names = [n for n in counters(lab, router) if n.endswith("_fwd_tx")]
    assert len(names) == 1, names
    return names[0].removeprefix("usage_").removesuffix("_fwd_tx")


@pytest.fixture(scope="module")
def created(lab: Lab) -> Lab:
    """What the management server sends after the public NIC is plugged
    (VpcVirtualNetworkApplianceManagerImpl: NetworkUsageCommand "create")."""
    for r in lab.routers:
        assert usage(lab, r, "-l", PUBLIC_SNAT, "-c", "-v", VPC_CIDR) == (0, "")
    return lab


@pytest.mark.parametrize("path", list(PATHS))
def test_the_poll_counts_known_traffic_on_the_master_only(created: Lab, path: str) -> None:
    lab = created
    master = lab.wait_one_master()
    backup = next(r for r in lab.routers if r != master)
    link = link_of(lab, master)
    sent_name, received_name = f"usage_{link}_fwd_tx", f"usage_{link}_fwd_rx"
    client, server, host, port, listen, client_way = PATHS[path]
    before = {r: counters(lab, r) for r in lab.routers}
    polled_before = {r: network_usage(usage(lab, r, "-l", PUBLIC_SNAT, "-g")[1])
                     for r in lab.routers}
    with serving(lab.netns(server), listen, DOWN):
        assert send(lab.netns(client), host, port, UP) == {"sent": UP, "received": DOWN}
    after = {r: counters(lab, r) for r in lab.routers}
    rc, text = usage(lab, master, "-l", PUBLIC_SNAT, "-g")
    assert rc == 0 and re.fullmatch(r"[0-9]+:[0-9]+:", text), text
    polled = network_usage(text)
    payload = (UP, DOWN) if client_way == "sent" else (DOWN, UP)
    sent = delta(before[master], after[master], sent_name)
    received = delta(before[master], after[master], received_name)
    print(f"\n{path} through {master}: polled {polled_before[master]} -> {polled}; "
          f"sent +{sent.octets} B in {sent.packets} packets for {payload[0]} B, received "
          f"+{received.octets} B in {received.packets} packets for {payload[1]} B")
    assert sent.within_headers(payload[0]) and received.within_headers(payload[1])
    assert (polled[0] - polled_before[master][0], polled[1] - polled_before[master][1]) == (
        sent.octets, received.octets)
    # The backup forwarded nothing and counted nothing; it answers all the same.
    assert network_usage(usage(lab, backup, "-l", PUBLIC_SNAT, "-g")[1]) == \
        polled_before[backup]
    # The metrics endpoint shows the same figures.
    metrics = scraped(lab, master)
    assert metrics[(link, "sent", "forwarded")] == after[master][sent_name][1]
    assert metrics[(link, "received", "forwarded")] == after[master][received_name][1]


def test_bad_arguments_and_unknown_addresses(created: Lab) -> None:
    lab = created
    master = lab.wait_one_master()
    counted = usage(lab, master, "-l", PUBLIC_SNAT, "-g")
    rc, text = usage(lab, master, "-l", "100.64.10.10;reboot", "-r")
    assert rc == 2 and "is not an IP address" in text and "Traceback" not in text
    assert usage(lab, master, "-l", "100.64.10.99", "-g") == (0, "")
    rc, text = usage(lab, master, "-l", "100.64.10.99", "-r")
    assert rc == 1 and "no public link holds 100.64.10.99" in text
    assert usage(lab, master, "-l", PUBLIC_SNAT, "-g") == counted
    # VPN (-n): nothing went through a tunnel.
    assert usage(lab, master, "-l", PUBLIC_SNAT, "-n") == (0, "0:0:")
    saved = lab.exec(master, "cat", "/var/lib/vragent/usage.json")
    assert json.loads(saved) == {"created": {PUBLIC_SNAT: VPC_CIDR}}
