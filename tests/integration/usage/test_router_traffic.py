"""The router's own TCP on a public link: a load balancer's clients.

An isolated router's NETWORK_STATS (cs/CsAddress.py fw_router) counts it
("-o eth2 ! -i eth0 -p tcp" from OUTPUT, "-i eth2 ! -o eth0 -p tcp" to
INPUT), and netusage.sh -g answers it after the forwarded pair; a VPC
router's NETWORK_STATS_eth1 counts forwarded traffic only, so
vpc_netusage.sh -g does not include it. Read here with a resident agent
running (supervisord), so the metrics endpoint is the real one.
"""

from __future__ import annotations

import http.client
import re
import socket

from tests.cloudstack import network_usage

from ..services.conftest import Appliance
from ..services.test_loadbalancer import LB_IP, appliance_base, hits, lb_app  # noqa: F401
from .helpers import nft_counters, script

OWN_SENT, OWN_RECEIVED = "usage_eth1_own_tx", "usage_eth1_own_rx"


def metrics(app: Appliance) -> str:
    conn = http.client.HTTPConnection("localhost", timeout=10)
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(app.router.root / "run/vragent/api.sock"))
    conn.sock = sock
    conn.request("GET", "/metrics")
    return conn.getresponse().read().decode()


def test_load_balancer_clients_are_the_routers_own_tcp(lb_app: Appliance) -> None:  # noqa: F811
    app = lb_app
    router = app.router
    before = nft_counters(router.ns)
    vpc_before = script(router.ns, router.root, "vpc_netusage.sh", "-l", LB_IP, "-g").stdout
    served = hits(app, 20)
    assert set(served) == {"vm1", "vm2"}
    after = nft_counters(router.ns)
    own_rx = after[OWN_RECEIVED][1] - before[OWN_RECEIVED][1]
    own_tx = after[OWN_SENT][1] - before[OWN_SENT][1]
    # 20 HTTP exchanges: each at least a handshake, a request and a response.
    assert after[OWN_RECEIVED][0] - before[OWN_RECEIVED][0] >= 20 * 3
    assert own_rx > 20 * 3 * 40 and own_tx > 20 * 3 * 40
    # netusage.sh: forwarded pair, then the router's own TCP.
    out = script(router.ns, router.root, "netusage.sh", "-g", "-l", LB_IP)
    assert (out.returncode, out.stderr) == (0, "")
    fields = [int(f) for f in out.stdout.split(":")[:-1]]
    assert fields[2:] == [after[OWN_SENT][1], after[OWN_RECEIVED][1]]
    assert network_usage(out.stdout) == (fields[0] + fields[2], fields[1] + fields[3])
    # vpc_netusage.sh: forwarded only, as upstream's NETWORK_STATS_eth1; the
    # balancer's connections to its backends are the router's own, not forwarded.
    vpc_after = script(router.ns, router.root, "vpc_netusage.sh", "-l", LB_IP, "-g").stdout
    assert vpc_after == vpc_before
    # The metrics endpoint of the resident agent says the same.
    text = metrics(app)
    for direction, name in (("sent", OWN_SENT), ("received", OWN_RECEIVED)):
        m = re.search(rf'^vragent_usage_bytes_total\{{direction="{direction}",'
                      rf'interface="eth1",path="router"\}} (\S+)$', text, re.M)
        assert m is not None, text
        assert float(m[1]) >= after[name][1]
