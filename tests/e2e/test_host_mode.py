"""Host mode: the image manages the NICs of the network namespace it is started in.

In a system VM the router runs with ``network_mode: host``. Here the "host" is
a namespace this test makes (never the machine's own): a holder container
with no network, given two NICs from the test (veth pairs whose other ends sit
in a namespace of the test's own), and the router container started in it
(``network_mode: container:<holder>``), as it would be started in a VM's.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator

import docker
import pytest
from vragent_lab.lab import wait_for

PREFIX = f"vrhost{os.getpid() % 10000}"
IMAGE = "vragent-router:latest"


def sh(*argv: str, check: bool = True) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


@pytest.fixture
def host_ns() -> Iterator[tuple[str, str]]:
    """(holder container name, peer namespace name), removed whatever happens."""
    client = docker.from_env()
    holder = f"{PREFIX}_holder"
    peer = f"{PREFIX}-peer"
    handle = f"{PREFIX}-host"
    # What a system VM's kernel settings are; new NICs take "default".
    sysctls = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0",
               "net.ipv4.conf.default.rp_filter": "1",
               "net.ipv4.conf.all.promote_secondaries": "1"}
    try:
        c = client.containers.run(IMAGE, entrypoint=["sleep", "infinity"], name=holder,
                                  detach=True, network_mode="none", sysctls=sysctls)
        c.reload()
        sh("ip", "netns", "attach", handle, str(c.attrs["State"]["Pid"]))
        sh("ip", "netns", "add", peer)
        for n, (mac, cidr) in enumerate((("02:00:77:00:00:00", "169.254.77.1/24"),
                                         ("02:00:77:00:00:01", "10.77.1.10/24"))):
            a, b = f"{PREFIX}a{n}", f"{PREFIX}b{n}"
            sh("ip", "link", "add", a, "type", "veth", "peer", "name", b, "netns", peer)
            sh("ip", "link", "set", a, "netns", handle)
            sh("ip", "-n", handle, "link", "set", a, "name", f"eth{n}")
            sh("ip", "-n", handle, "link", "set", f"eth{n}", "address", mac)
            sh("ip", "-n", peer, "address", "add", cidr, "dev", b)
            sh("ip", "-n", peer, "link", "set", b, "up")
        yield holder, peer
    finally:
        for name in (f"{PREFIX}_router", holder):
            try:
                client.containers.get(name).remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
        sh("ip", "netns", "delete", handle, check=False)
        sh("ip", "netns", "delete", peer, check=False)


def test_the_image_configures_the_namespace_it_runs_in(host_ns: tuple[str, str]) -> None:
    holder, peer = host_ns
    client = docker.from_env()
    handle = f"{PREFIX}-host"
    router = client.containers.run(
        IMAGE, name=f"{PREFIX}_router", detach=True, network_mode=f"container:{holder}",
        cap_add=["NET_ADMIN", "NET_RAW"],
        environment={"VRAGENT_CMDLINE": "type=vpcrouter name=r-7-VM template=domP "
                                        "eth0ip=169.254.77.2 eth0mask=255.255.255.0"})
    # The boot parameters' control address, on the namespace's own eth0.
    wait_for(lambda: "169.254.77.2/24" in sh("ip", "-n", handle, "-o", "addr", "show", "eth0"),
             30, "the control address")
    tier = {"type": "guestnetwork", "add": True, "mac_address": "02:00:77:00:00:01",
            "device": "eth1", "router_guest_ip": "10.77.1.1",
            "router_guest_gateway": "10.77.1.1", "router_guest_netmask": "255.255.255.0",
            "cidr": "24", "dns": "10.77.1.1", "domain_name": "host.lab"}
    data = json.dumps(tier).encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("guest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert router.put_archive("/var/cache/cloud", archive.getvalue())
    applied = router.exec_run(["vragent", "apply", "/var/cache/cloud/guest.json"])
    assert applied.exit_code == 0, applied.output.decode()
    # A host on that NIC reaches the router's address there, and the namespace
    # carries the router's netfilter table.
    assert subprocess.run(["ip", "netns", "exec", peer, "ping", "-c", "1", "-W", "2",
                           "10.77.1.1"], capture_output=True, check=False).returncode == 0
    assert "table inet vragent" in sh("ip", "netns", "exec", handle, "nft", "list", "tables")
    # What the image was built from, where CloudStack's router_version_check.py
    # reads it: the signature of the agent it runs, as its manifest records it.
    def cat(path: str) -> str:
        result = router.exec_run(["cat", path])
        assert result.exit_code == 0, path
        return str(result.output.decode())

    manifest = json.loads(cat("/usr/share/vragent/manifest.json"))
    recorded = cat("/var/cache/cloud/cloud-scripts-signature")
    assert recorded == f"{manifest['scripts_signature']}\n"
    assert router.exec_run(["vragent", "signature"]).output.decode() == recorded
    assert cat("/etc/cloudstack-release").startswith(
        f"Cloudstack Release vragent-{manifest['agent_version']} ")
