"""Site-to-site tunnels and remote access with strongSwan (swanctl, vici).

Upstream (systemvm/debian/opt/cloud/bin/configure.py CsSite2SiteVpn,
CsRemoteAccessVpn, CsVpnUser) rewrites stroke ipsec.conf files and runs
``ipsec reload`` on every apply. Here one swanctl.conf holds every
connection, pool and secret, and ``vragent-ipsec sync`` (daemon.py) loads
it over vici and settles only the SAs of what changed.

Per peer (conn ``vpn-<peer>``, as upstream names it, dots made dashes:
swanctl section names cannot hold dots):

* ``ike_version`` ike|ikev1|ikev2 is swanctl's version 0|1|2;
* ``ike_policy``/``esp_policy`` ``cipher-hash[;modpN]`` lists become
  proposals with the group joined by '-' (upstream's ``.replace(';', '-')``);
  a group on ESP is PFS. Exactly those proposals: no defaults appended;
* lifetimes are seconds as sent (upstream floors them to whole hours, and
  writes "24.0h" under Python 3, which strongSwan rejects);
* ``dpd``: 30 s delay, 120 s timeout, restart (upstream's values);
  ``encap``: forced UDP encapsulation; ``passive``: respond only (upstream
  ignores it);
* several peer CIDRs: one CHILD_SA per CIDR with IKEv1, which negotiates one
  pair of traffic selectors per CHILD_SA (upstream #3138), or when
  ``split_connections`` asks; IKEv2 takes them all in one;
* a PSK per peer, bound to both identities, hex-encoded.

Remote access is IKEv2 with EAP-MSCHAPv2 against the user list, the router
authenticated by its own certificate (created once, kept in the state
directory), clients' addresses from ``ip_range``, and the VPC's networks
(``local_cidr``) as the only traffic selector: split routes.

Beside it, L2TP/IPsec, the client type CloudStack's own clients use
(configure.py CsRemoteAccessVpn and CsVpnUser; systemvm/debian/etc/ipsec.d/
l2tp.conf, xl2tpd/xl2tpd.conf, ppp/options.xl2tpd): an IKEv1 transport-mode
connection for udp/1701 with the bag's PSK, xl2tpd handing each call to
pppd, which checks the user against chap-secrets (the user list). It needs
ESP and PPP in the kernel; where either is missing, ``apply`` installs the
render without it (``without_l2tp``) and says why (its status file, the
health check, the metrics). When both are served they share ``ip_range``:
L2TP takes its first half, IKEv2 the rest; without L2TP, IKEv2 all of it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field, replace

from ... import templates
from ...config import RouterConfig
from ...feature import Daemon, Files
from ...settings import Settings
from ...store.store import atomic_write
from ...topology import Topology
from .daemon import (
    CERT,
    CONF,
    CONF_LIBIPSEC,
    INDEX,
    KEY,
    PPP_LOG,
    PPP_OPTIONS,
    SOCKET,
    SWANCTL,
    XL2TPD_CONF,
)
from .model import RemoteAccessVpn, Site2SiteVpn, VpnUser, policy

NAME = "vpn"
VERSIONS = {"ike": 0, "ikev1": 1, "ikev2": 2}
REMOTE = "remote-access"
L2TP = "L2TP-PSK"  # upstream's conn name
# "on" or "off": L2TP/IPsec served or not whatever the kernel has.
L2TP_ENV = "VRAGENT_L2TP"
CHAP_SECRETS = "chap-secrets"


@dataclass(frozen=True)
class Child:
    name: str
    local_ts: str
    remote_ts: str


@dataclass(frozen=True)
class Peer:
    name: str
    peer: str  # the bag's key: the peer's address, or "id-<identity>"
    ike_version: str
    version: int
    local: str
    remote: str  # address, or %any
    remote_id: str
    proposals: str
    esp_proposals: str
    ike_lifetime: int
    esp_lifetime: int
    dpd: bool
    encap: bool
    passive: bool
    children: tuple[Child, ...]
    cidrs: tuple[str, ...]
    local_cidr: str
    psk_hex: str = field(repr=False)


@dataclass(frozen=True)
class User:
    name: str  # its section name
    user: str
    password_hex: str = field(repr=False)


@dataclass(frozen=True)
class L2tp:
    """L2TP/IPsec: its swanctl connection, xl2tpd's LNS, pppd's options and secrets."""

    name: str  # the swanctl connection (upstream's conn L2TP-PSK)
    server: str  # where xl2tpd listens (the remote-access public IP)
    pool: str  # xl2tpd's "ip range": the first half of ip_range
    local: str  # xl2tpd's "local ip" (the bag's local_ip), the clients' DNS server
    options: str  # the ppp options file xl2tpd hands pppd
    log: str  # pppd's log file, a word as pppd reads it
    psk_hex: str = field(repr=False)
    # chap-secrets lines, one per user: words quoted as pppd reads them.
    secrets: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Remote:
    name: str
    server: str
    pool: str  # IKEv2's addresses
    local_ts: str
    cert: str
    key: str
    users: tuple[User, ...] = ()
    # The whole of ip_range ("first-last"): IKEv2's pool when L2TP is not served.
    range: str = ""
    l2tp: L2tp | None = None


@dataclass(frozen=True)
class Desired:
    enabled: bool
    router: str = ""
    root: str = ""
    socket: str = ""
    peers: tuple[Peer, ...] = ()
    remote: Remote | None = None
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def section(text: str) -> str:
    """A swanctl section name: no dots (swanctl splits on them)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)


