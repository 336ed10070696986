"""The vpn feature: site-to-site tunnels and remote access with strongSwan,
from the ``site2sitevpn``, ``remoteaccessvpn`` and ``vpnuserlist`` bags
(cs_site2sitevpn.py, cs_remoteaccessvpn.py, cs_vpnusers.py).

Merge rules, as upstream's but without its two faults: a peer is filed by
its address (``peer_gateway_ip``; by identity for a peer known by ``peer_id``
only), and ``create: false`` removes it whether stored or not (upstream
stores an unknown one, then configures it); remote access by
``vpn_server_ip``; users by name, where a user re-sent with a new password
gets it (upstream keeps the old one) and ``add: false`` removes the user.

Netfilter (the traffic declared here): IKE and NAT-T (UDP 500, 4500) and
ESP to the local public IP from each configured peer only (from any address
for a peer known by identity, and for remote access); L2TP (UDP 1701) to the
remote-access IP, only out of an IPsec SA; the peers' CIDRs and
the remote-access pool (both kinds of client) forwarded to and from the VPC, after the tiers' ACLs
(CsSite2SiteVpn relies on the ACL chains the same way); and that traffic
kept out of source NAT (upstream marks it 0x525 and accepts it in nat
POSTROUTING).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ...feature import BagType, Between, Docs, Feature, Opening, Traffic, raw
from ...models.limits import REDACTED
from . import stats, subsystem
from .model import RemoteAccessVpn, Site2SiteVpn, VpnUser, VpnUserList

IKE_PORTS = (500, 4500)
ESP = 50
L2TP_PORT = 1701


def view(docs: Docs, v: Any) -> tuple[dict[str, Site2SiteVpn], dict[str, RemoteAccessVpn],
                                      dict[str, VpnUser]]:
    return ({k: v(Site2SiteVpn, d) for k, d in sorted(docs.get("site2sitevpn", {}).items())},
            {k: v(RemoteAccessVpn, d) for k, d in
             sorted(docs.get("remoteaccessvpn", {}).items())},
            {k: v(VpnUser, d) for k, d in sorted(docs.get("vpnuserlist", {}).items())})


def merge_site2sitevpn(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    assert isinstance(bag, Site2SiteVpn)
    peers = dict(docs.get("site2sitevpn", {}))
    if bag.create:
        peers[bag.key] = raw(bag)
    else:
        peers.pop(bag.key, None)
    return {**docs, "site2sitevpn": peers}


def merge_remoteaccessvpn(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    assert isinstance(bag, RemoteAccessVpn)
    servers = dict(docs.get("remoteaccessvpn", {}))
    if bag.create:
        servers[bag.vpn_server_ip] = raw(bag)
    else:
        servers.pop(bag.vpn_server_ip, None)
    return {**docs, "remoteaccessvpn": servers}


def merge_vpnuserlist(docs: Docs, bag: BaseModel, sent: Any = None) -> Docs:
    assert isinstance(bag, VpnUserList)
    users = dict(docs.get("vpnuserlist", {}))
    for u in bag.vpn_users:
        if u.add:
            users[u.user] = raw(u)
        else:
            users.pop(u.user, None)
    return {**docs, "vpnuserlist": users}


def _redact(field: str) -> Any:
    def redact(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: {**v, field: REDACTED} if isinstance(v, dict) and field in v else v
                for k, v in doc.items()}
    return redact


def traffic(cfg: Any, settings: Any, d: Any) -> Traffic:
    if d is None or not d.enabled:
        return Traffic()
    accept: list[Opening] = []
    forward: list[Between] = []
    exempt: list[Between] = []
    for p in d.peers:
        source = "" if p.remote == "%any" else p.remote
        accept += [Opening("public", "udp", IKE_PORTS, saddr=source, daddr=p.local),
                   Opening("public", ESP, saddr=source, daddr=p.local)]
        forward += [Between((p.local_cidr,), p.cidrs), Between(p.cidrs, (p.local_cidr,))]
        exempt.append(Between((p.local_cidr,), p.cidrs))
    if d.remote is not None:
        r = d.remote
        # Both kinds of client: the whole of ip_range (L2TP takes part of it).
        pool = tuple(str(n) for n in stats.pool_networks(r.range))
        accept += [Opening("public", "udp", IKE_PORTS, daddr=r.server),
                   Opening("public", ESP, daddr=r.server)]
        if r.l2tp is not None:
            # L2TP only out of its IPsec SA: upstream opens udp/1701 to anyone,
            # which serves L2TP (and its CHAP) in the clear.
            accept.append(Opening("public", "udp", (L2TP_PORT,), daddr=r.server, ipsec=True))
        forward += [Between(pool, (r.local_ts,)), Between((r.local_ts,), pool)]
        exempt.append(Between((r.local_ts,), pool))
    return Traffic(accept=tuple(accept), forward=tuple(forward), nat_exempt=tuple(exempt))


FEATURE = Feature(
    name=subsystem.NAME,
    bags=(
        BagType("site2sitevpn", Site2SiteVpn, merge_site2sitevpn,
                secret_fields=frozenset({"ipsec_psk"}), redact=_redact("ipsec_psk")),
        BagType("remoteaccessvpn", RemoteAccessVpn, merge_remoteaccessvpn,
                secret_fields=frozenset({"preshared_key"}), redact=_redact("preshared_key")),
        BagType("vpnuserlist", VpnUserList, merge_vpnuserlist,
                secret_fields=frozenset({"password"}), redact=_redact("password")),
    ),
    view=view,
    subsystem=subsystem,
    traffic=traffic,
    metrics=stats.metrics,
)
