"""DHCP, DNS and metadata on a redundant pair: only the master answers, and a
hard failover hands them over with the tier gateway (CsRedundant: dnsmasq and
the password server run on the master only)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from vragent_lab.netns import in_ns, wait_for
from vragent_lab.pair import Pair

from ..services.conftest import udhcpc
from .conftest import ADVERT_INT, Sampler, running_pair

DVM_MAC = "02:00:0a:01:00:32"
DVM_IP = "10.10.1.50"
ENTRY = {"type": "dhcpentry", "host_name": "dvm", "mac_address": DVM_MAC,
         "ipv4_address": DVM_IP, "default_gateway": "10.10.1.1", "default_entry": True}
VMDATA = {"type": "vmdata", "vm_ip_address": DVM_IP, "vm_metadata": [
    ["metadata", "instance-id", "i-dvm"], ["metadata", "availability-zone", "zone-lab"]]}


@pytest.fixture(scope="module")
def served_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pair, Sampler]]:
    with running_pair(tmp_path_factory.mktemp("spair"), ADVERT_INT) as (pair, sampler):
        # A VM namespace on tier 1 that gets its address by DHCP.
        lab = pair.lab
        lab.link("dvm", "eth0", "sw", "dvmp")
        in_ns(lab.ns("dvm"), ["ip", "link", "set", "eth0", "address", DVM_MAC])
        in_ns(lab.ns("dvm"), ["ip", "link", "set", "eth0", "up"])
        in_ns(pair.ns("sw"), ["ip", "link", "set", "dvmp", "master", "brt1"])
        for r in pair.routers:
            r.apply(ENTRY, VMDATA)
        yield pair, sampler


def dhcp(pair: Pair, tmp: Path, requested: str | None = None) -> dict[str, str] | None:
    return udhcpc(pair.lab.ns("dvm"), tmp, requested, tries=4)


def dig(pair: Pair, name: str) -> str:
    return in_ns(pair.lab.ns("vm2"), ["dig", "@10.10.2.1", name, "+short", "+time=1",
                                      "+tries=1"], check=False).strip()


def metadata(pair: Pair) -> str:
    return in_ns(pair.lab.ns("dvm"), ["curl", "-s", "-m", "2",
                                      "http://10.10.1.1/latest/meta-data/instance-id"],
                 check=False)


def acks(r: object, mac: str) -> int:
    log = Path(r.root) / "var/log/vragent/dnsmasq.log"  # type: ignore[attr-defined]
    return log.read_text().count(f"DHCPACK(eth2) {DVM_IP} {mac}") if log.exists() else 0


def test_only_the_master_runs_dns_dhcp_and_metadata(served_pair: tuple[Pair, Sampler],
                                                    tmp_path: Path) -> None:
    pair, _ = served_pair
    master = pair.master()
    assert master is not None
    backup = pair.other(master)
    for name in ("dnsmasq", "metadata"):
        wait_for(lambda n=name: master.service_running(n), 10, f"{name} on the master")
        assert not backup.service_running(name)
    lease = dhcp(pair, tmp_path)
    assert lease is not None and lease["ip"] == DVM_IP and lease["serverid"] == "10.10.1.1"
    assert lease["router"] == "10.10.1.1"
    assert acks(master, DVM_MAC) >= 1 and acks(backup, DVM_MAC) == 0
    wait_for(lambda: dig(pair, "dvm.vpc.lab") == DVM_IP, 5, "dvm's name")
    assert metadata(pair) == "i-dvm"


def test_hard_failover_hands_dhcp_dns_and_metadata_to_the_new_master(
        served_pair: tuple[Pair, Sampler], tmp_path: Path) -> None:
    pair, sampler = served_pair
    master = pair.master()
    assert master is not None
    other = pair.other(master)
    assert dhcp(pair, tmp_path) is not None  # the VM holds its lease from the old master
    sampler.healthy(False)
    master.kill()
    wait_for(lambda: other.status() == "PRIMARY", 10, "the backup to take over")
    wait_for(lambda: other.service_running("dnsmasq"), 10, "dnsmasq on the new master")
    # The VM renews the address it holds; the new master answers.
    renewed = None

    def renew() -> bool:
        nonlocal renewed
        renewed = dhcp(pair, tmp_path, requested=DVM_IP)
        return renewed is not None

    wait_for(renew, 15, "a renewal answered by the new master", interval=0.5)
    assert renewed is not None and renewed["ip"] == DVM_IP
    assert acks(other, DVM_MAC) >= 1
    wait_for(lambda: dig(pair, "dvm.vpc.lab") == DVM_IP, 10, "DNS from the new master")
    wait_for(lambda: metadata(pair) == "i-dvm", 10, "metadata from the new master")
    # The old router comes back as backup and stays quiet.
    master.start()
    wait_for(lambda: master.status() == "BACKUP", 30, "the old master to rejoin as backup")
    wait_for(lambda: not master.service_running("dnsmasq"), 10, "no dnsmasq on the backup")
    pair.wait_one_master()
    sampler.healthy(True)


def test_entries_reach_both_routers_but_only_the_master_serves(
        served_pair: tuple[Pair, Sampler]) -> None:
    pair, _ = served_pair
    for r in pair.routers:
        hosts = (r.root / "etc/vragent/dnsmasq.dhcp-hosts").read_text()
        assert f"{DVM_MAC},{DVM_IP},dvm,infinite" in hosts
        shown = json.loads(r.vragent("show", "dhcpentry").stdout)
        assert shown[DVM_IP]["host_name"] == "dvm"
