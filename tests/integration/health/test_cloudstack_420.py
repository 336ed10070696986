"""The health checks as a CloudStack 4.20 management server drives them, on a
running router.

The bags are shaped as VirtualNetworkApplianceManagerImpl.createMonitorServiceCommand
builds them and Gson writes them (one line, no nulls): at start with the
services' ``config`` (finalizeMonitorService), then the periodic refresh
(updateRouterHealthChecksConfig) without ``config`` and with
``delete_from_processed_cache: true``, which the agent turns into
``update_config.py <file> false`` (AbstractConfigItemFacade). The rules
followed: systemvm/debian/opt/cloud/bin/update_config.py ("false": the
file is deleted, not archived), cs_monitorservice.py (a refresh without
``config`` keeps it), systemvm/debian/root/health_checks/utility/
sharedFunctions.py getHealthChecksData (values stripped),
health_checks/router_version_check.py (the release and signature files,
its messages) and monitorServices.py (the result rows). Their
``routerVersion`` is what the server recorded from get_template_version.sh,
so it ends in that script's newline. The results are read as
VirtualRoutingResource.parseLinesForHealthChecks reads
getRouterMonitorResults.sh, and each row as the server parses it
(Boolean.parseBoolean, Long.parseLong, Double.parseDouble): a failing name
with no parseable row is how upstream's alert and ``healthchecksfailed``
came to disagree (apache/cloudstack#12630).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vragent import version
from vragent.settings import Settings
from vragent_lab.netns import wait_for

from tests.cloudstack import parse_monitor_output

from ..harness import vpc_lab
from .conftest import Appliance
from .test_checks import settled

BIN = Path(sys.executable).parent
RELEASE = "Cloudstack Release vragent-0.1.0 Sun Dec  6 04:00:00 UTC 2026"
SERVICES = ("[ssh]:processname=sshd:servicename=ssh:pidfile=/var/run/sshd.pid:,"
            "[dhcp]:processname=dnsmasq:servicename=dnsmasq:pidfile=/var/run/dnsmasq/"
            "dnsmasq.pid:,[webserver]:processname=apache2:servicename=apache2:pidfile="
            "/var/run/apache2/apache2.pid:,")


def router_version(signature: str) -> str:
    """What the server sends back: the two lines it read from the router."""
    return f"templateVersion={RELEASE},scriptsVersion={signature}\n"


def bag_420(signature: str, refresh: bool = False, vms: bool = True,
            excluded: str = "", gateways: str = "100.64.10.1 10.10.1.1 10.10.2.1 ",
            ) -> dict[str, Any]:
    data = {
        "virtualMachines": ("vmName=vm1,macAddress=02:00:0a:01:00:0a,ip=10.10.1.10,dhcp=true,"
                            "dns=true;vmName=vm2,macAddress=02:00:0a:02:00:0a,ip=10.10.2.10,"
                            "dhcp=true,dns=true;") if vms else "",
        "gateways": f"gatewaysIps={gateways}",
        "portForwarding": ("sourceIp=100.64.10.11,sourcePortStart=2222,sourcePortEnd=2222,"
                           "destIp=10.10.1.10,destPortStart=22,destPortEnd=22;") if vms else "",
        "haproxyData": "",
        "systemThresholds": "minDiskNeeded=100.0,maxCpuUsage=100.0,maxMemoryUsage=100.0;",
        "routerVersion": router_version(signature),
    }
    bag: dict[str, Any] = {
        "health_checks_enabled": True, "health_checks_basic_run_interval": 3,
        "health_checks_advanced_run_interval": 10, "excluded_health_checks": excluded,
        "health_checks_config": data, "type": "monitorservice",
        "delete_from_processed_cache": refresh,
    }
    if not refresh:
        bag["config"] = SERVICES
    return bag


def send(app: Appliance, bag: dict[str, Any]) -> None:
    """As the agent hands a bag to the router: the file in /var/cache/cloud,
    then update_config.py, with "false" when the server asked to delete it."""
    cache = app.router.root / "var/cache/cloud"
    remote = f"monitor_service.json.{uuid.uuid4()}"
    (cache / remote).write_text(json.dumps(bag, separators=(",", ":")))
    args = [remote, "false"] if bag["delete_from_processed_cache"] else [remote]
    proc = subprocess.run(["ip", "netns", "exec", app.router.ns, "env",
                           f"VRAGENT_ROOT={app.router.root}", str(BIN / "update_config.py"),
                           *args], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not (cache / remote).exists()
    archived = (cache / "processed" / f"{remote}.gz").exists()
    assert archived is not bag["delete_from_processed_cache"]
    wait_for(lambda: settled(app), 10, "the agent to reload its daemons")


def monitor_results(app: Appliance) -> tuple[str, list[str], dict[str, Any]]:
    proc = subprocess.run(
        ["ip", "netns", "exec", app.router.ns, "env", f"VRAGENT_ROOT={app.router.root}",
         str(BIN / "getRouterMonitorResults.sh"), "true"],
        capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    failing, results = parse_monitor_output(proc.stdout)
    return proc.stdout, failing, results


def as_the_server_reads(failing: list[str], results: dict[str, Any]) -> set[str]:
    """Every row parsed as the server parses it; the names whose row says
    they failed, which must be exactly the failing list (the alert and
    healthchecksfailed agree)."""
    failed = set()
    for kind in ("basic", "advanced"):
        for name, row in results[kind].items():
            if name == "lastRun":
                continue
            assert row["success"] in ("true", "false"), (name, row)
            int(row["lastUpdate"])
            float(row["lastRunDuration"])
            assert isinstance(row["message"], str)
            if row["success"] == "false":
                failed.add(name)
    assert failed == set(failing), (failing, results)
    return failed


@pytest.fixture
def released(appliance: Appliance) -> Iterator[Appliance]:
    """The sample router, with the release line the image build writes."""
    release = Settings(root=appliance.router.root).release_file
    release.parent.mkdir(parents=True, exist_ok=True)
    release.write_text(f"{RELEASE}\n")
    yield appliance


def test_a_current_router_passes_with_a_420_servers_bags(released: Appliance) -> None:
    app = released
    signature = Settings(root=app.router.root).scripts_signature.read_text().strip()
    assert signature == version.scripts_signature()  # what the lab's "image" recorded
    send(app, bag_420(signature))
    send(app, bag_420(signature, refresh=True))
    stored = json.loads(app.router.run("show", "monitorservice").stdout)
    assert stored["config"] == SERVICES  # the refresh without config keeps it
    assert stored["health_checks_config"]["routerVersion"].endswith("\n")  # kept as sent
    output, failing, results = monitor_results(app)
    # getRouterMonitorResults.sh's layout, line by line.
    lines = output.splitlines()
    assert lines[0] == "FAILING CHECKS:" and lines[1] == "MONITOR RESULTS:"
    assert lines[2] == '{"basic":' and lines[4] == ',"advanced":' and lines[6:] == ["}"]
    assert failing == [], results
    assert as_the_server_reads(failing, results) == set()
    assert results["basic"]["router_version_check.py"]["message"] == (
        "Template and scripts version match successful")
    # [webserver] (apache2) and [ssh] run nowhere here: no row, no false failure.
    assert "webserver.service" not in results["basic"]
    assert results["basic"]["dhcp.service"]["message"] == "service is running"


def test_an_outdated_router_fails_with_upstreams_message(released: Appliance) -> None:
    app = released
    current = version.scripts_signature()
    recorded = "0123456789abcdef0123456789abcdef"  # before the router was patched
    send(app, bag_420(recorded))
    _, failing, results = monitor_results(app)
    assert failing == ["router_version_check.py"]
    assert as_the_server_reads(failing, results) == {"router_version_check.py"}
    assert results["basic"]["router_version_check.py"]["message"] == (
        f"Scripts Version mismatch. Expected: {recorded}, found: {current}")


def test_no_vms_is_no_failure(released: Appliance) -> None:
    """apache/cloudstack#10088, #12643: no VMs (yet, or any more) is a skip."""
    app = released
    send(app, bag_420(version.scripts_signature(), vms=False))
    _, failing, results = monitor_results(app)
    assert failing == [], results
    assert results["advanced"]["dhcp_check.py"]["message"] == (
        "No VMs running data available, skipping")
    assert results["advanced"]["iptables_check.py"]["message"] == (
        "No portforwarding rules provided to check, skipping")


def test_a_vpc_without_tiers_has_no_failing_service(tmp_path: Path) -> None:
    """A VPC router before its first tier: no dnsmasq, no metadata service to
    run, so the sections the server names get no row rather than "service
    down" (upstream #10088: apache2 is not started before a tier)."""
    with vpc_lab(tmp_path) as router:
        app = Appliance(router)
        try:
            app.start()
            router.apply("ip_associations.json")
            # No tier: the server names the public gateway only.
            send(app, bag_420(version.scripts_signature(), vms=False, gateways="100.64.10.1 "))
            _, failing, results = monitor_results(app)
        finally:
            app.stop()
    assert failing == [], results
    assert not [n for n in results["basic"] if n.endswith(".service")], results
