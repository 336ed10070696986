"""The VPN over the kernel's own IPsec and PPP, in the system VM (QEMU, TCG).

This machine's kernel has neither ESP nor PPP; the system VM's Debian kernel
has both. So here, and only here, the router's charon runs on the kernel's
ESP (``vragent-ipsec charon`` probes for it) and L2TP/IPsec is served
(xl2tpd under supervisord, pppd checking chap-secrets). Two VMs from the same
image, one boot each: the router, configured as the management server does
(boot parameters through the guest agent, bags by scp and update_config.py),
and a second VM as the far side, configured by hand over ssh (its agent
stopped): a strongSwan site and an L2TP/IPsec client (charon for IKEv1
transport mode, xl2tpd as the LAC, pppd).

Shown:
- a site-to-site tunnel over kernel ESP (``ip xfrm state`` holds the ESP
  SAs, there is no kernel-libipsec TUN device, and a connection from the
  far site's network reaches the tier with its own address);
- an L2TP/IPsec client with the remote-access PSK and a listed user gets an
  address from the L2TP half of ``ip_range`` and reaches the tier, inside a
  transport-mode ESP SA; a wrong password is refused; removing the user
  hangs up exactly its session.

Upstream: systemvm/debian/opt/cloud/bin/configure.py (CsSite2SiteVpn,
CsRemoteAccessVpn, CsVpnUser), systemvm/debian/opt/cloud/bin/cs/
CsRemoteAccessVpn.py (conn L2TP-PSK), systemvm/debian/etc/xl2tpd/xl2tpd.conf,
systemvm/debian/etc/ppp/options.xl2tpd; the bags as the Java facades build
them (Site2SiteVpnConfigItem, RemoteAccessVpnConfigItem, VpnUsersConfigItem).
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..integration.harness import server
from .conftest import FAILED, attach_serial_logs
from .harness import REPO, Keypair, Nic, Segment, Segments, Vm, cmdline_text, wait_for
from .test_router_vm import BAGS, CONTROL_IP, PUBLIC_MAC, SAMPLE, TIER_MAC, boot_parameters

ROUTER = "100.64.10.10"  # the sample VPC's source-NAT address: the VPN's
VPC = "10.10.0.0/16"
TIER_HOST = "10.10.1.10"  # the tier segment's host, a VM behind the router
CLIENT_CONTROL = "169.254.0.20"
SITE_IP = "100.64.10.30"  # the far site's gateway (the second VM)
SITE_NET = "10.30.0.0/24"
SITE_HOST = "10.30.0.1"
ROAD_IP = "100.64.10.31"  # the same VM as an L2TP/IPsec client
SITE_PSK = "site-psk-1"
RA_PSK = "ra-psk-2"
RANGE = "10.1.2.2-10.1.2.8"
L2TP_POOL = ("10.1.2.2", "10.1.2.4")  # the first half of RANGE
PASSWORD = "Al1ce pw \"#1"  # a quote, a space, a '#': as pppd reads chap-secrets
BOB_PASSWORD = "B0b-pw"
PEER_PY = REPO / "tests/integration/peer.py"
C = "/root/vt"  # the client's working directory


def site2sitevpn() -> dict[str, Any]:
    return {"type": "site2sitevpn", "local_public_ip": ROUTER, "local_guest_cidr": VPC,
            "local_public_gateway": "100.64.10.1", "peer_gateway_ip": SITE_IP,
            "peer_guest_cidr_list": SITE_NET, "esp_policy": "aes128-sha1;modp1536",
            "ike_policy": "aes128-sha256;modp2048", "ipsec_psk": SITE_PSK,
            "ike_lifetime": 86400, "esp_lifetime": 3600, "create": True, "dpd": False,
            "passive": False, "encap": False, "split_connections": False,
            "ike_version": "ikev2"}


def remoteaccessvpn() -> dict[str, Any]:
    return {"type": "remoteaccessvpn", "create": True, "ip_range": RANGE,
            "preshared_key": RA_PSK, "vpn_server_ip": ROUTER, "local_ip": "10.1.2.1",
            "local_cidr": VPC, "public_interface": "eth1"}


def vpnuserlist(*users: tuple[str, str, bool]) -> dict[str, Any]:
    return {"type": "vpnuserlist", "vpn_type": "l2tp",
            "vpn_users": [{"user": u, "password": p, "add": a} for u, p, a in users]}


# -- the far side: a strongSwan site and an L2TP/IPsec client, by hand ------------------------

PLUGINS = ("random nonce aes sha1 sha2 md5 hmac gmp kdf pem pkcs1 pkcs8 x509 pubkey openssl "
           "kernel-netlink socket-default vici")
STRONGSWAN_CONF = f"""charon-systemd {{
	load_modular = no
	load = {PLUGINS}
	# The routes are the test's: the far site's via the tunnel, then the
	# client's via its PPP link.
	install_routes = no
	plugins {{
		vici {{
			socket = unix://{C}/charon.vici
		}}
	}}
	filelog {{
		log {{
			path = {C}/charon.log
			default = 1
			ike = 2
			flush_line = yes
		}}
	}}
}}
"""

SWANCTL_CONF = f"""connections {{
	site {{
		version = 2
		local_addrs = {SITE_IP}
		remote_addrs = {ROUTER}
		proposals = aes128-sha256-modp2048
		local {{
			auth = psk
			id = {SITE_IP}
		}}
		remote {{
			auth = psk
			id = {ROUTER}
		}}
		children {{
			site {{
				local_ts = {SITE_NET}
				remote_ts = {VPC}
				esp_proposals = aes128-sha1-modp1536
			}}
		}}
	}}
	l2tp {{
		version = 1
		local_addrs = {ROAD_IP}
		remote_addrs = {ROUTER}
		# What Windows' own L2TP/IPsec client proposes.
		proposals = aes256-sha1-modp1024
		local {{
			auth = psk
			id = {ROAD_IP}
		}}
		remote {{
			auth = psk
			id = {ROUTER}
		}}
		children {{
			l2tp {{
				mode = transport
				local_ts = dynamic[udp/1701]
				remote_ts = dynamic[udp/1701]
				esp_proposals = aes128-sha1
			}}
		}}
	}}
}}
secrets {{
	ike-site {{
		id-1 = {SITE_IP}
		id-2 = {ROUTER}
		secret = {SITE_PSK}
	}}
	ike-l2tp {{
		id-1 = {ROAD_IP}
		id-2 = {ROUTER}
		secret = {RA_PSK}
	}}
}}
"""

XL2TPD_CONF = f"""[global]
listen-addr = {ROAD_IP}
port = 1701
force userspace = yes

