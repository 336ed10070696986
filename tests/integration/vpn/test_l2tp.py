"""L2TP/IPsec on this host, as far as its kernel allows.

This kernel has no ESP (strongSwan's kernel-libipsec carries tunnels, but no
transport mode) and no PPP, so the router serves remote access over IKEv2
only, and says why: the apply's output, the status the health check and
the metrics read. Nothing fails. With ``VRAGENT_L2TP=on`` (what a kernel
with ESP and PPP gets) xl2tpd runs under supervisord with the rendered files
and answers an L2TP tunnel request, but only from inside the router: from
the public side, L2TP outside an IPsec SA is dropped (upstream serves it
in the clear). The whole path, IPsec and PPP included, runs in the system
VM (tests/vm/test_vpn_kernel.py).

Upstream: systemvm/debian/opt/cloud/bin/configure.py CsRemoteAccessVpn
(remoteaccessvpn_iptables opens udp/1701 to anyone) and CsVpnUser;
systemvm/debian/etc/xl2tpd/xl2tpd.conf.
"""

from __future__ import annotations

import json
import stat
import struct
import sys
from pathlib import Path
from typing import Any

import pytest
from vragent.features.vpn.checks import vpn as vpn_check
from vragent.features.vpn.daemon import L2TP_STATUS, XL2TPD_CONF, chap_secrets
from vragent.settings import Settings
from vragent_lab.ipsec import Peer
from vragent_lab.netns import in_ns, wait_for

from ..harness import ns_of
from ..services.conftest import Appliance
from .client import SERVER, router_conns
from .conftest import apply
from .test_remote_access import ra, users


class _Ctx:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings


def _status(app: Appliance) -> dict[str, Any]:
    path = L2TP_STATUS.of(Settings(root=app.router.root))
    return dict(json.loads(path.read_text())) if path.exists() else {}


def test_a_kernel_without_esp_or_ppp_serves_ikev2_and_says_why(
        vpn_site: tuple[Appliance, Peer], tmp_path: Path) -> None:
    app, _ = vpn_site
    s = Settings(root=app.router.root)
    done = apply(app, tmp_path, ra(), users(("alice", "Al1ce-pw")))
    assert done.returncode == 0, done.stderr
    # Said once, in the apply's report.
    out = done.stdout + done.stderr
    assert "vpn: L2TP/IPsec not served: the kernel has no ESP" in out, out
    status = _status(app)
    assert status["configured"] is True and status["served"] is False
    assert "no ESP" in status["why"] and "no PPP" in status["why"], status
    # IKEv2 is served, over all of ip_range; L2TP's files are not there.
    wait_for(lambda: "remote-access" in router_conns(app.router), 20, "remote access loaded")
    assert "L2TP-PSK" not in router_conns(app.router)
    swanctl = (app.router.root / "etc/vragent/swanctl.conf").read_text()
    assert "\t\taddrs = 10.1.2.2-10.1.2.8\n" in swanctl and "L2TP" not in swanctl
    assert not XL2TPD_CONF.of(s).exists() and not chap_secrets(s).exists()
    assert not app.running("xl2tpd")
    check = vpn_check(_Ctx(s))
    assert check.success and "L2TP/IPsec remote access not served: the kernel has no ESP" in \
        check.message, check.message
    # Applied again: nothing new to say.
    again = apply(app, tmp_path, users(("bob", "B0b-pw")))
    assert "L2TP" not in again.stdout + again.stderr


# -- xl2tpd itself, where the kernel is said to carry it --------------------------------------

L2TP_PORT = 1701


def _avp(kind: int, value: bytes) -> bytes:
    # Mandatory bit, length (6-byte header and value), vendor 0 (RFC 2661 4.1).
    return struct.pack("!HHH", 0x8000 | (6 + len(value)), 0, kind) + value


def sccrq() -> bytes:
    """An L2TP tunnel request (Start-Control-Connection-Request, RFC 2661 6.1)."""
    avps = (_avp(0, struct.pack("!H", 1))  # message type: SCCRQ
            + _avp(2, b"\x01\x00")  # protocol version 1.0
            + _avp(7, b"lac")  # host name
            + _avp(3, struct.pack("!I", 3))  # framing: sync and async
            + _avp(9, struct.pack("!H", 0x1234)))  # assigned tunnel id
    # T, L and S bits, version 2; tunnel and session 0; Ns 0, Nr 0.
    return struct.pack("!HHHHHH", 0xC802, 12 + len(avps), 0, 0, 0, 0) + avps


# Sends sccrq() from inside a namespace and prints the message type of the
# answer (2: SCCRP), or nothing when none came.
PROBE = """
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[2], 0))
s.settimeout(float(sys.argv[3]))
s.sendto(bytes.fromhex(sys.argv[4]), (sys.argv[1], 1701))
try:
    data = s.recv(2048)
except socket.timeout:
    sys.exit(0)
print(struct.unpack_from("!H", data, 18)[0])
"""


def tunnel_answer(ns: str, source: str, timeout: float) -> str:
    return in_ns(ns, [sys.executable, "-c", PROBE, SERVER, source, str(timeout),
                      sccrq().hex()]).strip()


def test_xl2tpd_runs_with_the_rendered_files_and_answers_only_inside(
        vpn_site: tuple[Appliance, Peer], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = vpn_site
    s = Settings(root=app.router.root)
    # The resident agent already runs: what it is told comes with the next start.
    monkeypatch.setenv("VRAGENT_L2TP", "on")
    app.stop()
    app.start()
    done = apply(app, tmp_path, ra(), users(("alice", "Al1ce-pw"), ("bob", 'B0b "pw" #1')))
    assert done.returncode == 0, done.stderr
    assert "vpn: L2TP/IPsec served" in done.stdout + done.stderr
    assert _status(app) == {"configured": True, "served": True, "why": ""}
    wait_for(lambda: app.running("xl2tpd"), 20, "xl2tpd to run")
    # Its files: chap-secrets where pppd reads it, root-only.
    secrets = chap_secrets(s)
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert secrets.read_text().splitlines()[2:] == ['"alice" * "Al1ce-pw" *',
                                                    '"bob" * "B0b \\"pw\\" #1" *']
    wait_for(lambda: "L2TP-PSK" in router_conns(app.router), 20, "charon to load L2TP-PSK")
    router = app.router.ns
    listening = in_ns(router, ["ss", "-Hunlp", f"sport = :{L2TP_PORT}"])
    assert f"{SERVER}:{L2TP_PORT}" in listening and "xl2tpd" in listening, listening
    # From the router itself (127.0.0.2: any of 127/8 is the loopback's):
    # xl2tpd answers SCCRP.
    wait_for(lambda: tunnel_answer(router, "127.0.0.2", 1) == "2", 10,
             "xl2tpd to answer a tunnel request with SCCRP")
    # From the public side, in the clear: dropped before xl2tpd.
    assert tunnel_answer(ns_of(app.router, "out"), "100.64.10.1", 2) == ""
    log = (app.router.root / "var/log/vragent/xl2tpd.log").read_text(errors="replace")
    assert "Listening on IP address" in log, log
    # Remote access removed: xl2tpd stops, its files go.
    done = apply(app, tmp_path, ra(create=False))
    assert done.returncode == 0, done.stderr
    wait_for(lambda: not app.running("xl2tpd"), 20, "xl2tpd to stop")
    assert not secrets.exists() and not XL2TPD_CONF.of(s).exists()
    assert _status(app)["configured"] is False
