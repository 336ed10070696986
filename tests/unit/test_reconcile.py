"""plan(): the pure half of reconciling, over fabricated links."""

from __future__ import annotations

from pathlib import Path

from vragent.config import RouterConfig
from vragent.feature import Rendered
from vragent.features.bgp import subsystem as bgp
from vragent.features.conntrack import subsystem as conntrack
from vragent.features.dhcp import subsystem as dhcp
from vragent.features.interfaces import subsystem as interfaces
from vragent.features.loadbalancer import subsystem as loadbalancer
from vragent.features.netfilter import subsystem as netfilter
from vragent.features.netfilter.subsystem import Ruleset
from vragent.features.ra import subsystem as ra
from vragent.features.routes import subsystem as routes
from vragent.features.sysctl import subsystem as sysctl
from vragent.features.vmdata import subsystem as vmdata
from vragent.features.vpn import subsystem as vpn
from vragent.features.vrrp import subsystem as vrrp
from vragent.reconcile import plan, subsystems

from tests.unit.builders import sample_config, sample_links, settings


def test_plan_runs_every_subsystem_in_order() -> None:
    p = plan(sample_config(), settings(), sample_links())
    REGISTRY = tuple(subsystems())
    assert [s.subsystem for s in p.steps] == list(REGISTRY)
    # Filtering before addresses; conntrackd configured before keepalived;
    # the services once the addresses they answer on are planned.
    assert REGISTRY == (sysctl, netfilter, interfaces, routes, conntrack, vrrp, dhcp, ra,
                        vmdata, loadbalancer, vpn, bgp)
    steps = {s.subsystem: s for s in p.steps}
    assert isinstance(steps[netfilter].rendered, Ruleset)
    assert isinstance(steps[routes].desired, routes.Desired)
    assert all(isinstance(s.rendered, Rendered) for s in p.steps)
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


def test_boot_and_reconcile_never_install_what_verify_rejected(tmp_path: Path) -> None:
    """A step whose own configuration failed verification is skipped (the file
    in force stays); the others still apply."""
    from vragent.reconcile import execute

    from tests.unit.builders import pair_docs, pair_links

    s = settings(root=tmp_path)
    cfg = RouterConfig.from_docs(pair_docs(advert_int="0.5", vrrp_version="2"))
    p = plan(cfg, s, pair_links())
    assert any("vrrp_version=3" in x for x in p.problems)
    p.steps = [st for st in p.steps if st.subsystem in (conntrack, vrrp)]
    skipped: list[str] = []
    changes = execute(p, s, dry_run=True, skipped=skipped)
    assert changes == ["conntrack: conntrackd.conf written"]
    assert skipped == ["vrrp: not applied, the previous configuration stays in force: "
                       "advert_int=0.5: sub-second adverts need vrrp_version=3"]
    # Without ``skipped`` (a command's apply) nothing is skipped: it was refused before.
    assert "vrrp: keepalived.conf written" in execute(p, s, dry_run=True)


def test_a_missing_nic_is_not_a_reason_to_skip(tmp_path: Path) -> None:
    links = sample_links()
    del links["eth4"]
    p = plan(sample_config(), settings(root=tmp_path), links)
    assert p.problems and all(not st.invalid for st in p.steps)


def test_kernel_state_is_never_skipped_for_a_reference_to_something_absent() -> None:
    """A stale ACL (its tier gone) is a problem for a command, but at boot the
    rest of the ruleset must still be loaded: no filtering and no NAT is worse."""
    from tests.unit.builders import apply_bags, sample_bag, sample_docs

    acl = {**sample_bag("network_acl_tier1.json"), "device": "eth9"}
    cfg = RouterConfig.from_docs(apply_bags([acl], sample_docs()))
    p = plan(cfg, settings(), sample_links())
    assert any("networkacl.eth9" in x for x in p.problems)
    assert all(not st.invalid for st in p.steps)
