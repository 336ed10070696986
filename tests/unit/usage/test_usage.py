"""Network usage: vpc_netusage.sh and netusage.sh as the management server
and the hypervisor resources read them, and the counters in the netfilter table.

Upstream: systemvm/debian/opt/cloud/bin/vpc_netusage.sh and netusage.sh (the
options, the if-chain, ``printf "%s:", $2``), cs/CsAddress.py (the
NETWORK_STATS chains), and the parsers of the answer:
LibvirtComputingResource.getVPCNetworkStats / getNetworkStats,
CitrixResourceBase.getVPCNetworkStats (CitrixResourceBaseTest
testGetStatsForVpcStats), VmwareResource.VPCNetworkUsage and
XenServer56NetworkUsageCommandWrapper, which all split on ':' and sum the
fields in (sent, received) pairs into NetworkUsageAnswer(bytesSent, bytesReceived).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from vragent.feature import Count, Traffic
from vragent.features import by_name
from vragent.features.netfilter import subsystem as netfilter
from vragent.features.netfilter.subsystem import Chain, Ruleset, _delta, _record
from vragent.features.usage import entry, report, state
from vragent.features.usage.feature import COUNTS
from vragent.features.usage.report import (
    ISOLATED,
    VPC,
    Request,
    UsageError,
    answer,
    counted,
    created_after,
    getopts,
    parse,
    public_link,
    samples,
)
from vragent.reconcile import desired_states
from vragent.settings import Settings
from vragent.system.nft import parse_counters

from tests.cloudstack import network_usage
from tests.unit.builders import isolated_topology, sample_topology, settings

# -- the answer, as the parsers read it ------------------------------------------------


def test_answer_is_upstreams_printf_and_every_parser_reads_sent_then_received() -> None:
    assert answer([1234, 5678]) == "1234:5678:"
    assert network_usage(answer([1234, 5678])) == (1234, 5678)
    # An isolated router's two pairs per link (forwarded, the router's own TCP),
    # for two links: the parsers sum every even field as sent, odd as received.
    text = answer([10, 20, 1, 2, 100, 200, 3, 4])
    assert text == "10:20:1:2:100:200:3:4:"
    assert network_usage(text) == (114, 226)
    # Nothing to answer: parsed as 0, 0 (the server then skips the update).
    assert answer([]) == "" and network_usage("") == (0, 0)
    # CitrixResourceBaseTest's own fixture, without the trailing colon, reads the same.
    assert network_usage("1:2") == network_usage(answer([1, 2])) == (1, 2)
    assert "\n" not in answer([1, 2])


def test_the_parser_emulation_fails_where_the_java_does() -> None:
    """A text on stderr reaches the parser too (SshHelper joins both streams):
    it must fail, or a broken test of ours would pass."""
    with pytest.raises(ValueError, match="NumberFormatException"):
        network_usage("1:2\nvpc_netusage.sh: oops")
    with pytest.raises(ValueError):
        network_usage("1:2 :")


# -- options, as bash's getopts reads them -----------------------------------------------


def test_getopts_reads_grouped_flags_attached_and_separate_arguments() -> None:
    assert getopts("cgndrl:v:", ["-l", "100.64.10.10", "-g"]) == [("l", "100.64.10.10"),
                                                                 ("g", "")]
    assert getopts("cgndrl:v:", ["-cl100.64.10.10", "-v", "10.0.0.0/16"]) == [
        ("c", ""), ("l", "100.64.10.10"), ("v", "10.0.0.0/16")]
    # Options end at the first word that is not one, or at "--".
    assert getopts("cgndrl:v:", ["-g", "stray", "-r"]) == [("g", "")]
    assert getopts("cgndrl:v:", ["--", "-g"]) == []
    with pytest.raises(UsageError, match="illegal option -- x"):
        getopts("cgndrl:v:", ["-gx"])
    with pytest.raises(UsageError, match="requires an argument -- l"):
        getopts("cgndrl:v:", ["-g", "-l"])
    # netusage.sh's -i takes no argument: getopts stops at the address after it
    # (the old KVM resource passed "-i <private ip>").
    assert getopts("cgria:d:l:", ["-g", "-i", "169.254.1.1", "-r"]) == [("g", ""), ("i", "")]


def test_parse_takes_the_first_action_in_upstreams_order() -> None:
    assert parse(VPC, ["-l", "100.64.10.10", "-g"]) == Request(VPC, "get", "100.64.10.10")
    assert parse(VPC, ["-l", "100.64.10.10", "-c", "-v", "10.10.0.0/16"]) == Request(
        VPC, "create", "100.64.10.10", "10.10.0.0/16")
    # The Citrix resource's " -l <ip> -g" (a leading space) splits the same way.
    assert parse(VPC, " -l 100.64.10.10 -g".split()) == Request(VPC, "get", "100.64.10.10")
    # c, g, n, d, r: create wins over get, vpn over reset.
    assert parse(VPC, ["-r", "-g", "-c", "-l", "1.2.3.4"]).action == "create"
    assert parse(VPC, ["-r", "-n", "-l", "1.2.3.4"]).action == "vpn"
    assert parse(VPC, ["-d", "-r", "-l", "1.2.3.4"]).action == "remove"
    assert parse(VPC, []).action == "none"
    assert parse(ISOLATED, ["-g"]) == Request(ISOLATED, "get")
    assert parse(ISOLATED, ["-a", "eth3"]) == Request(ISOLATED, "add_vif", interface="eth3")
    assert parse(ISOLATED, ["-d", "eth3"]).action == "delete_vif"
    assert parse(ISOLATED, ["-g", "-l", "100.64.20.10"]).ip == "100.64.20.10"


@pytest.mark.parametrize(("script", "argv", "message"), [
    (VPC, ["-g", "-l", "100.64.10.300"], "-l: 100.64.10.300 is not an IP address"),
    (VPC, ["-g", "-l", "$(reboot)"], "-l: $(reboot) is not an IP address"),
    (VPC, ["-c", "-l", "1.2.3.4", "-v", "10.0.0.0/33"], "-v: 10.0.0.0/33 is not a CIDR"),
    (VPC, ["-c", "-l", "1.2.3.4", "-v", "null"], "-v: null is not a CIDR"),
    (VPC, ["-g"], "-g needs -l <public ip>"),
    (VPC, ["-r"], "-r needs -l <public ip>"),
    (VPC, ["-x", "-g"], "illegal option -- x"),
    (VPC, ["-i", "1.2.3.4"], "illegal option -- i"),  # not in vpc_netusage.sh's getopts
    (ISOLATED, ["-a", "eth0;reboot"], "not an interface name"),
    (ISOLATED, ["-l"], "requires an argument -- l"),
    (VPC, ["-g", "-l", "1.2.3.4\n"], "'1.2.3.4\\n' is not an IP address"),
])
def test_bad_arguments_are_refused_naming_the_option_and_value(
        script: str, argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse(script, argv)
    assert message in str(exc.value)


# -- what is counted, and what each request answers with ----------------------------------


def test_counters_per_public_link_in_the_netfilter_table() -> None:
    cfg, topo = sample_topology()
    d = desired_states(cfg, topo, settings())["netfilter"]
    rs = netfilter.render(d)
    assert rs.counters == ("usage_eth1_fwd_rx", "usage_eth1_fwd_tx", "usage_eth1_own_rx",
                           "usage_eth1_own_tx", "vpn_usage_rx", "vpn_usage_tx")
    count = {c.name: c for c in rs.chains}
    tiers = '{ "eth2", "eth3", "eth4" }'  # both tiers and the private gateway
    assert count["count_forward"].rules[:2] == (
        f'iifname {tiers} oifname "eth1" counter name usage_eth1_fwd_tx',
        f'iifname "eth1" oifname {tiers} counter name usage_eth1_fwd_rx')
    # After every filter: forward_final is at 30, the input filter at 0.
    assert count["count_forward"].hook == \
        "type filter hook forward priority 100; policy accept;"
    assert count["count_input"].rules == (
        'iifname "eth1" meta l4proto tcp counter name usage_eth1_own_rx',)
    assert count["count_output"].rules == (
        'oifname "eth1" meta l4proto tcp counter name usage_eth1_own_tx',)
    vpn = [r for r in count["count_forward"].rules if "vpn_usage" in r]
    assert vpn == [f"iifname {tiers} rt ipsec exists counter name vpn_usage_tx",
                   f"iifname {tiers} meta oiftype {{ ppp, 65534 }} counter name vpn_usage_tx",
                   f"oifname {tiers} meta secpath exists counter name vpn_usage_rx",
                   f"oifname {tiers} meta iiftype {{ ppp, 65534 }} counter name vpn_usage_rx"]


def test_a_link_counter_exists_while_its_rules_match_nothing() -> None:
    """A public link before any tier: its counters are declared (a value that
    must carry on when the last tier goes and another comes), no rule counts."""
    cfg, topo = sample_topology()
    bare = type(topo)(router_type=topo.router_type, public=topo.public)
    names, rules = netfilter._counts(bare, COUNTS)
    assert "usage_eth1_fwd_tx" in names and "usage_eth1_fwd_rx" in names
    assert not any("fwd" in r for r in rules.get("forward", []))
    assert rules["output"] == ['oifname "eth1" meta l4proto tcp counter name usage_eth1_own_tx']


def test_counter_names_of_odd_link_names_are_made_safe() -> None:
    c = Count("usage_{link}_fwd_tx", per="public", iif="guests", oif="link")
    assert c.counter("eth1") == "usage_eth1_fwd_tx"
    assert c.counter("pub:x y") == "usage_pub_x_y_fwd_tx"
    with pytest.raises(ValueError):
        Count("1bad").counter()
    with pytest.raises(ValueError):
        netfilter._counts(sample_topology()[1], (Count("x", oif="link"),))


def test_traffic_adds_counts() -> None:
    a, b = Traffic(count=(COUNTS[0],)), Traffic(count=(COUNTS[1],))
    assert (a + b).count == COUNTS[:2]


def test_vpc_get_answers_the_public_link_of_the_address() -> None:
    _, topo = sample_topology()
    assert public_link(topo, "100.64.10.12") == "eth1"
    assert counted(Request(VPC, "get", "100.64.10.11"), topo) == [
        "usage_eth1_fwd_tx", "usage_eth1_fwd_rx"]
    # An address the router does not have: nothing (upstream prints nothing).
    assert counted(Request(VPC, "get", "100.64.99.99"), topo) is None
    assert counted(Request(VPC, "get", "10.10.1.1"), topo) is None  # a tier's, not public
    # VPN: for the source-NAT link's addresses only.
    assert counted(Request(VPC, "vpn", "100.64.10.10"), topo) == ["vpn_usage_tx",
                                                                  "vpn_usage_rx"]
    assert counted(Request(VPC, "reset", "100.64.10.10"), topo) == [
        "usage_eth1_fwd_tx", "usage_eth1_fwd_rx"]


def test_isolated_get_answers_every_public_link_with_its_own_tcp() -> None:
    _, topo = isolated_topology()
    assert counted(Request(ISOLATED, "get"), topo) == [
        "usage_eth2_fwd_tx", "usage_eth2_fwd_rx", "usage_eth2_own_tx", "usage_eth2_own_rx"]
    assert counted(Request(ISOLATED, "get", "100.64.20.10"), topo) == counted(
        Request(ISOLATED, "get"), topo)
    bare = type(topo)(router_type="router")
    assert counted(Request(ISOLATED, "get"), bare) is None


def test_create_remembers_and_remove_forgets() -> None:
    created = created_after({}, Request(VPC, "create", "100.64.10.10", "10.10.0.0/16"))
    assert created == {"100.64.10.10": "10.10.0.0/16"}
    created = created_after(created, Request(VPC, "create", "100.64.10.13"))
    assert created == {"100.64.10.10": "10.10.0.0/16", "100.64.10.13": ""}
    assert created_after(created, Request(VPC, "remove", "100.64.10.10")) == {
        "100.64.10.13": ""}
    assert created_after(created, Request(VPC, "get", "100.64.10.10")) == created


def test_metrics_samples_by_link_direction_and_path() -> None:
    counts = {"usage_eth1_fwd_tx": (10, 1000), "usage_eth1_fwd_rx": (20, 2000),
              "usage_eth1_own_tx": (1, 60), "vpn_usage_rx": (3, 300), "other": (9, 9)}
    octets, packets = samples(counts)
    assert dict(octets) == {("eth1", "received", "forwarded"): 2000.0,
                            ("eth1", "sent", "forwarded"): 1000.0,
                            ("eth1", "sent", "router"): 60.0,
                            ("", "received", "vpn"): 300.0}
    assert dict(packets)[("eth1", "sent", "forwarded")] == 10.0


def test_the_feature_declares_its_counts_and_metrics() -> None:
    f = by_name("usage")
    cfg, _ = sample_topology()
    assert f.traffic is not None and f.traffic(cfg, settings(), None).count == COUNTS
    assert f.metrics is not None and f.subsystem is None


def test_parse_counters_reads_nft_json() -> None:
    text = json.dumps({"nftables": [
        {"metainfo": {"version": "1.0.6"}},
        {"counter": {"family": "inet", "name": "usage_eth1_fwd_tx", "table": "vragent",
                     "handle": 3, "packets": 12, "bytes": 3456}},
        {"counter": {"name": "broken", "packets": "x", "bytes": 1}}]})
    assert parse_counters(text) == {"usage_eth1_fwd_tx": (12, 3456)}
    assert parse_counters("not json") == {}


# -- netfilter keeps the counters: deltas never declare them again ------------------------

TABLE = "vragent"
FWD = Chain("count_forward", ('iifname "eth2" oifname "eth1" counter name usage_eth1_fwd_tx',),
            "type filter hook forward priority 100; policy accept;")


def test_delta_adds_a_new_counter_before_the_rules_that_count_into_it() -> None:
    old = Ruleset(TABLE, (FWD,), counters=("usage_eth1_fwd_tx",))
    rule = 'iifname "eth2" oifname "eth3" counter name usage_eth3_fwd_tx'
    new = Ruleset(TABLE, (Chain(FWD.name, (*FWD.rules, rule), FWD.hook),),
                  counters=("usage_eth1_fwd_tx", "usage_eth3_fwd_tx"))
    script = _delta(_record(old), new, TABLE)
    assert script == (f"flush chain inet {TABLE} count_forward\n"
                      f"table inet {TABLE} {{\n"
                      "\tcounter usage_eth3_fwd_tx { }\n"
                      "\tchain count_forward {\n"
                      f"\t\t{FWD.rules[0]}\n\t\t{rule}\n"
                      "\t}\n}\n")
    # The kept counter is not declared again (a declaration is a no-op on an
    # existing counter; the point is the delta never touches its value).
    assert "usage_eth1_fwd_tx {" not in script


def test_delta_deletes_a_dropped_counter_after_its_rules_are_gone() -> None:
    old = Ruleset(TABLE, (Chain(FWD.name, (*FWD.rules, "counter name usage_eth3_fwd_tx"),
                                FWD.hook),), counters=("usage_eth1_fwd_tx", "usage_eth3_fwd_tx"))
    new = Ruleset(TABLE, (FWD,), counters=("usage_eth1_fwd_tx",))
    script = _delta(_record(old), new, TABLE)
    assert script is not None
    lines = script.splitlines()
    assert lines[0] == f"flush chain inet {TABLE} count_forward"
    assert lines[-1] == f"delete counter inet {TABLE} usage_eth3_fwd_tx"
    assert _delta(_record(new), new, TABLE) == ""


def test_a_record_without_counters_gets_them_added() -> None:
    """A record written before counting existed: the counters are added."""
    rs = Ruleset(TABLE, (FWD,), counters=("usage_eth1_fwd_tx",))
    old = _record(rs)
    del old["counters"]
    assert "\tcounter usage_eth1_fwd_tx { }" in (_delta(old, rs, TABLE) or "")


def test_a_full_load_carries_the_values_read_before_it() -> None:
    rs = Ruleset(TABLE, (FWD,), counters=("usage_eth1_fwd_rx", "usage_eth1_fwd_tx"))
    text = rs.text({"usage_eth1_fwd_tx": (7, 7000)})
    assert "\tcounter usage_eth1_fwd_tx { packets 7 bytes 7000 }\n" in text
    assert "\tcounter usage_eth1_fwd_rx { }\n" in text
    # Counters come before the chains whose rules name them.
    assert text.index("counter usage_eth1_fwd_tx") < text.index("chain count_forward")
    assert "packets" not in rs.text()


# -- the entry points: exit codes, stderr, nothing changed on bad input -------------------


def _run(tmp_path: Path, *argv: str, script: str = "vpc_netusage.sh"
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / script), *argv],
                          capture_output=True, text=True, check=False,
                          env={"VRAGENT_ROOT": str(tmp_path),
                               "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def test_bad_arguments_exit_2_with_the_usage_and_no_traceback(tmp_path: Path) -> None:
    for argv in (["-c", "-l", "100.64.10.10", "-v", "10.0.0.0/99"], ["-q"], ["-l"]):
        proc = _run(tmp_path, *argv)
        assert proc.returncode == 2, proc
        assert proc.stdout == ""
        assert "Usage: vpc_netusage.sh -[c|g|r|n|d]" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert not state.FILE.of(Settings.from_env(str(tmp_path))).exists()  # nothing written


def test_create_and_remove_keep_the_accounted_ips(tmp_path: Path) -> None:
    s = Settings.from_env(str(tmp_path))
    for ip in ("100.64.10.10", "100.64.10.13"):
        proc = _run(tmp_path, "-c", "-l", ip, "-v", "10.10.0.0/16")
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert state.load(s) == {"100.64.10.10": "10.10.0.0/16", "100.64.10.13": "10.10.0.0/16"}
    assert _run(tmp_path, "-d", "-l", "100.64.10.10").returncode == 0
    assert json.loads(state.FILE.of(s).read_text()) == {
        "created": {"100.64.10.13": "10.10.0.0/16"}}
    assert [m.samples for m in report.metrics(s) if m.name == "vragent_usage_accounted"] == [
        ((("100.64.10.13", "10.10.0.0/16"), 1.0),)]


def test_no_answer_on_an_empty_router(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No configuration, no counters: -g prints nothing and succeeds (upstream:
    a chain that does not exist prints nothing), -r fails with the reason."""
    monkeypatch.setattr(entry, "_topology", lambda s: type(sample_topology()[1])("vpc"))
    s = Settings.from_env(str(tmp_path))
    assert entry.run(Request(VPC, "get", "100.64.10.10"), s) == ""
    with pytest.raises(Exception, match="no public link holds 100.64.10.10: nothing was reset"):
        entry.run(Request(VPC, "reset", "100.64.10.10"), s)
    assert entry.run(Request(ISOLATED, "reset"), s) == ""
