"""A strongSwan peer site for the lab: a container on the public network.

The peer is the router image with its own entrypoint (``sleep infinity``):
charon-systemd on its own strongswan.conf and vici socket, kernel-libipsec
for the data path (this kernel has no ESP: strongSwan's own ESP over a TUN
device, so the container gets /dev/net/tun and NET_ADMIN), its private
network on its loopback. Driven with swanctl inside the container; its
network namespace is attached as ``<project>-vpnpeer`` for the traffic tools.
Lab tooling: the router never runs this. The configuration follows
vragent_lab.ipsec (plugins, strongswan.conf, the site), as the tests' peers do.
"""

from __future__ import annotations

import io
import tarfile
import time
from typing import Any

import docker

from .ipsec import site_conf, strongswan_conf
from .lab import OUTSIDE, PUBLIC_SNAT, Lab, LabError, run, wait_for

SERVICE = "vpnpeer"
PEER_IP = "100.64.10.50"  # on the public network, beside the outside host
PEER_NET = "10.30.0.0/24"  # behind the peer: an address on its loopback
PEER_HOST = "10.30.0.1"
VPC = "10.10.0.0/16"  # the sample VPC's CIDR: both tiers
PSK = "lab-vpn-psk"
CONN = "vpc"
BASE = "/etc/vpnpeer"
SOCKET = "/run/vpnpeer.vici"
LOG = "/var/log/vpnpeer-charon.log"
IKE_POLICY, ESP_POLICY = "aes128-sha256;modp2048", "aes128-sha1;modp1536"


def bag(create: bool = True) -> dict[str, Any]:
    """A site2sitevpn bag as Site2SiteVpnConfigItem sends it: the source-NAT IP
    as the VPC's gateway, the whole VPC into the tunnel."""
    return {"type": "site2sitevpn", "local_public_ip": PUBLIC_SNAT, "local_guest_cidr": VPC,
            "local_public_gateway": OUTSIDE, "peer_gateway_ip": PEER_IP,
            "peer_guest_cidr_list": PEER_NET, "esp_policy": ESP_POLICY,
            "ike_policy": IKE_POLICY, "ipsec_psk": PSK, "ike_lifetime": 86400,
            "esp_lifetime": 3600, "create": create, "dpd": False, "passive": False,
            "encap": False, "split_connections": False, "ike_version": "ikev2"}


STRONGSWAN_CONF = strongswan_conf(SOCKET)
# The peer's side: it answers (the router calls), and takes a new IKE SA from
# the same identity as replacing the old one (the new master's INITIAL_CONTACT).
SWANCTL_CONF = site_conf(CONN, PEER_IP, PUBLIC_SNAT, PEER_NET, VPC, PSK, unique="replace")


def _tar(files: dict[str, tuple[str, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, (text, mode) in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class VpnPeer:
    """The peer container: ``start`` creates and configures it, ``remove`` removes it."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    @property
    def name(self) -> str:
        return f"{self.lab.project}_{SERVICE}"

    @property
    def ns(self) -> str:
        return self.lab.netns(SERVICE)

    def exec(self, *argv: str, check: bool = True) -> str:
        result = self.lab.container_of(SERVICE).exec_run(list(argv))
        out = str(result.output.decode(errors="replace"))
        if check and result.exit_code != 0:
            raise LabError(f"{SERVICE}: {' '.join(argv)} failed (exit {result.exit_code}): "
                           f"{out.strip()[-800:]} (log: docker exec {self.name} cat {LOG})")
        return out

    def swanctl(self, *args: str, check: bool = True) -> str:
        return self.exec("swanctl", *args, "--uri", f"unix://{SOCKET}", check=check)

    def start(self) -> None:
        self.remove()
        client = self.lab.client()
        network = f"{self.lab.project}_eth1-pub"
        api = client.api
        created = api.create_container(
            self.lab.image, entrypoint=["sleep", "infinity"], name=self.name,
            labels={"org.vragent.lab.project": self.lab.project,
                    "org.vragent.lab.service": SERVICE},
            host_config=api.create_host_config(
                cap_add=["NET_ADMIN"], network_mode=network,
                devices=["/dev/net/tun:/dev/net/tun:rwm"]),
            networking_config=api.create_networking_config({network: api
                .create_endpoint_config(ipv4_address=PEER_IP)}))
        api.start(created["Id"])
        container = self.lab.container_of(SERVICE)
        run(["ip", "netns", "delete", self.ns], check=False)
        run(["ip", "netns", "attach", self.ns, str(container.attrs["State"]["Pid"])])
        run(["ip", "netns", "exec", self.ns, "ip", "address", "replace",
             f"{PEER_HOST}/24", "dev", "lo"])
        self.exec("mkdir", "-p", BASE)
        container.put_archive(BASE, _tar({"strongswan.conf": (STRONGSWAN_CONF, 0o644),
                                          "swanctl.conf": (SWANCTL_CONF, 0o600)}))
        container.exec_run(["sh", "-c", f"STRONGSWAN_CONF={BASE}/strongswan.conf "
                            f"exec charon-systemd >{LOG} 2>&1"], detach=True)
        wait_for(lambda: container.exec_run(["test", "-S", SOCKET]).exit_code == 0, 15,
                 f"the peer's charon (docker exec {self.name} cat {LOG})")
        self.swanctl("--load-all", "--noprompt", "--file", f"{BASE}/swanctl.conf")

    def established(self) -> bool:
        """An IKE SA with the router's public IP, with its CHILD_SA installed."""
        out = self.swanctl("--list-sas", check=False)
        return "ESTABLISHED" in out and "INSTALLED" in out

    def log(self, lines: int = 30) -> str:
        return self.exec("tail", f"-{lines}", LOG, check=False)

    def remove(self) -> None:
        run(["ip", "netns", "delete", self.ns], check=False)
        try:
            self.lab.client().containers.get(self.name).remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
