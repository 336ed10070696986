"""The health checks, one by one (systemvm/debian/root/health_checks/*.py and
monitorServices.py monitProcess): what each compares, and upstream's messages."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from vragent import cli, daemon_state, supervised, version
from vragent.bags import parse_bag
from vragent.config import RouterConfig
from vragent.features import checks as all_checks
from vragent.features.dhcp import subsystem as dhcp
from vragent.features.dhcp.daemon import NAMES as DNSMASQ_NAMES
from vragent.features.monitor import checks
from vragent.features.monitor.checks import Context, parse_records
from vragent.features.monitor.model import MonitorService
from vragent.features.netfilter import checks as netfilter_checks
from vragent.features.netfilter.checks import dnat_rules, format_port
from vragent.settings import Settings
from vragent.topology import resolve

from tests.conftest import SAMPLE
from tests.unit.builders import apply_bags, load, sample_bag, sample_docs, sample_links

LAB = load(SAMPLE / "monitor_service.json")
# Every feature's checks, as the runner assembles them.
CHECKS = all_checks()


def monitor(data: dict[str, str] | None = None, **fields: Any) -> MonitorService:
    raw = {"type": "monitorservice", "health_checks_enabled": True, **fields}
    if data is not None:
        raw["health_checks_config"] = data
    bag = parse_bag(raw)
    assert isinstance(bag, MonitorService)
    return bag


def ctx(root: Path, data: dict[str, str] | None = None, redundant: bool = False,
        status: str = "UNKNOWN", states: dict[str, str] | None = None,
        **fields: Any) -> Context:
    return Context(Settings(root=root), monitor(data, **fields), redundant, status,
                   supervisor_states=states if states is not None else {})


def check(name: str) -> checks.Check:
    return next(c for c in CHECKS if c.name == name)


def outcome(name: str, context: Context) -> tuple[bool, str]:
    result = check(name).run(context)
    return result.success, result.message


# -- the registry -------------------------------------------------------------------


def test_every_check_once_with_upstream_names_and_kinds() -> None:
    assert {c.name: c.kind for c in CHECKS} == {
        "cpu_usage_check.py": "basic", "memory_usage_check.py": "basic",
        "disk_space_check.py": "basic", "gateways_check.py": "basic",
        "router_version_check.py": "basic",
        "dhcp_check.py": "advanced", "dns_check.py": "advanced",
        "iptables_check.py": "advanced", "haproxy_check.py": "advanced",
        "netfilter_check": "advanced", "daemon_config_check": "advanced",
        # vragent's own: upstream has no VPN check (checkbatchs2svpn.sh only).
        "vpn_check.py": "advanced", "bgp_check.py": "advanced",
    }
    assert len({c.name for c in CHECKS}) == len(CHECKS)


# -- getHealthChecksData -------------------------------------------------------------


def test_records_are_parsed_as_get_health_checks_data_does() -> None:
    text = LAB["health_checks_config"]["virtualMachines"]
    assert parse_records(text) == [
        {"vmName": "vm1", "macAddress": "02:00:0a:01:00:0a", "ip": "10.10.1.10"},
        {"vmName": "vm2", "macAddress": "02:00:0a:02:00:0a", "ip": "10.10.2.10"},
    ]
    assert parse_records(" gatewaysIps=10.1.1.1 10.1.2.1 ") == [
        {"gatewaysIps": "10.1.1.1 10.1.2.1"}]
    # An entry without exactly one "=" is dropped; so is a record left empty.
    assert parse_records("a=1,b=2=3,c, d = 4 ;;x;") == [{"a": "1", "d": "4"}]
    assert parse_records("") == []


def test_format_port() -> None:
    assert format_port("22", "22") == "22"
    assert format_port("80", "90") == "80-90"
    assert format_port("80", "90", ":") == "80:90"


def test_data_absent_or_sent_empty(tmp_path: Path) -> None:
    assert ctx(tmp_path).data("virtualMachines") is None
    assert ctx(tmp_path, {"virtualMachines": ""}).data("virtualMachines") == []


# -- skipping ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "message"), [
    ("cpu_usage_check.py", "Missing maxCpuUsage in health_checks_data systemThresholds, skipping"),
    ("memory_usage_check.py",
     "Missing maxMemoryUsage in health_checks_data systemThresholds, skipping"),
    ("disk_space_check.py",
     "Missing minDiskNeeded in health_checks_data systemThresholds, skipping"),
    ("gateways_check.py", "No gateways data available, skipping"),
    ("router_version_check.py", "Missing routerVersion in health_checks_data, skipping"),
    ("dhcp_check.py", "No VMs running data available, skipping"),
    ("dns_check.py", "No VMs running data available, skipping"),
    ("iptables_check.py", "No portforwarding rules provided to check, skipping"),
    ("haproxy_check.py", "No data provided to check, skipping"),
])
def test_missing_data_is_upstreams_skipping_success(tmp_path: Path, name: str,
                                                    message: str) -> None:
    assert outcome(name, ctx(tmp_path)) == (True, message)
    # Sent but empty (haproxyData is "" without load balancing rules): the same.
    key = {"cpu_usage_check.py": "systemThresholds", "memory_usage_check.py": "systemThresholds",
           "disk_space_check.py": "systemThresholds", "gateways_check.py": "gateways",
           "router_version_check.py": "routerVersion", "dhcp_check.py": "virtualMachines",
           "dns_check.py": "virtualMachines", "iptables_check.py": "portForwarding",
           "haproxy_check.py": "haproxyData"}[name]
    assert outcome(name, ctx(tmp_path, {key: ""})) == (True, message)


# -- thresholds ------------------------------------------------------------------------

_USAGE = r"\d+(\.\d+)?"


def test_cpu_within_and_over_the_threshold(tmp_path: Path) -> None:
    ok, message = outcome("cpu_usage_check.py",
                          ctx(tmp_path, {"systemThresholds": "maxCpuUsage=100.0;"}))
    assert ok and re.fullmatch(f"CPU Usage within limits with current at {_USAGE}%", message)
    ok, message = outcome("cpu_usage_check.py",
                          ctx(tmp_path, {"systemThresholds": "maxCpuUsage=-1;"}))
    assert not ok
    assert re.fullmatch(f"CPU Usage {_USAGE}% has crossed threshold of -1.0%", message)


def test_memory_within_and_over_the_threshold(tmp_path: Path) -> None:
    ok, message = outcome("memory_usage_check.py",
                          ctx(tmp_path, {"systemThresholds": "maxMemoryUsage=100;"}))
    assert ok and re.fullmatch(f"Memory Usage within limits with current at {_USAGE}%", message)
    ok, message = outcome("memory_usage_check.py",
                          ctx(tmp_path, {"systemThresholds": "maxMemoryUsage=0;"}))
    assert not ok
    assert re.fullmatch(f"Memory Usage {_USAGE}% has crossed threshold of 0.0%", message)


def test_disk_space_where_the_state_lives(tmp_path: Path) -> None:
    ok, message = outcome("disk_space_check.py",
                          ctx(tmp_path, {"systemThresholds": "minDiskNeeded=1;"}))
    assert ok and re.fullmatch(f"Sufficient free space is {_USAGE} MB", message)
    ok, message = outcome("disk_space_check.py",
                          ctx(tmp_path, {"systemThresholds": "minDiskNeeded=1e12;"}))
    assert not ok and re.fullmatch(f"Insufficient free space is {_USAGE} MB", message)


@pytest.mark.parametrize("value", ["lots", "nan", "inf"])
def test_a_threshold_that_is_no_number_fails(tmp_path: Path, value: str) -> None:
    ok, message = outcome("memory_usage_check.py",
                          ctx(tmp_path, {"systemThresholds": f"maxMemoryUsage={value}"}))
    assert not ok
    assert message == ("maxMemoryUsage in health_checks_data systemThresholds is not a "
                       f"number: {value!r}")


def test_thresholds_are_read_from_a_single_record_only(tmp_path: Path) -> None:
    # Upstream: "if len(entries) == 1".
    two = {"systemThresholds": "maxCpuUsage=-1;maxCpuUsage=-1;"}
    assert outcome("cpu_usage_check.py", ctx(tmp_path, two))[0]


# -- gateways ----------------------------------------------------------------------------


def test_what_is_no_address_is_never_pinged_and_counts_as_unreachable(tmp_path: Path) -> None:
    ok, message = outcome("gateways_check.py", ctx(tmp_path, {
        "gateways": "gatewaysIps=-f gw.example "}))
    assert not ok
    assert message == "Unreachable gateways found-\n['-f', 'gw.example']"


@pytest.mark.parametrize("status", ["BACKUP", "FAULT"])
def test_a_backup_leaves_the_gateways_to_the_master(tmp_path: Path, status: str) -> None:
    """Upstream #4163: a backup's shared links are silent, so its gateways never
    answer it; its verdict is a skip, not a failure (and not a ping)."""
    data = {"gateways": "gatewaysIps=-f gw.example "}  # would fail if pinged
    assert outcome("gateways_check.py", ctx(tmp_path, data, redundant=True, status=status)) == (
        True, f"Router is {status}: gateways are checked on the master, skipping")
    # The master, and a standalone router whatever it persisted, do ping them.
    assert not outcome("gateways_check.py", ctx(tmp_path, data, redundant=True,
                                                status="PRIMARY"))[0]
    assert not outcome("gateways_check.py", ctx(tmp_path, data, status="BACKUP"))[0]


# -- router version ------------------------------------------------------------------------


def _release(root: Path, line: str) -> None:
    path = Settings(root=root).release_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{line}\nbuilt somewhere\n")


def _signature(root: Path, line: str) -> None:
    path = Settings(root=root).scripts_signature
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{line}\n")


# What a 4.20 server sends: the router's own recorded values, the second
# ending in the newline of get_template_version.sh's output.
SIGNATURE = "0123456789abcdef0123456789abcdef"
SENT = f"templateVersion=Release 1,scriptsVersion={SIGNATURE}\n"


def test_versions_match(tmp_path: Path) -> None:
    data = {"routerVersion": SENT}
    # Neither file yet: upstream's notes, and no failure (upstream crashes on
    # the missing signature).
    assert outcome("router_version_check.py", ctx(tmp_path, data)) == (True, (
        f"Release version not yet setup at {tmp_path}/etc/cloudstack-release, skipping.\n"
        f"Scripts signature is not yet setup at {tmp_path}/var/cache/cloud/"
        "cloud-scripts-signature, skipping\n"
        "Template and scripts version match successful"))
    _release(tmp_path, "Release 1")
    _signature(tmp_path, SIGNATURE)
    assert outcome("router_version_check.py", ctx(tmp_path, data)) == (
        True, "Template and scripts version match successful")


def test_versions_mismatch(tmp_path: Path) -> None:
    """An outdated router: patched (or rolled back) since the server recorded it."""
    _release(tmp_path, "Release 2")
    _signature(tmp_path, "ffffffffffffffffffffffffffffffff")
    assert outcome("router_version_check.py", ctx(tmp_path, {"routerVersion": SENT})) == (
        False, "Template Version mismatch. Expected: Release 1, found: Release 2\n"
               f"Scripts Version mismatch. Expected: {SIGNATURE}, "
               "found: ffffffffffffffffffffffffffffffff")


def test_version_values_are_shown_escaped(tmp_path: Path) -> None:
    _release(tmp_path, "Release 1")
    _signature(tmp_path, SIGNATURE)
    data = {"routerVersion": "templateVersion=Release 1,scriptsVersion=ab\x1b[2Jcd\n"}
    assert outcome("router_version_check.py", ctx(tmp_path, data)) == (
        False, f"Scripts Version mismatch. Expected: ab\\x1b[2Jcd, found: {SIGNATURE}")


def test_the_agents_signature_is_what_the_image_records(tmp_path: Path) -> None:
    assert cli.main(["--root", str(tmp_path), "signature", "--write"]) == 0
    recorded = Settings(root=tmp_path).scripts_signature.read_text()
    assert recorded == f"{version.scripts_signature()}\n"
    assert re.fullmatch(r"[0-9a-f]{32}\n", recorded)
    # Another agent (a patch) is another signature.
    other = tmp_path / "other"
    shutil.copytree(version.PACKAGE, other)
    (other / "settings.py").write_text((other / "settings.py").read_text() + "# patched\n")
    assert version.scripts_signature(other) != version.scripts_signature()


# -- services ----------------------------------------------------------------------------


def _configure(root: Path, *names: str) -> None:
    """Give daemons ``names`` their main file: from then on they should run."""
    daemons = supervised.registry(Settings(root=root))
    for name in names:
        path = daemons.get(name).conf
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("configured\n")


def _services(context: Context) -> dict[str, tuple[bool, str]]:
    out = {}
    for c in checks.service_checks(context):
        assert c.kind == "basic"
        result = c.run(context)
        out[c.name] = (result.success, result.message)
    return out


def test_one_result_per_configured_daemon(tmp_path: Path) -> None:
    assert _services(ctx(tmp_path)) == {}  # nothing configured: nothing should run
    _configure(tmp_path, "dnsmasq", "metadata")
    found = _services(ctx(tmp_path, states={"dnsmasq": "RUNNING", "metadata": "STOPPED"}))
    assert found["dnsmasq.service"] == (True, "service is running")
    ok, message = found["metadata.service"]
    assert not ok and re.fullmatch(r"service down at last check \d{10}", message)
    assert sorted(found) == ["dnsmasq.service", "metadata.service"]


def test_services_take_the_name_the_management_server_gave_their_process(tmp_path: Path) -> None:
    # [dhcp]:processname=dnsmasq makes it "dhcp.service"; [ssh] (sshd) runs nowhere here.
    _configure(tmp_path, "dnsmasq")
    context = ctx(tmp_path, config=LAB["config"], states={"dnsmasq": "RUNNING"})
    assert _services(context) == {"dhcp.service": (True, "service is running")}


def test_a_pairs_backup_does_not_want_the_master_only_services(tmp_path: Path) -> None:
    _configure(tmp_path, "dnsmasq", "keepalived")
    states = {"keepalived": "RUNNING"}
    backup = _services(ctx(tmp_path, redundant=True, status="BACKUP", states=states))
    assert sorted(backup) == ["keepalived.service"]
    primary = _services(ctx(tmp_path, redundant=True, status="PRIMARY", states=states))
    assert sorted(primary) == ["dnsmasq.service", "keepalived.service"]
    assert not primary["dnsmasq.service"][0]


def test_supervisord_not_answering_means_down(tmp_path: Path) -> None:
    _configure(tmp_path, "dnsmasq")
    context = Context(Settings(root=tmp_path), None, False, "UNKNOWN")  # asks the socket
    (result,) = _services(context).values()
    assert not result[0]


# -- dhcp and dns, against what the dhcp subsystem renders -------------------------------


def _render_dnsmasq(root: Path, *bags: dict[str, Any]) -> None:
    s = Settings(root=root)
    cfg = RouterConfig.from_docs(apply_bags(list(bags), sample_docs()))
    files = dhcp.render(dhcp.desired(cfg, resolve(cfg, sample_links()), s))
    s.conf_dir.mkdir(parents=True, exist_ok=True)
    for name, body in files.files:
        (s.conf_dir / name).write_text(body)


VMS = {"virtualMachines": LAB["health_checks_config"]["virtualMachines"]}


def test_every_vm_has_its_lease_and_name(tmp_path: Path) -> None:
    _render_dnsmasq(tmp_path)
    assert outcome("dhcp_check.py", ctx(tmp_path, VMS)) == (
        True, "All 2 VMs are present in dnsmasq.dhcp-hosts")
    assert outcome("dns_check.py", ctx(tmp_path, VMS)) == (
        True, "All 2 VMs are present in dnsmasq.hosts")


def test_a_host_with_options_of_its_own_is_found_in_the_main_file(tmp_path: Path) -> None:
    custom = {**sample_bag("vm_dhcp_entry_vm1.json"), "default_entry": False}
    _render_dnsmasq(tmp_path, custom)
    assert outcome("dhcp_check.py", ctx(tmp_path, VMS))[0]


def test_a_vm_without_entry_is_named(tmp_path: Path) -> None:
    removed = {**sample_bag("vm_dhcp_entry_vm2.json"), "remove": True}
    _render_dnsmasq(tmp_path, removed)
    assert outcome("dhcp_check.py", ctx(tmp_path, VMS)) == (
        False, "Missing elements in dnsmasq.dhcp-hosts - \n02:00:0a:02:00:0a 10.10.2.10 vm2")
    assert outcome("dns_check.py", ctx(tmp_path, VMS)) == (
        False, "Missing entries for VMs in dnsmasq.hosts -\n10.10.2.10 vm2")


def test_a_lease_for_another_mac_or_name_does_not_count(tmp_path: Path) -> None:
    _render_dnsmasq(tmp_path)
    wrong = {"virtualMachines": "vmName=vm1,macAddress=02:00:0a:01:00:99,ip=10.10.1.10;"
                                "vmName=web,macAddress=02:00:0a:02:00:0a,ip=10.10.2.10;"}
    ok, message = outcome("dhcp_check.py", ctx(tmp_path, wrong))
    assert not ok
    assert message.endswith("02:00:0a:01:00:99 10.10.1.10 vm1, 02:00:0a:02:00:0a 10.10.2.10 web")
    assert outcome("dns_check.py", ctx(tmp_path, wrong)) == (
        False, "Missing entries for VMs in dnsmasq.hosts -\n10.10.2.10 web")


def test_no_dnsmasq_files_means_every_vm_missing(tmp_path: Path) -> None:
    assert not outcome("dhcp_check.py", ctx(tmp_path, VMS))[0]
    assert not outcome("dns_check.py", ctx(tmp_path, VMS))[0]


# -- port forwarding, from nft's JSON listing ---------------------------------------------

# `nft -j -s list table inet vragent` (nftables 1.0.6) of rules as
# subsystems/netfilter.py _forward_dnat renders them.
def _rule(*expr: dict[str, Any]) -> dict[str, Any]:
    return {"rule": {"family": "inet", "table": "vragent", "chain": "port_forward",
                     "handle": 3, "expr": list(expr)}}


def _match(proto: str, field: str, right: Any) -> dict[str, Any]:
    return {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": field}},
                      "right": right}}


LISTING = [
    {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
    {"table": {"family": "inet", "name": "vragent", "handle": 1}},
    # ip daddr 100.64.10.11 tcp dport 2222 dnat ip to 10.10.1.10:22
    _rule(_match("ip", "daddr", "100.64.10.11"), _match("tcp", "dport", 2222),
          {"dnat": {"family": "ip", "addr": "10.10.1.10", "port": 22}}),
    # ip daddr 100.64.10.11 tcp dport 80-90 dnat ip to 10.10.1.11
    _rule(_match("ip", "daddr", "100.64.10.11"), _match("tcp", "dport", {"range": [80, 90]}),
          {"dnat": {"family": "ip", "addr": "10.10.1.11"}}),
    # ip daddr 100.64.10.11 tcp dport 1000 dnat ip to 10.10.1.12:2000 (and 1001 -> 2001)
    _rule(_match("ip", "daddr", "100.64.10.11"), _match("tcp", "dport", 1000),
          {"dnat": {"family": "ip", "addr": "10.10.1.12", "port": 2000}}),
    _rule(_match("ip", "daddr", "100.64.10.11"), _match("tcp", "dport", 1001),
          {"dnat": {"family": "ip", "addr": "10.10.1.12", "port": 2001}}),
    # ip daddr 100.64.10.12 dnat ip to 10.10.2.10 (static NAT: no port)
    _rule(_match("ip", "daddr", "100.64.10.12"),
          {"dnat": {"family": "ip", "addr": "10.10.2.10"}}),
]


def test_dnat_rules_of_a_listing() -> None:
    rules = dnat_rules(LISTING)
    assert [(r.daddr, r.ports, r.to, r.to_ports) for r in rules] == [
        ("100.64.10.11", (2222, 2222), "10.10.1.10", (22, 22)),
        ("100.64.10.11", (80, 90), "10.10.1.11", None),
        ("100.64.10.11", (1000, 1000), "10.10.1.12", (2000, 2000)),
        ("100.64.10.11", (1001, 1001), "10.10.1.12", (2001, 2001)),
    ]


def _forward(src: str, sports: str, dst: str, dports: str) -> dict[str, str]:
    s1, _, s2 = sports.partition("-")
    d1, _, d2 = dports.partition("-")
    return {"sourceIp": src, "sourcePortStart": s1, "sourcePortEnd": s2 or s1,
            "destIp": dst, "destPortStart": d1, "destPortEnd": d2 or d1}


@pytest.mark.parametrize(("record", "found"), [
    (_forward("100.64.10.11", "2222", "10.10.1.10", "22"), True),
    (_forward("100.64.10.11", "80-90", "10.10.1.11", "80-90"), True),
    (_forward("100.64.10.11", "85", "10.10.1.11", "85"), True),
    (_forward("100.64.10.11", "1000-1001", "10.10.1.12", "2000-2001"), True),
    (_forward("100.64.10.11", "1000-1002", "10.10.1.12", "2000-2002"), False),
    (_forward("100.64.10.11", "2222", "10.10.1.10", "23"), False),
    (_forward("100.64.10.11", "2222", "10.10.1.99", "22"), False),
    (_forward("100.64.10.99", "2222", "10.10.1.10", "22"), False),
    (_forward("100.64.10.11", "80-91", "10.10.1.11", "80-91"), False),
    (_forward("100.64.10.12", "22", "10.10.2.10", "22"), False),  # static NAT is no forward
])
def test_a_forward_is_found_only_when_every_port_reaches_the_vm(record: dict[str, str],
                                                                found: bool) -> None:
    assert netfilter_checks._forwarded(dnat_rules(LISTING), record) is found


@pytest.mark.parametrize(("record", "problem"), [
    ({"sourceIp": "1.2.3.4"}, "sourcePortStart, sourcePortEnd, destIp, destPortStart, "
                              "destPortEnd missing"),
    (_forward("1.2.3.4", "x", "10.0.0.1", "22"), "sourcePortStart, sourcePortEnd not a port"),
    (_forward("1.2.3.4", "²", "10.0.0.1", "22"), "not a port number"),
    ({**_forward("1.2.3.4", "22", "10.0.0.1", "22"), "sourcePortEnd": "21"},
     "source port range reversed"),
])
def test_an_unusable_forward_record_fails(tmp_path: Path, record: dict[str, str],
                                          problem: str) -> None:
    text = ",".join(f"{k}={v}" for k, v in record.items())
    ok, message = outcome("iptables_check.py", ctx(tmp_path, {"portForwarding": text}))
    assert not ok and message.startswith("portForwarding record 0: ") and problem in message


# -- haproxy ---------------------------------------------------------------------------------


def test_haproxy_rules_without_haproxy_running_fail(tmp_path: Path) -> None:
    globals_only = {"haproxyData": "global.maxconn=4096,global.maxpipes=1024;"}
    assert outcome("haproxy_check.py", ctx(tmp_path, globals_only)) == (
        True, "No data provided to check, skipping")
    rules = {"haproxyData": globals_only["haproxyData"] + (
        "sourcePortStart=80,sourcePortEnd=80,sourceIp=100.64.10.11,destPortStart=80,"
        "destPortEnd=80,algorithm=roundrobin,protocol=tcp,stickiness=None,"
        "keepAliveEnabled=false,vmIps=10.10.1.10 10.10.1.11;")}
    assert outcome("haproxy_check.py", ctx(tmp_path, rules)) == (
        False, "haproxy is not running: 1 load balancing rule(s) not served")


# -- netfilter and daemon files ----------------------------------------------------------------


def test_no_ruleset_applied_fails(tmp_path: Path) -> None:
    assert outcome("netfilter_check", ctx(tmp_path)) == (
        False, "No ruleset applied since boot (netfilter.applied.json is missing)")


def test_running_daemons_against_what_they_loaded(tmp_path: Path) -> None:
    _configure(tmp_path, "dnsmasq", "metadata")
    s = Settings(root=tmp_path)
    s.run_dir.mkdir(parents=True)
    dnsmasq = supervised.registry(s).get("dnsmasq")
    daemon_state.write_loaded(s.daemon_loaded("dnsmasq"), daemon_state.digests(dnsmasq))
    # metadata runs but the agent recorded nothing; keepalived is not running: not checked.
    running = {"dnsmasq": "RUNNING", "metadata": "RUNNING", "keepalived": "STOPPED"}
    assert outcome("daemon_config_check", ctx(tmp_path, states=running)) == (
        False, "Daemons not running their current configuration - \n"
               "metadata: no record of what it loaded")
    daemon_state.write_loaded(s.daemon_loaded("metadata"), daemon_state.digests(
        supervised.registry(s).get("metadata")))
    assert outcome("daemon_config_check", ctx(tmp_path, states=running)) == (
        True, "All 2 running daemons loaded their current configuration")
    DNSMASQ_NAMES.of(s).write_text("10.10.1.10 vm1\n")
    assert outcome("daemon_config_check", ctx(tmp_path, states=running)) == (
        False, "Daemons not running their current configuration - \n"
               "dnsmasq: dnsmasq.hosts changed since it was loaded")
