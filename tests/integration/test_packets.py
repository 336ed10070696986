"""Real packets through a router configured from the sample VPC bags."""

from __future__ import annotations

from vragent.lab.netns import BEHIND_PGW, OUTSIDE, OUTSIDE_FAR, VM1, VM2

from .harness import ALL_BAGS, Router, connect, ns_of, ping, server


def test_vm_to_outside_leaves_with_source_nat_ip(router: Router) -> None:
    router.apply(*ALL_BAGS)
    with server(ns_of(router, "out"), 7000):
        assert connect(ns_of(router, "vm1"), OUTSIDE_FAR, 7000) == "100.64.10.10"