[lac good]
lns = {ROUTER}
pppoptfile = {C}/options.good
length bit = yes

[lac bad]
lns = {ROUTER}
pppoptfile = {C}/options.bad
length bit = yes

[lac bob]
lns = {ROUTER}
pppoptfile = {C}/options.bob
length bit = yes
"""


def ppp_options(link: str, user: str, password: str) -> str:
    quoted = password.replace("\\", "\\\\").replace('"', '\\"')
    return (f'name {user}\npassword "{quoted}"\nnoauth\nrefuse-eap\nrefuse-pap\nnoccp\n'
            f"nodefaultroute\nipcp-accept-local\nipcp-accept-remote\nmtu 1410\nmru 1410\n"
            f"linkname {link}\nlogfile {C}/pppd-{link}.log\n")


@dataclass
class Pair:
    router: Vm
    client: Vm
    ctl: Segment
    pub: Segment
    tier: Segment
    key: Keypair


@pytest.fixture
def vms(systemvm_image: Path, prefix: str, tmp_path: Path,
        request: pytest.FixtureRequest) -> Iterator[Pair]:
    key = Keypair.create(tmp_path / "id_rsa.cloud")
    with Segments() as segs:
        ctl = segs.add(f"{prefix}ctl", ["169.254.0.1/16"])
        pub = segs.add(f"{prefix}pub", ["100.64.10.1/24"])
        tier = segs.add(f"{prefix}tier", [f"{TIER_HOST}/24"], gateway="10.10.1.1")
        router = Vm("r1", tmp_path / "r1", systemvm_image, prefix, key,
                    [Nic(ctl, "0e:00:a9:fe:00:0a"), Nic(pub, PUBLIC_MAC), Nic(tier, TIER_MAC)])
        client = Vm("c1", tmp_path / "c1", systemvm_image, prefix, key,
                    [Nic(ctl, "0e:00:a9:fe:00:14"), Nic(pub, "02:00:0a:00:00:1e")])
        try:
            yield Pair(router, client, ctl, pub, tier, key)
        finally:
            attach_serial_logs(request, [router, client])
            if request.node.stash.get(FAILED, False):
                _logs(router, client)
            router.close()
            client.close()


ROUTER_LOGS = ("agent.log", "charon.log", "xl2tpd.log", "pppd.log")


def _logs(router: Vm, client: Vm) -> None:
    """On a failure: the router's logs of the VPN, the client's own."""
    for vm, paths in ((router, [f"/var/log/vragent/{n}" for n in ROUTER_LOGS]),
                      (client, [f"{C}/charon.log", f"{C}/pppd-good.log", f"{C}/pppd-bad.log",
                                f"{C}/pppd-bob.log"])):
        for path in paths:
            if vm.running and vm.control_ip is not None:
                out = vm.ssh("tail", "-c", "6000", path, check=False, timeout=30)
                print(f"\n===== {vm.name}: {path} =====\n{out.stdout}{out.stderr}")


def _put(vm: Vm, workdir: Path, name: str, text: str, remote: str) -> None:
    local = workdir / name
    local.write_text(text)
    vm.scp(local, remote)


def _client_setup(p: Pair, workdir: Path) -> None:
    """The second VM as the far side: its own router agent out of the way, its
    addresses, the far site's network, charon and its connections."""
    c = p.client
    c.ssh("/opt/cloud/bin/get_template_version.sh")  # its boot done, then its agent stopped
    c.ssh("systemctl", "stop", "vragent.service")
    c.ssh("nft", "delete", "table", "inet", "vragent", check=False)
    c.ssh("mkdir", "-p", C)
    for addr in (SITE_IP, ROAD_IP):
        c.ssh("ip", "addr", "add", f"{addr}/24", "dev", "eth1")
    c.ssh("ip", "link", "set", "eth1", "up")
    c.ssh("ip", "link", "add", "site", "type", "dummy")
    c.ssh("ip", "addr", "add", f"{SITE_HOST}/24", "dev", "site")
    c.ssh("ip", "link", "set", "site", "up")
    c.ssh("ip", "route", "add", VPC, "via", ROUTER, "src", SITE_HOST)
    _put(c, workdir, "strongswan.conf", STRONGSWAN_CONF, f"{C}/strongswan.conf")
    _put(c, workdir, "swanctl.conf", SWANCTL_CONF, f"{C}/swanctl.conf")
    _put(c, workdir, "xl2tpd.conf", XL2TPD_CONF, f"{C}/xl2tpd.conf")
    for link, user, password in (("good", "alice", PASSWORD), ("bad", "alice", "not" + PASSWORD),
                                 ("bob", "bob", BOB_PASSWORD)):
        _put(c, workdir, f"options.{link}", ppp_options(link, user, password),
             f"{C}/options.{link}")
    c.scp(PEER_PY, f"{C}/peer.py")
    c.ssh("systemd-run", "--unit", "vt-charon", f"--setenv=STRONGSWAN_CONF={C}/strongswan.conf",
          "/usr/sbin/charon-systemd")
    wait_for(lambda: c.ssh("test", "-S", f"{C}/charon.vici", check=False).returncode == 0, 60,
             "the client's charon")
    c.ssh("swanctl", "--load-all", "--noprompt", "--file", f"{C}/swanctl.conf",
          "--uri", f"unix://{C}/charon.vici")


