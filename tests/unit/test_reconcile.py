"""plan(): the pure half of reconciling, over fabricated links."""

from __future__ import annotations

from vragent.reconcile import plan
from vragent.subsystems import ORDER, conntrack, interfaces, netfilter, routes, sysctl, vrrp
from vragent.subsystems.netfilter import Ruleset

from tests.unit.builders import sample_config, sample_links, settings


def test_plan_runs_every_subsystem_in_order() -> None:
    p = plan(sample_config(), settings(), sample_links())
    assert [m for m, _ in p.steps] == list(ORDER)
    # Filtering before addresses; conntrackd configured before keepalived.
    assert ORDER == (sysctl, netfilter, interfaces, routes, conntrack, vrrp)
    rendered = dict(p.steps)
    assert isinstance(rendered[netfilter], Ruleset)
    assert isinstance(rendered[routes], routes.Desired)
    assert p.problems == [] and p.warnings == []
    assert p.topo.public_names == ["eth1"]


def test_missing_nic_reported_once_with_consequences_as_warnings() -> None:
    links = sample_links()
    del links["eth4"]
    p = plan(sample_config(), settings(), links)
    assert p.problems == ["ips.eth4: no interface with MAC 02:00:0a:00:00:04 is present"]
    assert p.warnings == [
        ("staticroutes.10.99.0.0/24: gateway 172.30.0.254 is not on a "
         "connected network yet; route not installed"),
    ]
