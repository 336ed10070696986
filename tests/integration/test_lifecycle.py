"""Idempotence, bad input, dry runs, history and reboot persistence on a real router."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from vragent_lab.netns import OUTSIDE, OUTSIDE_FAR, VM1, VM2, wait_for

from .harness import ALL_BAGS, SAMPLE, Router, connect, ns_of, server


def test_reapplying_the_same_configuration_changes_nothing(router: Router) -> None:
    router.apply(*ALL_BAGS)
    handle = router.table_handle()
    listing = router.sh("nft", "-a", "list", "table", "inet", "vragent")
    before = router.snapshot()
    out = router.apply(*ALL_BAGS)
    assert "system already matches" in out.stdout, out.stdout
    # A reload would give the table (and its rules) new handles.
    assert router.table_handle() == handle
    assert router.sh("nft", "-a", "list", "table", "inet", "vragent") == listing
    assert router.snapshot() == before
    assert router.run("diff").stdout.strip().endswith("system already matches")


def test_one_acl_change_replaces_chains_not_the_table(router: Router, tmp_path: Path) -> None:
    router.apply(*ALL_BAGS)
    handle = router.table_handle()
    bag = json.loads((SAMPLE / "network_acl_tier2.json").read_text())
    bag["ingress_rules"][0]["first_port"] = bag["ingress_rules"][0]["last_port"] = 8081
    (tmp_path / "acl.json").write_text(json.dumps(bag))
    out = router.apply(tmp_path / "acl.json")
    assert "replace" in out.stdout and "acl_in_eth3" in out.stdout, out.stdout
    assert router.table_handle() == handle
    assert "tcp dport 8081 accept" in router.sh("nft", "list", "chain", "inet", "vragent",
                                                "acl_in_eth3")


def test_bad_bag_is_rejected_naming_field_and_value_and_changes_nothing(
    router: Router, tmp_path: Path
) -> None:
    router.apply(*ALL_BAGS)
    before = router.snapshot()
    history = router.run("history").stdout
    stored = router.run("show").stdout
    bag = json.loads((SAMPLE / "network_acl_tier2.json").read_text())
    bag["ingress_rules"][1]["first_port"] = 70000
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bag))
    proc = router.apply(bad, check=False)
    assert proc.returncode == 2
    assert "ingress_rules.1.first_port" in proc.stderr and "70000" in proc.stderr, proc.stderr
    assert "nothing was changed" in proc.stderr
    assert router.snapshot() == before
    assert router.run("history").stdout == history
    assert router.run("show").stdout == stored


def test_batch_stops_at_first_failure_keeping_what_came_before(
    router: Router, tmp_path: Path
) -> None:
    bad = json.loads((SAMPLE / "forwarding_rules.json").read_text())
    bad["rules"][0]["source_port_range"] = "2222:2200"
    blocks = []
    for name, body in [
        ("ip_associations.json", (SAMPLE / "ip_associations.json").read_text()),
        ("guest_network_tier1.json", (SAMPLE / "guest_network_tier1.json").read_text()),
        ("forwarding_rules.json", json.dumps(bad)),
        ("guest_network_tier2.json", (SAMPLE / "guest_network_tier2.json").read_text()),
    ]:
        blocks.append(f"<file>\n/var/cache/cloud/{name}\n{body}\n</file>\n"
                      f"<script>\n/opt/cloud/bin/update_config.py {name}\n</script>\n")
    batch = tmp_path / "VR-batch.cfg"
    batch.write_text("#Apache CloudStack Virtual Router Config File\n<version>\n1.0\n"
                     "</version>\n" + "".join(blocks))
    proc = router.run("apply", str(batch), check=False)
    assert proc.returncode == 2, proc.stderr
    assert "forwarding_rules.json" in proc.stderr and "reversed" in proc.stderr
    addrs = router.sh("ip", "-4", "-o", "addr", "show")
    assert "10.10.1.1/24" in addrs  # before the failure: applied
    assert "10.10.2.1/24" not in addrs  # after it: not applied


def test_diff_is_a_dry_run(router: Router) -> None:
    before = router.snapshot()
    proc = router.run("diff", *[str(SAMPLE / b) for b in ALL_BAGS])
    assert "interfaces: eth2: add 10.10.1.1/24" in proc.stdout
    assert "routes: add route to 10.99.0.0/24 via 172.30.0.254" in proc.stdout
    assert router.snapshot() == before
    assert router.run("show", "ips").stdout.strip() == "{}"


def test_removed_address_goes_but_control_address_stays(router: Router, tmp_path: Path) -> None:
    router.apply(*ALL_BAGS)
    # Something an operator or a stale config left behind on a managed link.
    router.sh("ip", "addr", "add", "100.64.10.99/24", "dev", "eth1")
    bag = json.loads((SAMPLE / "ip_associations.json").read_text())
    bag["ip_address"] = [dict(bag["ip_address"][2], add=False)]
    (tmp_path / "ips.json").write_text(json.dumps(bag))
    # Its static NAT still refers to the address: refused until that goes first.
    refused = router.apply(tmp_path / "ips.json", check=False)
    assert refused.returncode == 3
    assert "public IP 100.64.10.12 is not configured" in refused.stderr
    nat = json.loads((SAMPLE / "staticnat_rules.json").read_text())
    nat["rules"][0]["revoke"] = True
    (tmp_path / "nat.json").write_text(json.dumps(nat))
    router.apply(tmp_path / "nat.json", tmp_path / "ips.json")
    addrs = router.sh("ip", "-4", "-o", "addr", "show")
    assert "100.64.10.12/" not in addrs and "100.64.10.99/" not in addrs
    assert "100.64.10.10/24" in addrs and "169.254.0.10/16" in addrs


def test_commands_are_serialised(router: Router) -> None:
    procs = [
        subprocess.Popen(["ip", "netns", "exec", router.ns, sys.executable, "-m", "vragent",
                          "--root", str(router.root), "apply", str(SAMPLE / bag)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for bag in ("ip_associations.json", "guest_network_tier1.json",
                    "guest_network_tier2.json")
    ]
    for p in procs:
        assert p.wait(timeout=60) == 0, p.stderr.read() if p.stderr else ""
    history = router.run("history").stdout.splitlines()
    assert len(history) == 4  # boot + three commands, none lost to a race
    ips = json.loads(router.run("show", "ips").stdout)
    assert sorted(ips) == ["eth1", "eth2", "eth3"]


def _reboot(router: Router) -> None:
    """Everything a reboot loses: rules, addresses, our routes, run state."""
    router.sh("nft", "flush", "ruleset")
    for dev in ("eth0", "eth1", "eth2", "eth3", "eth4"):
        router.sh("ip", "addr", "flush", "dev", dev)
        router.sh("ip", "link", "set", dev, "down")
    router.sh("ip", "route", "flush", "table", "all", "proto", "157", check=False)
    for prio in ("90", "100", "100", "100", "110"):
        router.sh("ip", "rule", "del", "priority", prio, check=False)
    router.sh("sysctl", "-qw", "net.ipv4.ip_forward=0")
    import shutil

    shutil.rmtree(router.root / "run", ignore_errors=True)


def test_boot_restores_everything_after_a_reboot(router: Router) -> None:
    router.apply(*ALL_BAGS)
    configured = router.snapshot()
    _reboot(router)
    assert "100.64.10.10" not in router.sh("ip", "-4", "-o", "addr", "show")
    with server(ns_of(router, "out"), 7000):
        assert connect(ns_of(router, "vm1"), OUTSIDE_FAR, 7000, timeout=0.5) is None
    router.run("boot")
    assert router.snapshot() == configured
    with server(ns_of(router, "out"), 7000), server(ns_of(router, "vm1"), 22), \
            server(ns_of(router, "vm2"), 8080):
        # The first connection after the boot may wait on neighbour discovery
        # of the flushed links (a busy machine): a deadline, not one try.
        wait_for(lambda: connect(ns_of(router, "vm1"), OUTSIDE_FAR, 7000) == "100.64.10.10",
                 15, "vm1's connection through source NAT after the boot")
        assert connect(ns_of(router, "out"), "100.64.10.11", 2222) == OUTSIDE
        assert connect(ns_of(router, "vm1"), VM2, 8080) == VM1
    # A second boot finds nothing to do.
    assert "system already matches" in router.run("boot").stdout
