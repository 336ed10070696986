"""CloudStack's router health checks on a running router, read as the management
server reads them.

A sample-VPC router in its network namespace (supervisord, the agent, dnsmasq
and the metadata service), given a monitorservice bag shaped as the server
sends it (SetMonitorServiceConfigItem, VirtualNetworkApplianceManagerImpl.
getRouterHealthChecksConfig) naming the sample VMs, gateways and port forward.
``getRouterMonitorResults.sh true`` runs in the namespace as the server runs
systemvm/debian/opt/cloud/bin/getRouterMonitorResults.sh; its output is read
as VirtualRoutingResource.parseLinesForHealthChecks does. Then the router is
broken for real, and the checks that follow upstream's
systemvm/debian/root/health_checks/{dhcp,dns,iptables,gateways}_check.py and
monitorServices.py monitProcess say so.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from vragent import daemon_state, version
from vragent.settings import Settings
from vragent.supervised import registry
from vragent_lab.netns import wait_for

from tests.cloudstack import parse_monitor_output
from tests.conftest import SAMPLE

from .conftest import Appliance

BIN = Path(sys.executable).parent
VM2_ENTRY = SAMPLE / "vm_dhcp_entry_vm2.json"


def monitor_bag(**data: str) -> dict[str, Any]:
    """The sample monitorservice bag, with this agent's signature as
    scriptsVersion (what the server recorded of a current router, and what
    router_version_check.py compares with the router's signature file)."""
    bag: dict[str, Any] = json.loads((SAMPLE / "monitor_service.json").read_text())
    config = bag["health_checks_config"]
    config["routerVersion"] = config["routerVersion"].split(",scriptsVersion=")[0] + (
        f",scriptsVersion={version.scripts_signature()}\n")
    config.update(data)
    return bag


def apply(app: Appliance, tmp: Path, doc: dict[str, Any], name: str) -> None:
    path = tmp / name
    path.write_text(json.dumps(doc))
    app.router.apply(path)


def settled(app: Appliance) -> bool:
    """Every running daemon has loaded its files as they are now (the agent
    reloads a moment after a command)."""
    s = Settings(root=app.router.root)
    return all(daemon_state.read_loaded(s.daemon_loaded(d.name)) == daemon_state.digests(d)
               for d in registry(s) if app.running(d.name))


def health(app: Appliance, fresh: bool = True) -> tuple[list[str], dict[str, Any]]:
    """``getRouterMonitorResults.sh true|false`` in the router's namespace: the
    failing names and {"basic": {...}, "advanced": {...}}."""
    proc = subprocess.run(
        ["ip", "netns", "exec", app.router.ns, "env", f"VRAGENT_ROOT={app.router.root}",
         str(BIN / "getRouterMonitorResults.sh"), "true" if fresh else "false"],
        capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    failing, results = parse_monitor_output(proc.stdout)
    assert set(results) == {"basic", "advanced"}
    return failing, results


def message(results: dict[str, Any], name: str) -> str:
    for kind in ("basic", "advanced"):
        if name in results[kind]:
            return str(results[kind][name]["message"])
    raise AssertionError(f"no result for {name}: {results}")


def ready(app: Appliance, tmp: Path, bag: dict[str, Any] | None = None) -> None:
    apply(app, tmp, bag or monitor_bag(), "monitor_service.json")
    wait_for(lambda: settled(app), 10, "the agent to reload its daemons")


def test_every_check_passes_on_a_configured_router(appliance: Appliance, tmp_path: Path) -> None:
    ready(appliance, tmp_path)
    failing, results = health(appliance)
    assert failing == [], results
    basic, advanced = results["basic"], results["advanced"]
    # monitProcess: [dhcp]:processname=dnsmasq is dhcp.service; sshd runs nowhere here.
    assert sorted(basic) == ["cpu_usage_check.py", "dhcp.service", "disk_space_check.py",
                             "gateways_check.py", "lastRun", "memory_usage_check.py",
                             "metadata.service", "router_version_check.py"]
    assert sorted(advanced) == ["bgp_check.py", "daemon_config_check", "dhcp_check.py",
                                "dns_check.py", "haproxy_check.py", "iptables_check.py", "lastRun",
                                "netfilter_check", "vpn_check.py"]
    for kind in (basic, advanced):
        for name, result in kind.items():
            assert all(isinstance(v, str) for v in result.values()), (name, result)
            if name != "lastRun":
                assert result["success"] == "true", (name, result)
    assert basic["dhcp.service"]["message"] == "service is running"
    assert basic["gateways_check.py"]["message"] == "All 3 gateways are reachable via ping"
    assert advanced["dhcp_check.py"]["message"] == "All 2 VMs are present in dnsmasq.dhcp-hosts"
    assert advanced["dns_check.py"]["message"] == "All 2 VMs are present in dnsmasq.hosts"
    assert advanced["iptables_check.py"]["message"] == (
        "Found all entries (count 1) in table inet vragent")
    assert advanced["netfilter_check"]["message"] == (
        "Table inet vragent is what the agent last applied")
    assert advanced["daemon_config_check"]["message"] == (
        "All 2 running daemons loaded their current configuration")
    # "false": the same results again, from the files, without running anything.
    assert health(appliance, fresh=False) == (failing, results)


def test_an_unreachable_gateway_fails(appliance: Appliance, tmp_path: Path) -> None:
    # Nobody holds 100.64.10.99 on the public link.
    ready(appliance, tmp_path, monitor_bag(gateways="gatewaysIps=100.64.10.1 100.64.10.99 "))
    failing, results = health(appliance)
    assert failing == ["gateways_check.py"]
    assert message(results, "gateways_check.py") == (
        "Unreachable gateways found-\n['100.64.10.99']")


def test_a_removed_dhcp_entry_is_missing_from_dhcp_and_dns(appliance: Appliance,
                                                            tmp_path: Path) -> None:
    ready(appliance, tmp_path)
    entry = {**json.loads(VM2_ENTRY.read_text()), "remove": True}
    apply(appliance, tmp_path, entry, "vm2_remove.json")
    wait_for(lambda: settled(appliance), 10, "dnsmasq to reload its hosts")
    failing, results = health(appliance)
    assert failing == ["dhcp_check.py", "dns_check.py"]
    assert message(results, "dhcp_check.py") == (
        "Missing elements in dnsmasq.dhcp-hosts - \n02:00:0a:02:00:0a 10.10.2.10 vm2")
    assert message(results, "dns_check.py") == (
        "Missing entries for VMs in dnsmasq.hosts -\n10.10.2.10 vm2")


def test_a_deleted_table_fails_the_port_forward_and_netfilter_checks(appliance: Appliance,
                                                                      tmp_path: Path) -> None:
    ready(appliance, tmp_path)
    appliance.router.sh("nft", "delete", "table", "inet", "vragent")
    failing, results = health(appliance)
    assert failing == ["iptables_check.py", "netfilter_check"]
    assert message(results, "iptables_check.py") == (
        "Missing port forwarding rules in table inet vragent (table inet vragent is not "
        "loaded)-\n 100.64.10.11:2222 -> 10.10.1.10:22")
    assert message(results, "netfilter_check") == (
        "Table inet vragent is not loaded: removed since the agent applied it")


def test_a_stopped_dnsmasq_fails_its_service(appliance: Appliance, tmp_path: Path) -> None:
    ready(appliance, tmp_path)
    # The agent would start it again within a second: it goes first.
    appliance.supervisorctl("stop", "agent")
    appliance.supervisorctl("stop", "dnsmasq")
    wait_for(lambda: not appliance.running("dnsmasq"), 10, "dnsmasq to stop")
    failing, results = health(appliance)
    assert failing == ["dhcp.service"]
    result = results["basic"]["dhcp.service"]
    assert result["success"] == "false"
    assert result["message"].startswith("service down at last check ")
    assert results["basic"]["metadata.service"]["message"] == "service is running"


def test_a_read_only_cache_fails_the_filesystem_check(appliance: Appliance) -> None:
    # filesystem_writable_check.py, with /var/cache/cloud mounted read-only in
    # a mount namespace of its own.
    cache = Settings(root=appliance.router.root).cache_dir
    argv = [sys.executable, "-c", (
        "import subprocess, sys; "
        f"subprocess.run(['mount', '-t', 'tmpfs', '-o', 'ro', 'tmpfs', {str(cache)!r}], "
        "check=True); "
        f"sys.exit(subprocess.run([{str(BIN / 'filesystem_writable_check.py')!r}]).returncode)")]
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "env",
                           f"VRAGENT_ROOT={appliance.router.root}", *argv],
                          capture_output=True, text=True, check=False, timeout=30)
    assert (proc.returncode, proc.stdout) == (1, (
        f"Read-only file system : config info ({cache}) file system is mounted as "
        "read-only\n")), proc.stderr
    writable = subprocess.run(["env", f"VRAGENT_ROOT={appliance.router.root}",
                               str(BIN / "filesystem_writable_check.py")],
                              capture_output=True, text=True, check=False, timeout=30)
    assert (writable.returncode, writable.stdout) == (0, "file system is writable\n")


