"""The vrrp feature: keepalived elects the pair's master on the VRRP link and
moves the shared addresses; with ``sync_bfd`` a BFD session to the peer
detects its death fast (see ha/fast.py)."""

from __future__ import annotations

from typing import Any

from ...feature import Election, Feature, Opening, OwnSource, Takeover, Traffic
from . import resign, subsystem

VRRP_PROTO = resign.VRRP
# BFD control packets from the peer (RFC 5881: single hop).
BFD_PORT = 3784


def traffic(cfg: Any, settings: Any, d: subsystem.Desired) -> Traffic:
    # The adverts, on the VRRP link only; they keep their own source.
    accept = [Opening("vrrp", VRRP_PROTO, pair=True)]
    if d.enabled and d.bfd is not None:
        accept.append(Opening("sync", "udp", (BFD_PORT,), saddr=d.bfd.peer, pair=True))
    return Traffic(accept=tuple(accept), own_source=(OwnSource("vrrp", VRRP_PROTO),))


def election(cfg: Any, topo: Any, settings: Any) -> Election | None:
    """What the pair's run time needs: where the adverts go, what the master
    announces, and how to take over at once when BFD finds the master dead."""
    d = subsystem.desired(cfg, topo, settings)
    if not d.enabled:
        return None
    vip = d.vip.split("/")[0]
    # Gratuitous ARP for the IPv4 ones; keepalived itself sends the IPv6 ones'
    # unsolicited neighbour advertisements.
    announce = [(addr.split("/")[0], dev) for addr, dev in d.excluded if ":" not in addr]
    if d.mcast_src_ip:
        # The advert address is a shared one too (CloudStack mode: the source-NAT IP).
        announce.append((vip, d.interface))
    takeover = None
    if d.bfd is not None and cfg.ha is not None and d.src_ip:
        peer = resign.Peer(dev=d.interface, peer=d.bfd.peer, local=d.src_ip, vrid=d.vrid,
                           vip=vip, advert_cs=round(cfg.ha.advert_int * 100))
        takeover = Takeover(dev=d.interface, peer=d.bfd.peer,
                            resignation=resign.resignation(peer),
                            down_priority=resign.down_priority(cfg.ha.priority),
                            boosted_priority=resign.BOOSTED)
    # CloudStack mode: the backup's public NIC (the advert link) holds nothing
    # of its own, not even an IPv6 link-local address (see features/sysctl).
    unsourced = (d.interface,) if d.mcast_src_ip else ()
    return Election(interface=d.interface, vip=vip, announce=tuple(announce), takeover=takeover,
                    unsourced=unsourced)


FEATURE = Feature(name=subsystem.NAME, subsystem=subsystem, traffic=traffic,
                  election=election)