def _swanctl(vm: Vm, *args: str, uri: str = f"unix://{C}/charon.vici") -> str:
    return vm.ssh("swanctl", *args, "--uri", uri, check=False, timeout=120).stdout


def _esp_states(vm: Vm) -> list[dict[str, str]]:
    """The kernel's ESP SAs: (src, dst, mode, bytes) each."""
    text = vm.ssh("ip", "-s", "xfrm", "state").stdout
    out = []
    for block in re.split(r"\n(?=src )", text):
        head = re.match(r"src (\S+) dst (\S+)", block)
        proto = re.search(r"proto (\w+) spi \S+ reqid \S+ mode (\w+)", block)
        octets = re.search(r"(\d+)\(bytes\)", block)
        if head and proto:
            out.append({"src": head.group(1), "dst": head.group(2), "proto": proto.group(1),
                        "mode": proto.group(2), "bytes": octets.group(1) if octets else "0"})
    return out


def _ppp_address(vm: Vm, link: str) -> str:
    """The client's address on the PPP link pppd named ``link`` (none yet: "")."""
    ifname = vm.ssh("cat", f"/var/run/ppp-{link}.pid", check=False).stdout.split()
    if len(ifname) < 2:
        return ""
    shown = vm.ssh("ip", "-j", "addr", "show", "dev", ifname[1], check=False).stdout
    try:
        for a in json.loads(shown)[0].get("addr_info", []):
            if a.get("family") == "inet":
                return str(a["local"])
    except (ValueError, IndexError, KeyError):
        pass
    return ""


