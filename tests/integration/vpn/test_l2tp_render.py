"""L2TP/IPsec, the client type CloudStack's own clients use, is rendered
(subsystem.l2tp: CsRemoteAccessVpn's files) but not run here: this kernel
has neither PPP nor ESP, and kernel-libipsec has no transport mode. What can
be checked here is checked: the IKEv1 transport-mode connection and its
wildcard PSK go through swanctl's own parser into a real charon. xl2tpd and
pppd have no configuration checker; their files are golden-tested. The
end-to-end test belongs with the system-VM image (README).

Upstream: systemvm/debian/opt/cloud/bin/configure.py CsRemoteAccessVpn and
systemvm/debian/etc/ipsec.d/l2tp.conf, xl2tpd/xl2tpd.conf, ppp/options.xl2tpd.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from vragent.reconcile import desired_states
from vragent.settings import Settings
from vragent_lab.ipsec import Peer

from tests.unit.builders import sample_topology


def test_the_l2tp_connection_loads_into_a_real_charon(tmp_path: Path) -> None:
    cfg, topo = sample_topology()
    d = desired_states(cfg, topo, Settings(root=tmp_path / "root"))["vpn"]
    from vragent.features.vpn.subsystem import render

    side = render(d)["l2tp"]
    swanctl = side.split("# ==> swanctl.conf (L2TP) <==\n", 1)[1].split("# ==> xl2tpd.conf", 1)[0]
    assert "mode = transport" in swanctl and "version = 1" in swanctl
    ns = f"l2tpcheck{tmp_path.name[-6:]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    peer = Peer(ns, tmp_path / "charon")
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        peer.start()
        out = peer.swanctl("--load-all", "--noprompt", "--file",
                           str(_write(tmp_path / "l2tp.conf", swanctl)))
        assert "loaded connection 'l2tp-psk'" in out, out
        assert "loaded ike secret 'ike-l2tp-psk'" in out, out
        listed = peer.swanctl("--list-conns")
        assert "TRANSPORT" in listed and "l2tp-psk" in listed, listed
    finally:
        peer.stop()
        subprocess.run(["ip", "netns", "del", ns], check=False)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path
