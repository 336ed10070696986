"""strongSwan peers for the labs, the tests and the benchmarks: a charon of
their own (charon-systemd with its own strongswan.conf, vici socket and
run directory: two charons on one host need all three), kernel-libipsec for
the data path (this kernel has no ESP), and the peer's side of a
site-to-site tunnel in swanctl's syntax. Lab and test tooling: the router
renders its own (vragent/features/vpn/)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .netns import wait_for

PLUGINS = ("random nonce aes sha1 sha2 md5 hmac gmp kdf pem pkcs1 pkcs8 x509 pubkey constraints "
           "revocation openssl kernel-libipsec kernel-netlink socket-default vici attr "
           "eap-identity eap-mschapv2 resolve")


def strongswan_conf(socket: str | Path, install_routes: bool = True) -> str:
    """A peer charon's settings: its vici socket, its log to stdout a line at a time."""
    return f"""charon-systemd {{
  load_modular = no
  load = {PLUGINS}
  install_routes = {"yes" if install_routes else "no"}
  plugins {{
    vici {{ socket = unix://{socket} }}
  }}
  filelog {{
    stdout {{
      path = /dev/stdout
      default = 1
      ike = 2
      flush_line = yes
    }}
  }}
}}
"""


def site_conf(name: str, local: str, remote: str, local_ts: str, remote_ts: str, psk: str,
              version: int = 2, proposals: str = "aes128-sha256-modp2048",
              esp: str = "aes128-sha1-modp1536", children: list[tuple[str, str]] | None = None,
              start: bool = False, remote_id: str = "", local_id: str = "",
              encap: bool = False, unique: str = "") -> str:
    """The peer's side of a site-to-site tunnel, in swanctl's syntax.
    ``unique``: "replace" takes a new IKE SA from the same identity (a new
    master's) as replacing the old one."""
    kids = children or [(name, remote_ts)]
    child_text = "".join(f"""      {n} {{
        local_ts = {local_ts}
        remote_ts = {ts}
        esp_proposals = {esp}
        {"start_action = start" if start else ""}
      }}
""" for n, ts in kids)
    return f"""connections {{
  {name} {{
    version = {version}
    local_addrs = {local}
    remote_addrs = {remote}
    proposals = {proposals}
    encap = {"yes" if encap else "no"}
    {f"unique = {unique}" if unique else ""}
    local {{
      auth = psk
      id = {local_id or local}
    }}
    remote {{
      auth = psk
      id = {remote_id or remote}
    }}
    children {{
{child_text}    }}
  }}
}}
secrets {{
  ike-{name} {{
    id-a = {local_id or local}
    id-b = {remote_id or remote}
    secret = "{psk}"
  }}
}}
"""


@dataclass
class Peer:
    """A charon in namespace ``ns``, its files under ``base``, driven with swanctl."""

    ns: str
    base: Path
    install_routes: bool = True
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.base / "charon.vici"

    @property
    def log(self) -> Path:
        return self.base / "charon.log"

    def start(self, wait: bool = True) -> None:
        """``wait``: until its vici socket exists (a benchmark times that itself)."""
        self.base.mkdir(parents=True, exist_ok=True)
        conf = self.base / "strongswan.conf"
        conf.write_text(strongswan_conf(self.socket, self.install_routes))
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "env", f"STRONGSWAN_CONF={conf}",
                 "charon-systemd"], stdout=out, stderr=subprocess.STDOUT)
        if wait:
            wait_for(self.socket.exists, 10, f"the peer's charon in {self.ns}")

    def swanctl(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(["ip", "netns", "exec", self.ns, "swanctl", *args, "--uri",
                               f"unix://{self.socket}"], capture_output=True, text=True,
                              check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"swanctl {' '.join(args)}: {proc.stdout}{proc.stderr}")
        return proc.stdout + proc.stderr

    def load(self, text: str) -> None:
        path = self.base / "swanctl.conf"
        path.write_text(text)
        path.chmod(0o600)
        self.swanctl("--load-all", "--noprompt", "--file", str(path))

    def sas(self) -> list[dict[str, Any]]:
        """IKE SAs as vici lists them, bytes made text."""
        import socket as _socket

        import vici

        out = []
        with _socket.socket(_socket.AF_UNIX) as s:
            s.connect(str(self.socket))
            for e in vici.Session(s).list_sas():
                for name, ike in e.items():
                    out.append({"name": name, **json.loads(json.dumps(ike, default=lambda b:
                                                                       b.decode()))})
        return out

    def child_spis(self) -> dict[str, set[str]]:
        """Installed CHILD_SAs' inbound SPIs, by connection."""
        spis: dict[str, set[str]] = {}
        for ike in self.sas():
            for c in ike.get("child-sas", {}).values():
                if c.get("state") == "INSTALLED":
                    spis.setdefault(ike["name"], set()).add(c["spi-in"])
        return spis

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        self.socket.unlink(missing_ok=True)