def _hex(secret: str) -> str:
    return "0x" + secret.encode().hex()


def proposals(value: str, ike: bool) -> str:
    return ",".join("-".join(p for p in item if p) for item in policy(value, ike))


def _peer(v: Site2SiteVpn) -> Peer:
    name = section(f"vpn-{v.key}")
    cidrs = tuple(v.peer_cidrs())
    split = v.split_connections or (v.ike_version == "ikev1" and len(cidrs) > 1)
    if split:
        children = tuple(Child(name if i == 0 else f"{name}-{i + 1}", v.local_guest_cidr, c)
                         for i, c in enumerate(cidrs))
    else:
        children = (Child(name, v.local_guest_cidr, ",".join(cidrs)),)
    remote_id = v.peer_id or v.peer_gateway_ip
    return Peer(
        name=name, peer=v.key, ike_version=v.ike_version, version=VERSIONS[v.ike_version],
        local=v.local_public_ip, remote="%any" if v.any_address else v.peer_gateway_ip,
        remote_id=remote_id, proposals=proposals(v.ike_policy, ike=True),
        esp_proposals=proposals(v.esp_policy, ike=False), ike_lifetime=v.ike_lifetime,
        esp_lifetime=v.esp_lifetime, dpd=v.dpd, encap=v.encap,
        # A peer known by identity only cannot be called: it calls.
        passive=v.passive or v.any_address, children=children, cidrs=cidrs,
        local_cidr=v.local_guest_cidr, psk_hex=_hex(v.ipsec_psk))


def desired(cfg: RouterConfig, topo: Topology, settings: Settings) -> Desired:
    s2s, ra, users = cfg.part(NAME, ({}, {}, {}))
    own = {a.public_ip for p in topo.public for a in p.addresses}
    problems: list[str] = []
    warnings: list[str] = []
    peers: list[Peer] = []
    for key, v in sorted(s2s.items()):
        if v.local_public_ip not in own:
            # CsSite2SiteVpn: "Request for ipsec to <peer> not possible because
            # ip is not configured": kept, served once the address is here.
            warnings.append(f"site2sitevpn {key}: local_public_ip {v.local_public_ip} is not "
                            f"on this router: the tunnel waits for it")
            continue
        peer = _peer(v)
        clash = next((p for p in peers if p.name == peer.name), None)
        if clash is not None:
            # swanctl merges sections of one name: two peers would become one.
            problems.append(f"site2sitevpn {key} and {clash.peer} are both named {peer.name} "
                            f"(dots are dashes in swanctl): rename one")
            continue
        peers.append(peer)
    remote = None
    server = next(iter(sorted(ra.values(), key=lambda r: r.vpn_server_ip)), None)
    if server is not None:
        tiers = [ipaddress.IPv4Network(str(g.network)) for g in topo.guests]
        remote, found = _remote(server, users, peers, own, tiers, settings)
        problems += found
    if not peers and remote is None:
        return Desired(enabled=False, problems=tuple(problems), warnings=tuple(warnings))
    return Desired(enabled=True, router=cfg.cmdline.get("name", "router"),
                   root=str(settings.root), socket=str(SOCKET.of(settings)),
                   peers=tuple(peers), remote=remote, problems=tuple(problems),
                   warnings=tuple(warnings))


