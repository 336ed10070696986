"""Remote-access clients: each a real strongSwan charon (kernel-libipsec, as
peer.py's) in its own namespace on the public side. The namespace hangs off
the outside host "out" on a subnet of its own, which "out" routes (it has
the router's public network, and is the router's default gateway).

A client is configured as a road warrior is: IKEv2, the router known by the
certificate it created (router.crt, copied in), the user's EAP-MSCHAPv2
secret, and a virtual IP asked for (``vips = 0.0.0.0``)."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vragent_lab.ipsec import Peer
from vragent_lab.netns import in_ns

from ..harness import Router, ns_of

SERVER = "100.64.10.10"  # the router's public address (vpn_server_ip)


def router_sas(router: Router) -> list[dict[str, Any]]:
    """The router's IKE SAs, read over its own vici socket."""
    return Peer(router.ns, router.root / "run/vragent").sas()


def router_conns(router: Router) -> set[str]:
    """The connections the router's charon has loaded (none while it is not up)."""
    out = Peer(router.ns, router.root / "run/vragent").swanctl("--list-conns", check=False)
    return {line.split(":")[0] for line in out.splitlines()
            if line and not line[0].isspace() and ":" in line}


@dataclass
class Client(Peer):
    user: str = ""
    password: str = ""
    address: str = ""

    @classmethod
    def attach(cls, router: Router, index: int, base: Path, user: str,
               password: str) -> Client:
        """Namespace ``ra<index>`` (under the lab's prefix, so the lab removes
        it) on 100.64.<20+index>.0/24, routed by "out", and a charon in it."""
        lab, short = router.lab, f"ra{index}"
        net = ipaddress.IPv4Network(f"100.64.{20 + index}.0/24")
        gw, me = str(net.network_address + 1), str(net.network_address + 2)
        lab.link(short, "eth0", "out", short)
        lab.host(short, "eth0", f"{me}/24", None)
        out = ns_of(router, "out")
        in_ns(out, ["ip", "addr", "add", f"{gw}/24", "dev", short])
        in_ns(out, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        ns = ns_of(router, short)
        in_ns(ns, ["ip", "route", "add", "default", "via", gw])
        client = cls(ns, base / short, user=user, password=password, address=me)
        client.start()
        # The router's certificate, as a user would be handed it.
        shutil.copy(router.root / "var/lib/vragent/ipsec/router.crt", client.base / "router.crt")
        client.configure()
        return client

    def configure(self, password: str | None = None, remote_ts: str = "10.10.0.0/16") -> None:
        if password is not None:
            self.password = password
        secret = self.password.replace("\\", "\\\\").replace('"', '\\"')
        self.load(f"""connections {{
  ra {{
    version = 2
    local_addrs = {self.address}
    remote_addrs = {SERVER}
    vips = 0.0.0.0
    keyingtries = 1
    local {{
      auth = eap-mschapv2
      eap_id = {self.user}
    }}
    remote {{
      auth = pubkey
      certs = {self.base / "router.crt"}
      id = {SERVER}
    }}
    children {{
      ra {{
        remote_ts = {remote_ts}
      }}
    }}
  }}
}}
secrets {{
  eap-{self.user} {{
    id = {self.user}
    secret = "{secret}"
  }}
}}
""")

    def connect(self, timeout: int = 15) -> bool:
        """Initiate and wait for the outcome (swanctl's own exit status)."""
        proc = subprocess.run(["ip", "netns", "exec", self.ns, "swanctl", "--initiate",
                               "--child", "ra", "--timeout", str(timeout), "--uri",
                               f"unix://{self.socket}"], capture_output=True, text=True,
                              check=False)
        return proc.returncode == 0 and "initiate completed successfully" in proc.stdout

    def sa(self) -> dict[str, Any] | None:
        """The established IKE SA with its one installed CHILD_SA, if any."""
        for ike in self.sas():
            if ike.get("state") == "ESTABLISHED" and any(
                    c.get("state") == "INSTALLED" for c in ike.get("child-sas", {}).values()):
                return ike
        return None

    def child(self) -> dict[str, Any]:
        ike = self.sa()
        assert ike is not None, f"{self.user}: no tunnel"
        return next(c for c in ike["child-sas"].values() if c.get("state") == "INSTALLED")

    def vip(self) -> str:
        ike = self.sa()
        assert ike is not None and ike.get("local-vips"), f"{self.user}: no virtual IP"
        return str(ike["local-vips"][0])

    def run(self, *argv: str, check: bool = False) -> str:
        return in_ns(self.ns, list(argv), check=check)

    def ping(self, dst: str) -> bool:
        return " 0% packet loss" in self.run("ping", "-c", "1", "-W", "1", dst)