def router_alerts(app: Appliance, *since: str) -> str:
    """getRouterAlerts.sh as the management server runs it (GetRouterAlertsCommand)."""
    proc = subprocess.run(["ip", "netns", "exec", app.router.ns, "env",
                           f"VRAGENT_ROOT={app.router.root}", str(BIN / "getRouterAlerts.sh"),
                           *since], capture_output=True, text=True, check=True, timeout=30)
    return proc.stdout.strip()


def test_a_killed_daemon_is_an_alert_for_the_management_server(appliance: Appliance,
                                                                tmp_path: Path) -> None:
    """Upstream: systemvm/debian/opt/cloud/bin/getRouterAlerts.sh reads what
    monitorServices.py's raisealert logged; VirtualRoutingResource and
    RouterAlertsServiceImpl read the answer (see tests/unit/test_alerts.py)."""
    ready(appliance, tmp_path)
    assert router_alerts(appliance, "1970-01-01", "00:00:00") == "No Alerts"
    # A planned stop and start (what the agent does to a daemon) is no alert.
    appliance.supervisorctl("stop", "agent")
    appliance.supervisorctl("restart", "dnsmasq")
    assert router_alerts(appliance, "1970-01-01", "00:00:00") == "No Alerts"
    pid = appliance.pid("dnsmasq")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: appliance.running("dnsmasq") and appliance.pid("dnsmasq") != pid, 20,
             "supervisord to restart dnsmasq")
    wait_for(lambda: "recovered" in router_alerts(appliance), 10, "the recovery's alert")
    answer = router_alerts(appliance, "1970-01-01", "00:00:00")
    found = [a for a in answer.split("\\n") if a]
    assert len(found) == 2, answer
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[ALERT\] \[dnsmasq\] The process "
                        r"dnsmasq is not running \(exit status -?\d+\): supervisord restarts it",
                        found[0]), found
    assert found[1].endswith("[INFO] [dnsmasq] The process dnsmasq is recovered successfully")
    # The next poll sends the last alert's stamp (RouterAlertsServiceImpl): nothing new.
    stamp = found[-1].split(",")[0]
    assert router_alerts(appliance, *stamp.split()) == "No Alerts"