def _remote(v: RemoteAccessVpn, users: dict[str, VpnUser], peers: list[Peer], own: set[str],
            tiers: list[ipaddress.IPv4Network],
            settings: Settings) -> tuple[Remote | None, list[str]]:
    problems = []
    if v.ip_range is None or v.local_cidr is None:
        return None, [f"remoteaccessvpn {v.vpn_server_ip}: ip_range and local_cidr are needed"]
    first, last = v.addresses()
    pool = [ipaddress.IPv4Network(n) for n in
            ipaddress.summarize_address_range(first, last)]
    for p in peers:
        for cidr in p.cidrs:
            net = ipaddress.IPv4Network(cidr, strict=False)
            if any(net.overlaps(n) for n in pool):
                # The tunnel's policy would capture the clients' traffic (upstream #9707).
                problems.append(f"remoteaccessvpn: ip_range {v.ip_range} overlaps site2sitevpn "
                                f"{p.peer}'s peer_guest_cidr_list {cidr}")
    local = ipaddress.IPv4Network(v.local_cidr, strict=False)
    for tier in tiers:
        if any(tier.overlaps(n) for n in pool):
            # Addresses a tier's VMs hold or may get.
            problems.append(f"remoteaccessvpn: ip_range {v.ip_range} overlaps the tier "
                            f"{tier}")
    if v.vpn_server_ip not in own:
        problems.append(f"remoteaccessvpn: vpn_server_ip {v.vpn_server_ip} is not a public IP "
                        f"of this router")
    listed = sorted(users.values(), key=lambda u: u.user)
    whole = f"{first}-{last}"
    l2tp = None
    count = int(last) - int(first) + 1
    if v.preshared_key and v.local_ip:
        if first <= ipaddress.IPv4Address(v.local_ip) <= last:
            # xl2tpd would hand a client the router's own end of the link.
            problems.append(f"remoteaccessvpn: local_ip {v.local_ip} is inside ip_range "
                            f"{v.ip_range}")
        elif count >= 2:
            split = first + count // 2
            l2tp = L2tp(
                name=L2TP, server=v.vpn_server_ip, pool=f"{first}-{split - 1}",
                local=v.local_ip, options=str(PPP_OPTIONS.of(settings)),
                log=_chap(str(PPP_LOG.of(settings))), psk_hex=_hex(v.preshared_key),
                secrets=tuple(f"{_chap(u.user)} * {_chap(u.password)} *" for u in listed))
            first = split
    remote = Remote(
        name=REMOTE, server=v.vpn_server_ip, pool=f"{first}-{last}",
        local_ts=str(local), cert=str(CERT.of(settings)), key=str(KEY.of(settings)),
        users=tuple(User(section(f"{i}-{u.user}"), u.user, _hex(u.password))
                    for i, u in enumerate(listed)),
        range=whole, l2tp=l2tp)
    return remote, problems


def _chap(word: str) -> str:
    """A word of pppd's chap-secrets: quoted, with its quote and backslash
    escaped (pppd's options.c getword; control characters and a leading '@'
    never get here: model.py refuses them)."""
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def without_l2tp(d: Desired) -> Desired:
    """The same, without L2TP/IPsec: what a kernel without ESP or PPP gets
    (IKEv2 then takes all of ip_range)."""
    r = d.remote
    if r is None or r.l2tp is None:
        return d
    return replace(d, remote=replace(r, l2tp=None, pool=r.range))


def verify(d: Desired) -> list[str]:
    return list(d.problems)


def _digest(obj: object) -> str:
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


def index(d: Desired) -> str:
    """What sync compares with the last run: each connection (and whether
    the router calls it), each user, by digest."""
    conns = {p.name: {"digest": _digest((p, p.psk_hex)), "initiate": not p.passive, "peer": p.peer,
                      "children": [c.name for c in p.children]} for p in d.peers}
    if d.remote is not None:
        r = d.remote
        conns[r.name] = {"digest": _digest((r.server, r.pool, r.local_ts)),
                         "initiate": False, "peer": "", "children": [r.name]}
        if r.l2tp is not None:
            conns[r.l2tp.name] = {"digest": _digest((r.l2tp.server, r.l2tp.psk_hex)),
                                  "initiate": False, "peer": "", "children": [r.l2tp.name]}
    users = {u.user: _digest((u.user, u.password_hex)) for u in (d.remote.users if d.remote
                                                                else ())}
    return json.dumps({"conns": conns, "users": users}, indent=1, sort_keys=True) + "\n"


