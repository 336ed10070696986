"""VRRP: keepalived's configuration for the redundant pair."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from vragent.config import RouterConfig
from vragent.errors import BagError
from vragent.features.vrrp import subsystem as vrrp
from vragent.reconcile import desired_states
from vragent.topology import resolve

from tests.unit.builders import (
    apply_bags,
    cloudstack_pair_docs,
    extra_public_ip_bag,
    pair_cmdline,
    pair_docs,
    pair_links,
    pair_topology,
    sample_bag,
    sample_links,
    sample_topology,
    settings,
    third_tier_bag,
    with_bags,
)


def _desired(drop: tuple[str, ...] = (), **boot: str) -> vrrp.Desired:
    cfg, topo = pair_topology(drop, **boot)
    return vrrp.desired(cfg, topo, settings())


def _render(drop: tuple[str, ...] = (), **boot: str) -> str:
    d = _desired(drop, **boot)
    assert vrrp.verify(d) == []
    return vrrp.render(d)


def _block(text: str, opening: str) -> list[str]:
    """The lines inside the block that ``opening`` (a whole stripped line) starts."""
    lines = text.splitlines()
    start = [line.strip() for line in lines].index(opening)
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = next(i for i in range(start + 1, len(lines))
               if lines[i].strip() == "}" and len(lines[i]) - 1 == indent)
    return [line.strip() for line in lines[start + 1:end]]


def _without_excluded(text: str) -> list[str]:
    lines = text.splitlines()
    if "virtual_ipaddress_excluded {" not in [line.strip() for line in lines]:
        return lines
    start = [line.strip() for line in lines].index("virtual_ipaddress_excluded {")
    end = start + len(_block(text, "virtual_ipaddress_excluded {")) + 1
    return lines[:start] + lines[end + 1:]


def _changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                  lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


# -- not a pair ------------------------------------------------------------------


def test_standalone_router_has_no_keepalived() -> None:
    cfg, topo = sample_topology()
    d = vrrp.desired(cfg, topo, settings())
    assert d == vrrp.Desired(enabled=False)
    assert vrrp.verify(d) == []
    assert vrrp.render(d) == ""


# -- CloudStack mode: only what a management server sends ---------------------------

# createRedundantRouterArgs for a VPC: router_id is the VPC's id, the password
# the decimal SHA-512 of its uuid; no key names a sync link.
CS_BOOT = {"redundant_router": "1", "router_id": "4711", "advert_int": "1",
           "router_password": "93871234567", "redundant_state": "BACKUP"}


def _cloudstack_docs(*bags: dict[str, object]) -> dict[str, dict[str, object]]:
    cmd = pair_cmdline(drop=("sync_dev", "sync_peer", "eth5ip", "eth5mask"),
                       **CS_BOOT)
    return apply_bags([cmd, *bags])


def _cloudstack(*bags: dict[str, object]) -> vrrp.Desired:
    cfg = RouterConfig.from_docs(_cloudstack_docs(*bags))
    return vrrp.desired(cfg, resolve(cfg, pair_links()), settings())


def _tier(device: str, mac: str, own: str, gw: str) -> dict[str, object]:
    return {"type": "guestnetwork", "add": True, "mac_address": mac, "device": device,
            "router_guest_ip": own, "router_guest_gateway": gw,
            "router_guest_netmask": "255.255.255.0", "cidr": "24", "dns": gw,
            "domain_name": "vpc.lab"}


def test_cloudstack_mode_waits_for_the_source_nat_ip() -> None:
    d = _cloudstack()
    assert d.enabled is False
    assert d.warnings == ("redundant_router=1: VRRP starts with the source-NAT public IP "
                          "(an ips bag)",)
    assert vrrp.render(d) == ""


def test_cloudstack_mode_runs_vrrp_on_the_public_nic_from_the_ips_bag() -> None:
    d = _cloudstack(sample_bag("ip_associations.json"))
    assert d.enabled is True and vrrp.verify(d) == []
    # The source-NAT IP is the advert address; the control address the source.
    assert (d.interface, d.vip, d.mcast_src_ip, d.peer) == (
        "eth1", "100.64.10.10/24", "169.254.0.10", None)
    # VRID from the VPC id; VRRPv2 so the password keeps pairs on one public network apart.
    assert (d.vrid, d.version, d.auth_pass, d.priority) == (4711 % 255, 2, "93871234", 100)
    assert d.excluded == (("100.64.10.11/24", "eth1"), ("100.64.10.12/24", "eth1"))
    text = vrrp.render(d)
    assert "    mcast_src_ip 169.254.0.10\n" in text
    assert "unicast_peer" not in text


def test_cloudstack_mode_tiers_change_only_the_excluded_block() -> None:
    ips = sample_bag("ip_associations.json")
    before = vrrp.render(_cloudstack(ips))
    tier = _tier("eth2", "02:00:0a:00:00:02", "10.10.1.2", "10.10.1.1")
    after = vrrp.render(_cloudstack(ips, tier))
    # The gateway (router_guest_gateway) is the master's; the own address is not a VIP.
    assert _without_excluded(after) == _without_excluded(before)
    assert "        10.10.1.1/24 dev eth2" in after.splitlines()
    assert "10.10.1.2" not in after


def test_vrid_of_an_unbounded_router_id() -> None:
    from vragent.config import vrid_of
    assert [vrid_of(n) for n in (1, 51, 255, 256, 4711)] == [1, 51, 255, 1, 4711 % 255]


def test_sync_dev_without_boot_address_falls_back_to_cloudstack_mode() -> None:
    cfg = RouterConfig.from_docs(pair_docs(drop=("eth5ip", "eth5mask")))
    d = vrrp.desired(cfg, resolve(cfg, sample_links()), settings())
    assert d.enabled is True and d.interface == "eth1"
    assert len(d.warnings) == 1 and "eth5ip" in d.warnings[0]


# -- the sample pair ---------------------------------------------------------------


def test_sample_pair() -> None:
    d = _desired()
    assert d.enabled is True
    assert d.problems == () and d.warnings == ()
    assert (d.router_id, d.instance, d.interface, d.src_ip, d.peer) == (
        "r-1-VM", "vpc", "eth5", "10.255.0.1", "10.255.0.2")
    assert (d.vrid, d.priority, d.advert_int, d.version, d.auth_pass) == (1, 100, "1", 3, "")
    assert d.vip == "10.255.0.254/24"
    # Tier gateways and public IPs; the private gateway (eth4) is the router's own.
    assert d.excluded == (
        ("10.10.1.1/24", "eth2"), ("10.10.2.1/24", "eth3"), ("100.64.10.10/24", "eth1"),
        ("100.64.10.11/24", "eth1"), ("100.64.10.12/24", "eth1"))
    assert d.fifo == "/nonexistent/vragent-unit/run/vragent/vrrp.fifo"
    assert d.health_file == "/nonexistent/vragent-unit/run/vragent/vrrp-health"
    assert d.yield_file == "/nonexistent/vragent-unit/run/vragent/vrrp-yield"
    assert d.bfd is None


def test_render_structure() -> None:
    text = _render()
    stripped = [line.strip() for line in text.splitlines()]
    instance = _block(text, "vrrp_instance vpc {")
    assert "state BACKUP" in instance and "nopreempt" in instance
    assert not any(line.startswith("state MASTER") for line in stripped)
    assert _block(text, "virtual_ipaddress {") == ["10.255.0.254/24 dev eth5"]
    excluded = _block(text, "virtual_ipaddress_excluded {")
    assert "10.10.1.1/24 dev eth2" in excluded and "100.64.10.12/24 dev eth1" in excluded
    assert not any("172.30.0.1" in line for line in excluded)
    assert "unicast_src_ip 10.255.0.1" in instance
    assert _block(text, "unicast_peer {") == ["10.255.0.2"]
    # Health is a file keepalived watches: no script runs per check.
    assert _block(text, "track_file {") == ["vragent_health", "vragent_yield"]
    assert _block(text, "track_file vragent_health {") == [
        'file "/nonexistent/vragent-unit/run/vragent/vrrp-health"', "weight 0"]
    assert _block(text, "track_file vragent_yield {") == [
        'file "/nonexistent/vragent-unit/run/vragent/vrrp-yield"', "weight -253"]
    assert not any(line.startswith(("vrrp_script", "track_script", "script ", "bfd_instance",
                                    "vrrp_rt_priority", "vrrp_no_swap"))
                   for line in stripped)
    # keepalived resolves the script user when it meets notify_fifo: it must be set first.
    glob = _block(text, "global_defs {")
    assert glob.index("script_user root") < next(
        i for i, line in enumerate(glob) if line.startswith("notify_fifo "))
    assert "authentication {" not in stripped


def test_multicast_when_no_peer_is_given() -> None:
    d = _desired(drop=("sync_peer",))
    assert d.peer is None
    assert vrrp.verify(d) == []
    # The same file as the unicast pair's, less the unicast lines.
    assert _changed_lines(_render(), vrrp.render(d)) == [
        "-    unicast_src_ip 10.255.0.1",
        "-    unicast_peer {",
        "-        10.255.0.2",
        "-    }",
    ]


def test_priority_and_vrid_from_boot_parameters() -> None:
    text = _render(router_pr="150", router_id="42")
    instance = _block(text, "vrrp_instance vpc {")
    assert "priority 150" in instance and "virtual_router_id 42" in instance
    assert "state BACKUP" in instance and "nopreempt" in instance  # whatever the priority


@pytest.mark.parametrize(("value", "expected"),
                         [("0.2", "0.2"), ("1", "1"), ("1.0", "1"), ("0.25", "0.25"),
                          ("3", "3")])
def test_advert_int_text(value: str, expected: str) -> None:
    assert _desired(advert_int=value).advert_int == expected
    assert f"advert_int {expected}" in _block(_render(advert_int=value), "vrrp_instance vpc {")


def test_router_id_is_one_word() -> None:
    assert _desired(name="r-4-VM.pod_1").router_id == "r-4-VM.pod_1"
    assert _desired(drop=("name",)).router_id == "router"
    # Anything else never gets this far: the boot parameters reject it.
    with pytest.raises(BagError, match="not a router name"):
        _desired(name="r 4/VM")


# -- VRRP version and authentication ----------------------------------------------


def test_v2_sub_second_adverts_are_a_problem() -> None:
    d = _desired(vrrp_version="2", advert_int="0.5")
    assert [p for p in d.problems if p.startswith("advert_int=0.5:")] == [
        "advert_int=0.5: sub-second adverts need vrrp_version=3"]
    assert vrrp.verify(d) == list(d.problems)
    assert _desired(vrrp_version="3", advert_int="0.5").problems == ()
    assert _desired(vrrp_version="2", advert_int="2").problems == ()


def test_v2_password_is_cut_to_eight_characters() -> None:
    d = _desired(vrrp_version="2", router_password="s3cretpassword")
    assert d.auth_pass == "s3cretpa"
    assert d.problems == ()
    text = vrrp.render(d)
    assert _block(text, "authentication {") == ["auth_type PASS", "auth_pass s3cretpa"]
    assert "version 2" in _block(text, "vrrp_instance vpc {")
    assert "s3cretpassword" not in text


def test_v2_short_password_kept_whole() -> None:
    assert _desired(vrrp_version="2", router_password="abc").auth_pass == "abc"


def test_v2_without_password_has_no_authentication() -> None:
    d = _desired(vrrp_version="2")
    assert d.auth_pass == ""
    assert "authentication" not in vrrp.render(d)


def test_v3_has_no_authentication() -> None:
    d = _desired(vrrp_version="3", router_password="s3cretpassword")
    assert d.auth_pass == ""
    assert d.problems == ()
    text = vrrp.render(d)
    assert "authentication" not in text and "s3cret" not in text
    assert "version 3" in _block(text, "vrrp_instance vpc {")


def test_v2_password_keepalived_cannot_carry_is_a_problem() -> None:
    d = _desired(vrrp_version="2", router_password="pass word")
    assert any(p.startswith("router_password:") for p in d.problems)
    # The password itself is not repeated in the message.
    assert not any("pass word" in p for p in d.problems)


# -- problems with the sync link ---------------------------------------------------


def test_sync_dev_not_on_this_router_is_a_problem() -> None:
    cfg = RouterConfig.from_docs(pair_docs())
    d = vrrp.desired(cfg, resolve(cfg, sample_links()), settings())  # no eth5
    assert vrrp.verify(d) == ["sync_dev=eth5: no such interface on this router"]


@pytest.mark.parametrize("vip", ["10.255.1.5", "10.254.0.1", "10.255.0.1", "10.255.0.2"])
def test_sync_vip_must_be_free_on_the_sync_network(vip: str) -> None:
    problems = vrrp.verify(_desired(sync_vip=vip))
    assert problems == [f"sync_vip={vip}: must be a free address on the sync network "
                        "10.255.0.0/24"]


def test_sync_vip_given_explicitly() -> None:
    d = _desired(sync_vip="10.255.0.100")
    assert d.problems == ()
    assert _block(vrrp.render(d), "virtual_ipaddress {") == ["10.255.0.100/24 dev eth5"]


@pytest.mark.parametrize("peer", ["10.255.9.2", "10.255.0.1"])
def test_sync_peer_must_be_another_address_on_the_sync_network(peer: str) -> None:
    problems = vrrp.verify(_desired(sync_peer=peer))
    assert any(p.startswith(f"sync_peer={peer}: ") and "10.255.0.0/24" in p
               for p in problems), problems


@pytest.mark.parametrize("root", ["/srv/my root", "/srv/root;reboot", "/srv/\"q\""])
def test_root_keepalived_cannot_quote_is_a_problem(root: str) -> None:
    cfg, topo = pair_topology()
    d = vrrp.desired(cfg, topo, settings(root=Path(root)))
    assert any(p.startswith("state root ") and root in p for p in vrrp.verify(d)), d.problems


def test_paths_follow_the_settings() -> None:
    cfg, topo = pair_topology()
    s = settings(root=Path("/srv/r1"))
    d = vrrp.desired(cfg, topo, s)
    assert d.problems == ()
    text = vrrp.render(d)
    assert f"notify_fifo {s.notify_fifo}" in text
    assert f'file "{s.vrrp_health_file}"' in text and str(s.vrrp_health_file).startswith("/srv/r1/")


# -- election safety: addresses come and go, the adverts never change ----------------


@pytest.mark.parametrize(
    ("bag", "line"),
    [
        (third_tier_bag(), "10.10.3.1/24 dev eth6"),
        (extra_public_ip_bag(), "100.64.10.13/24 dev eth1"),
    ],
    ids=["tier", "public-ip"],
)
def test_adding_an_address_changes_only_the_excluded_block(bag: dict[str, object],
                                                           line: str) -> None:
    docs = pair_docs()
    before_d = vrrp.desired(*with_bags(docs), settings())
    after_d = vrrp.desired(*with_bags(docs, bag), settings())
    assert set(after_d.excluded) - set(before_d.excluded) == {tuple(line.split(" dev "))}
    assert len(after_d.excluded) == len(before_d.excluded) + 1
    before, after = vrrp.render(before_d), vrrp.render(after_d)
    assert _changed_lines(before, after) == [f"+        {line}"]
    assert _block(after, "virtual_ipaddress_excluded {") == sorted(
        [*_block(before, "virtual_ipaddress_excluded {"), line])
    assert _block(after, "virtual_ipaddress {") == _block(before, "virtual_ipaddress {")
    assert _without_excluded(after) == _without_excluded(before)


def test_removing_a_tier_changes_only_the_excluded_block() -> None:
    docs = apply_bags([third_tier_bag()], pair_docs())
    with_tier = vrrp.render(vrrp.desired(*with_bags(docs), settings()))
    without = vrrp.render(vrrp.desired(*with_bags(docs, third_tier_bag(add=False)), settings()))
    assert _changed_lines(with_tier, without) == ["-        10.10.3.1/24 dev eth6"]


def test_first_addresses_after_boot_change_only_the_excluded_block() -> None:
    # A pair elects on its boot parameters alone, before any tier or public IP.
    boot = RouterConfig.from_docs(apply_bags([pair_cmdline()]))
    bare = vrrp.render(vrrp.desired(boot, resolve(boot, pair_links()), settings()))
    assert "virtual_ipaddress_excluded" not in bare
    assert _without_excluded(_render()) == bare.splitlines()


def test_adding_a_tier_leaves_every_election_field_alone() -> None:
    docs = pair_docs()
    before = vrrp.desired(*with_bags(docs), settings())
    after = vrrp.desired(*with_bags(docs, third_tier_bag(), extra_public_ip_bag()), settings())
    assert after.excluded != before.excluded
    for name in ("router_id", "interface", "src_ip", "peer", "vrid", "priority", "advert_int",
                 "version", "auth_pass", "vip", "fifo", "health_file", "yield_file", "bfd"):
        assert getattr(after, name) == getattr(before, name), name


# -- fast detection (sync_bfd=1) -----------------------------------------------------


def test_fast_detection_adds_a_weighted_bfd_session_to_the_peer() -> None:
    d = _desired(sync_bfd="1", sync_bfd_interval="20", sync_bfd_multiplier="4")
    assert d.bfd == vrrp.Bfd(name="peer", peer="10.255.0.2", src_ip="10.255.0.1",
                             interval_ms=20, multiplier=4)
    text = _render(sync_bfd="1", sync_bfd_interval="20", sync_bfd_multiplier="4")
    assert _block(text, "bfd_instance peer {") == [
        "neighbor_ip 10.255.0.2", "source_ip 10.255.0.1", "min_rx 20", "min_tx 20",
        "multiplier 4", "vrrp"]
    # Never unweighted: a link-only BFD failure would leave the pair with no master.
    assert _block(text, "track_bfd {") == ["peer weight -1"]
    assert _block(text, "track_file {") == ["vragent_health", "vragent_yield", "vragent_boost"]
    assert _block(text, "track_file vragent_boost {")[1] == "weight 253"
    assert "vrrp_notify_priority_changes true" in _block(text, "global_defs {")


def test_fast_detection_defaults() -> None:
    d = _desired(sync_bfd="1")
    assert d.bfd is not None and (d.bfd.interval_ms, d.bfd.multiplier) == (50, 3)
    assert _desired(sync_bfd="0").bfd is None


@pytest.mark.parametrize("drop,boot,why", [
    (("sync_peer",), {}, "sync_peer"),
    ((), {"vrrp_version": "2"}, "vrrp_version=3"),
    ((), {"router_pr": "1"}, "router_pr"),
])
def test_fast_detection_needs_a_unicast_v3_sync_link(drop: tuple[str, ...],
                                                     boot: dict[str, str], why: str) -> None:
    d = _desired(drop, sync_bfd="1", **boot)
    assert d.bfd is None
    assert [p for p in vrrp.verify(d) if p.startswith("sync_bfd=1:") and why in p], d.problems


def test_fast_detection_is_refused_in_cloudstack_mode() -> None:
    # No sync link and no peer address: nothing to hold a BFD session with.
    docs = cloudstack_pair_docs()
    docs["cmdline"]["config"]["sync_bfd"] = "1"  # stored as merge.py stores cmd_line.json
    cfg = RouterConfig.from_docs(docs)
    topo = resolve(cfg, sample_links())
    d = vrrp.desired(cfg, topo, settings())
    assert d.bfd is None
    assert [p for p in vrrp.verify(d) if p.startswith("sync_bfd=1: fast detection needs a "
                                                       "sync link")], d.problems
    nf = desired_states(cfg, topo, settings())["netfilter"]
    assert not [o for o in nf.traffic.accept if o.ports == (3784,)]


def test_only_cloudstack_modes_backup_has_a_link_without_an_address() -> None:
    """ha/transitions.py NEIGHBOURS: a new master forgets the neighbour entries
    left unresolved only where its backup life held no address (CloudStack
    mode's public NIC); on a sync-link pair nothing is flushed."""
    from vragent.features.vrrp.feature import election

    docs = _cloudstack_docs(sample_bag("ip_associations.json"))
    cfg = RouterConfig.from_docs(docs)
    cs = election(cfg, resolve(cfg, pair_links()), settings())
    assert cs is not None and cs.unsourced == ("eth1",)
    cfg = RouterConfig.from_docs(pair_docs())
    sync = election(cfg, resolve(cfg, pair_links()), settings())
    assert sync is not None and sync.unsourced == ()