def _tcp_from(vm: Vm, source: str) -> str:
    """What the tier's server saw a connection from ``source`` (on the client) as."""
    return vm.ssh("python3", f"{C}/peer.py", "connect", "tcp", TIER_HOST, "22", "5", source,
                  check=False).stdout.strip()


def test_site_to_site_over_kernel_esp_and_an_l2tp_ipsec_client(vms: Pair,
                                                               tmp_path: Path) -> None:
    p = vms
    timings: dict[str, float] = {}
    started = time.monotonic()
    # Both VMs boot at once (one boot each: TCG is slow).
    p.router.start()
    p.client.start()
    p.router.write_cmdline(cmdline_text(boot_parameters(), p.key))
    client_params = {**boot_parameters(), "name": "c-2-VM", "eth0ip": CLIENT_CONTROL}
    p.client.write_cmdline(cmdline_text(client_params, p.key))
    timings["router ssh"] = p.router.wait_ssh(CONTROL_IP)
    timings["client ssh"] = p.client.wait_ssh(CLIENT_CONTROL)
    r = p.router
    r.ssh("/opt/cloud/bin/get_template_version.sh")  # waits for the boot to be done
    _client_setup(p, tmp_path)
    timings["both up and the client set"] = time.monotonic() - started

    t = time.monotonic()
    for name in BAGS:
        bag = json.loads((SAMPLE / name).read_text())
        assert r.apply_bag(bag, name.removesuffix(".json").replace("_", "")).returncode == 0
    applied = [r.apply_bag(site2sitevpn(), "site2sitevpn"),
               r.apply_bag(remoteaccessvpn(), "remoteaccessvpn"),
               r.apply_bag(vpnuserlist(("alice", PASSWORD, True), ("bob", BOB_PASSWORD, True)),
                           "vpnuserlist")]
    timings["bags applied"] = time.monotonic() - t
    assert all(a.returncode == 0 for a in applied), [a.stderr for a in applied]
    report = "".join(a.stdout + a.stderr for a in applied)

    # -- the kernel's data path -------------------------------------------------------------
    charon_log = "/var/log/vragent/charon.log"
    wait_for(lambda: "data path kernel" in r.ssh("cat", charon_log, check=False).stdout, 60,
             "charon to start on the kernel's ESP")
    # No TUN device of strongSwan's own data path.
    assert "ipsec0" not in r.ssh("ip", "-o", "link").stdout

    # -- (a) site to site over kernel ESP -------------------------------------------------
    t = time.monotonic()
    wait_for(lambda: "0:IPsec SA found" in r.ssh("/opt/cloud/bin/checkbatchs2svpn.sh",
                                                SITE_IP).stdout,
             120, "the site-to-site tunnel (checkbatchs2svpn.sh)")
    timings["tunnel up"] = time.monotonic() - t
    with server(p.tier.ns, 22):
        # A connection from the far site's network reaches the tier's host with
        # its own address: through the tunnel, kept out of source NAT.
        wait_for(lambda: _tcp_from(p.client, SITE_HOST) == SITE_HOST, 60,
                 "a connection across the tunnel")
    esp = [s for s in _esp_states(r) if s["proto"] == "esp" and SITE_IP in (s["src"], s["dst"])]
    assert {(s["src"], s["dst"], s["mode"]) for s in esp} >= {
        (ROUTER, SITE_IP, "tunnel"), (SITE_IP, ROUTER, "tunnel")}, esp
    assert all(int(s["bytes"]) > 0 for s in esp), esp

    # -- (b) L2TP/IPsec ------------------------------------------------------------------
    assert "vpn: L2TP/IPsec served" in report, report
    wait_for(lambda: r.ssh("pgrep", "-x", "xl2tpd", check=False).returncode == 0, 60,
             "xl2tpd to run")
    assert r.ssh("stat", "-c", "%a", "/etc/ppp/chap-secrets").stdout.strip() == "600"
    t = time.monotonic()
    out = _swanctl(p.client, "--initiate", "--child", "l2tp", "--timeout", "60")
    assert "initiate completed successfully" in out, out
    timings["L2TP's IPsec SA"] = time.monotonic() - t
    transport = [s for s in _esp_states(r) if ROAD_IP in (s["src"], s["dst"])]
    assert transport and all(s["mode"] == "transport" for s in transport), transport
    p.client.ssh("systemd-run", "--unit", "vt-xl2tpd", "/usr/sbin/xl2tpd", "-D", "-c",
                 f"{C}/xl2tpd.conf", "-p", f"{C}/xl2tpd.pid", "-C", f"{C}/l2tp-control")
    wait_for(lambda: p.client.ssh("test", "-p", f"{C}/l2tp-control",
                                  check=False).returncode == 0, 30, "the client's xl2tpd")

    # A wrong password: refused, no link.
    t = time.monotonic()
    p.client.ssh("sh", "-c", f"'echo \"c bad\" > {C}/l2tp-control'")
    wait_for(lambda: "authentication failed" in p.client.ssh(
        "cat", f"{C}/pppd-bad.log", check=False).stdout.lower(), 120,
        "the wrong password to be refused")
    timings["wrong password refused"] = time.monotonic() - t
    assert _ppp_address(p.client, "bad") == ""

    # The listed user with its password: an address from the L2TP half of ip_range.
    t = time.monotonic()
    p.client.ssh("sh", "-c", f"'echo \"c good\" > {C}/l2tp-control'")
    wait_for(lambda: _ppp_address(p.client, "good") != "", 120, "alice's PPP link")
    timings["L2TP connected"] = time.monotonic() - t
    address = _ppp_address(p.client, "good")
    first, last = (ipaddress.IPv4Address(a) for a in L2TP_POOL)
    assert first <= ipaddress.IPv4Address(address) <= last, address
    ifname = p.client.ssh("cat", "/var/run/ppp-good.pid").stdout.split()[1]
    p.client.ssh("ip", "route", "replace", VPC, "dev", ifname)
    # The tier's host answers the client, and sees its pool address.
    wait_for(lambda: p.client.ssh("ping", "-n", "-c", "1", "-W", "2", "-I", address, TIER_HOST,
                                  check=False).returncode == 0, 60, "a ping to the tier")
    with server(p.tier.ns, 22):
        assert _tcp_from(p.client, address) == address
    # The L2TP traffic went inside the transport-mode SA.
    transport = [s for s in _esp_states(r) if ROAD_IP in (s["src"], s["dst"])]
    assert all(int(s["bytes"]) > 0 for s in transport), transport

    # bob too; then removing alice hangs up exactly her session (found in
    # pppd's tdb), not bob's.
    p.client.ssh("sh", "-c", f"'echo \"c bob\" > {C}/l2tp-control'")
    wait_for(lambda: _ppp_address(p.client, "bob") != "", 120, "bob's PPP link")
    bob = _ppp_address(p.client, "bob")
    assert bob != address and first <= ipaddress.IPv4Address(bob) <= last, bob
    t = time.monotonic()
    removed = r.apply_bag(vpnuserlist(("alice", PASSWORD, False)), "vpnuserlist")
    assert removed.returncode == 0, removed.stderr
    wait_for(lambda: _ppp_address(p.client, "good") == "", 60, "alice's session to end")
    timings["session hung up"] = time.monotonic() - t
    assert _ppp_address(p.client, "bob") == bob
    # The site-to-site tunnel is untouched.
    assert "0:IPsec SA found" in r.ssh("/opt/cloud/bin/checkbatchs2svpn.sh", SITE_IP).stdout
    print("\nVPN in the system VM, timings (s): "
          + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
