"""The usage feature: what a management server bills a network for.

Upstream counts in iptables chains made by configure.py (cs/CsAddress.py:
``NETWORK_STATS_eth1`` on a VPC router, ``-o eth1 -s <tier>`` sent and
``-i eth1 -d <tier>`` received for each tier, in FORWARD; ``NETWORK_STATS``
on an isolated one, guest<->public in FORWARD and the router's own TCP on the
public link in INPUT and OUTPUT) and reads them with
systemvm/debian/opt/cloud/bin/vpc_netusage.sh and netusage.sh.

Here the same traffic is counted per public link, whatever its name and
however many there are (upstream counts ``eth1`` only), in counters of the
one netfilter table (``Traffic.count``), which a configuration change never
resets: a removed tier does not take its bytes away from its public link's
total (the usage server would take the drop for a reset and count the other
tiers' bytes twice). Only what the router let through is counted, so a
backup, which forwards nothing, counts nothing: on a pair the counters grow
where the traffic flows, the master's. Tunnel traffic (``-n``) is counted
apart as well: through a kernel IPsec policy or a point-to-point device.
"""

from __future__ import annotations

from typing import Any

from ...feature import Count, Feature, Traffic

NAME = "usage"

# Between the tiers (and private gateways) and a public link, as upstream's
# NETWORK_STATS_<dev> counts it: what leaves by the link is sent, what comes
# in by it is received.
FWD_SENT = Count("usage_{link}_fwd_tx", per="public", iif="guests", oif="link")
FWD_RECEIVED = Count("usage_{link}_fwd_rx", per="public", iif="link", oif="guests")
# The router's own TCP on the public link (a load balancer's clients): what
# an isolated router's NETWORK_STATS counts besides ("-o eth2 ! -i eth0 -p tcp",
# in OUTPUT; "-i eth2 ! -o eth0 -p tcp", in INPUT).
OWN_SENT = Count("usage_{link}_own_tx", path="output", per="public", oif="link", proto="tcp")
OWN_RECEIVED = Count("usage_{link}_own_rx", path="input", per="public", iif="link",
                     proto="tcp")
# The tiers' traffic into and out of VPN tunnels (upstream's VPN_STATS_<dev>).
VPN_SENT = Count("vpn_usage_tx", iif="guests", tunnel="out")
VPN_RECEIVED = Count("vpn_usage_rx", oif="guests", tunnel="in")

COUNTS = (FWD_SENT, FWD_RECEIVED, OWN_SENT, OWN_RECEIVED, VPN_SENT, VPN_RECEIVED)


def traffic(cfg: Any, settings: Any, d: Any) -> Traffic:
    return Traffic(count=COUNTS)


def _metrics(settings: Any) -> Any:
    from .report import metrics

    return metrics(settings)


FEATURE = Feature(name=NAME, traffic=traffic, metrics=_metrics)
