"""The L2TP/IPsec connection (IKEv1, transport mode for udp/1701, the
wildcard PSK) goes through swanctl's own parser into a real charon. On this
host that is as far as it goes through charon: kernel-libipsec has no
transport mode (test_l2tp.py runs xl2tpd itself; the system VM runs it all,
tests/vm/test_vpn_kernel.py).

Upstream: systemvm/debian/opt/cloud/bin/configure.py CsRemoteAccessVpn and
systemvm/debian/etc/ipsec.d/l2tp.conf.
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

    swanctl = _l2tp_only(render(d)["swanctl.conf"])
    assert "mode = transport" in swanctl and "version = 1" in swanctl
    ns = f"l2tpcheck{tmp_path.name[-6:]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    peer = Peer(ns, tmp_path / "charon")
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        peer.start()
        out = peer.swanctl("--load-all", "--noprompt", "--file",
                           str(_write(tmp_path / "l2tp.conf", swanctl)))
        assert "loaded connection 'L2TP-PSK'" in out, out
        assert "loaded ike secret 'ike-L2TP-PSK'" in out, out
        listed = peer.swanctl("--list-conns")
        assert "TRANSPORT" in listed and "L2TP-PSK" in listed, listed
    finally:
        peer.stop()
        subprocess.run(["ip", "netns", "del", ns], check=False)


def _section(text: str, head: str) -> str:
    """The lines of the section that starts with line ``head`` up to its end."""
    lines = text.splitlines()
    start = lines.index(head)
    indent = head[:len(head) - len(head.lstrip())]
    end = lines.index(f"{indent}}}", start)
    return "\n".join(lines[start:end + 1]) + "\n"


def _l2tp_only(swanctl: str) -> str:
    """The L2TP connection and its secret alone (the router's others need its
    certificate and peers)."""
    return ("connections {\n" + _section(swanctl, "\tL2TP-PSK {") + "}\nsecrets {\n"
            + _section(swanctl, "\tike-L2TP-PSK {") + "}\n")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path
