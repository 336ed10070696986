"""IPv6 on the compose lab's sample VPC across a hard failover.

Both tiers of the sample are dual-stack (``vragent_lab.lab.TIERS6``), as a 4.20
management server sends them in ``guestnetwork`` (router_guest_ip6,
router_guest_ip6_gateway, router_guest_ip6_cidr, dns6: upstream's
``cs/CsVpcGuestNetwork.py``, ``SetGuestNetworkConfigItem.java``). The VM
containers take their address and default route from the master's radvd only
(SLAAC, accept_ra=2; the docker networks have no IPv6 of their own). A UDP
probe every 10 ms and 20 TCP connections run from vm1's SLAAC address to
vm2's through the master while it is killed; the IPv4 probe of the same
failover is the baseline.
"""

from __future__ import annotations

import ipaddress

from vragent_lab.lab import LINK_LOCAL_GATEWAY, TIERS6, Lab
from vragent_lab.scenario import V6_CONNECTIONS, check_ipv6, failover, write_report

# The VRRP takeover is the outage (advert_int 1: about 3-4 s for a hard kill,
# noisy on the shared 2-core machine); IPv6 adds nothing to it: the hosts'
# default router fe80::1 and the tier's gateway move with the VIP and
# keepalived's unsolicited neighbour advertisement points them at the new
# master. Allowed: the IPv4 probe's outage in the same failover plus 1 s.
SLACK_MS = 1_000


def test_vms_take_slaac_addresses_and_the_shared_router_from_the_master(lab: Lab) -> None:
    result = check_ipv6(lab)
    for vm, dev in (("vm1", "eth2"), ("vm2", "eth3")):
        assert ipaddress.IPv6Address(result[vm]) in ipaddress.IPv6Network(f"{TIERS6[dev]}/64")
    assert result["router"] == LINK_LOCAL_GATEWAY
    assert result["vm1_pings_vm2"] and result["vm1_tcp_to_vm2"]


def test_ipv6_connections_survive_a_hard_kill_of_the_master(lab: Lab) -> None:
    result = failover(lab, "kill", ipv6=True)
    write_report(lab, {}, result)
    v6 = result.ipv6
    opened, kept = v6["connections"]
    print(f"\nIPv6, hard kill: outage {v6['outage_ms']:.0f} ms (IPv4 in the same failover "
          f"{v6['ipv4_outage_ms']:.0f} ms, takeover {result.takeover_ms:.0f} ms); "
          f"{kept}/{opened} IPv6 TCP connections kept ({v6['in_backup_cache_before']} in the "
          f"backup's cache); probe {v6['probe']['lost']} of {v6['probe']['sent']} lost")
    assert result.master_after != result.master_before
    assert opened == V6_CONNECTIONS
    assert v6["in_backup_cache_before"] >= V6_CONNECTIONS
    assert kept == V6_CONNECTIONS  # conntrackd synced them: the new master passes them on
    assert 0 < v6["outage_ms"] <= v6["ipv4_outage_ms"] + SLACK_MS
    # The hosts keep their SLAAC address and their default router across it.
    assert v6["vm1_after"] == v6["vm1"]
    assert v6["router_before"] == v6["router_after"] == LINK_LOCAL_GATEWAY
    assert result.returned_as == "BACKUP"
    assert lab.wait_one_master() == result.master_after
    # and IPv6 still crosses the tiers with the old master back as backup
    assert check_ipv6(lab)["vm1_tcp_to_vm2"]