NAMES = (CONF.name, CONF_LIBIPSEC.name, SWANCTL.name, INDEX.name, XL2TPD_CONF.name,
         PPP_OPTIONS.name, CHAP_SECRETS)


def render(d: Desired) -> Files:
    if not d.enabled:
        return Files(tuple((n, "") for n in NAMES))
    files = [
        (CONF.name, templates.render("vpn/strongswan.conf.j2", d=d, libipsec=False)),
        (CONF_LIBIPSEC.name, templates.render("vpn/strongswan.conf.j2", d=d, libipsec=True)),
        (SWANCTL.name, templates.render("vpn/swanctl.conf.j2", d=d)),
        (INDEX.name, index(d)),
    ]
    l2tp = d.remote.l2tp if d.remote is not None else None
    for name, template in ((XL2TPD_CONF.name, "vpn/xl2tpd.conf.j2"),
                           (PPP_OPTIONS.name, "vpn/options.xl2tpd.j2"),
                           (CHAP_SECRETS, "vpn/chap-secrets.j2")):
        files.append((name, templates.render(template, d=d, l2tp=l2tp) if l2tp else ""))
    return Files(tuple(files))


def _of(files: Files, daemon: Daemon) -> Files:
    """The files of one of the feature's daemons."""
    names = {f.path.name for f in daemon.files}
    return Files(tuple((n, body) for n, body in files.files if n in names))


def l2tp_status(d: Desired, why: str) -> dict[str, object]:
    """What the status file says: whether L2TP/IPsec is configured, served, and why not."""
    configured = d.remote is not None and d.remote.l2tp is not None
    return {"configured": configured, "served": configured and not why,
            "why": why if configured else ""}


def apply(d: Desired, rendered: Files, settings: Settings, dry_run: bool = False) -> list[str]:
    from ...system import charon, daemons
    from . import daemon

    changes = []
    if d.remote is not None:
        # The router's identity for remote access: created once, then kept.
        changes += [f"{NAME}: {c}" for c in charon.ensure_identity(
            CERT.of(settings), KEY.of(settings), d.remote.server, dry_run)]
    why = ""
    if d.remote is not None and d.remote.l2tp is not None:
        why = _l2tp_unavailable()
        if why:
            # Never a failure: IKEv2 is served, L2TP is not, and the status says why.
            rendered = render(without_l2tp(d))
    status = l2tp_status(d, why)
    for one in daemon.daemons(settings):
        changes += daemons.sync_rendered(one, _of(rendered, one), settings, dry_run)
    path = daemon.L2TP_STATUS.of(settings)
    text = json.dumps(status, sort_keys=True) + "\n"
    if (path.read_text() if path.exists() else "") != text:
        if status["configured"]:
            changes.append(f"{NAME}: L2TP/IPsec " + (
                "served" if status["served"] else f"not served: {why}"))
        if not dry_run:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, text.encode(), 0o644)
    return changes


_KERNEL: dict[str, str] = {}


def _l2tp_unavailable() -> str:
    """Why this kernel cannot serve L2TP/IPsec ("" when it can). A kernel
    that can is asked once per process (its ESP and PPP do not go away); one
    that cannot, at every apply (a probe can fail for a passing reason).
    ``$VRAGENT_L2TP`` overrides: "on" serves it whatever the kernel, "off"
    never."""
    from ...system import charon, xl2tpd
    from .service import DATAPATH

    forced = os.environ.get(L2TP_ENV, "")
    if forced == "on":
        return ""
    if forced == "off":
        return f"turned off ({L2TP_ENV}=off)"
    if _KERNEL.get("why") != "":
        libipsec = os.environ.get(DATAPATH) == "libipsec"
        _KERNEL["why"] = xl2tpd.unavailable(esp=not libipsec and charon.esp_in_kernel())
    return _KERNEL["why"]
