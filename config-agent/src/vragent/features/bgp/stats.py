"""The peers' sessions on the metrics endpoint and in the router's log.

A session that never establishes is what a wrong password looks like: with
TCP-MD5 (RFC 2385) the kernel drops every segment whose signature does not
verify, so bgpd sees no error, only a peer that never answers. That cannot
be told apart from a peer that is down, so the error says both ("password
mismatch or peer unreachable"), and the kernel's own TCP-MD5 counters of the
router's namespace (TCPMD5Failure: a signature that does not verify;
TCPMD5NotFound: a peer sending none where a key is set; TCPMD5Unexpected: a
signature where none is set) are given beside it: when they grow, the
password is the cause. Each change of a peer's state or error is logged
once (``event="bgp"``), read from bgpd when the endpoint is scraped.
"""

from __future__ import annotations

import threading
from typing import Any

from ...feature import Metric
from ...log import log
from ...settings import Settings

ESTABLISHED = "Established"
_seen: dict[str, tuple[str, str]] = {}  # peer -> (state, error) last logged
_lock = threading.Lock()


def peer_error(n: dict[str, Any], has_password: bool, md5: dict[str, int]) -> str:
    """Why a session is not up ("" when it is)."""
    if n.get("bgpState") == ESTABLISHED:
        return ""
    if int(n.get("connectionsEstablished") or 0) == 0:
        if has_password:
            bad = md5.get("TCPMD5Failure", 0) + md5.get("TCPMD5NotFound", 0) + \
                md5.get("TCPMD5Unexpected", 0)
            # The count is on its own metric: a label that changed with it
            # would make a new series (and a log record) at every drop.
            return ("never established: password mismatch or peer unreachable"
                    + (" (the kernel drops TCP-MD5 segments)" if bad else ""))
        return "never established: peer unreachable or refusing"
    why = str(n.get("lastResetDueTo") or "")
    return f"down: {why}" if why else "down"


def _configured(settings: Settings) -> dict[str, bool]:
    """Peer address -> has a password, from frr.conf (what bgpd was given)."""
    from .daemon import FRR_CONF

    try:
        text = FRR_CONF.of(settings).read_text()
    except OSError:
        return {}
    peers: dict[str, bool] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 4 and words[0] == "neighbor" and words[2] == "remote-as":
            peers.setdefault(words[1], False)
        if len(words) >= 4 and words[0] == "neighbor" and words[2] == "password":
            peers[words[1]] = True
    return peers


def metrics(settings: Settings) -> list[Metric]:
    from ...system import frr
    from .daemon import BGPD, CONF_DIR, RUN_DIR

    peers = _configured(settings)
    if not peers:
        return []
    live = frr.neighbors(CONF_DIR.of(settings), RUN_DIR.of(settings), BGPD)
    md5 = frr.md5_counters()
    up: list[tuple[tuple[str, ...], float]] = []
    state: list[tuple[tuple[str, ...], float]] = []
    established: list[tuple[tuple[str, ...], float]] = []
    errors: list[tuple[tuple[str, ...], float]] = []
    for peer, has_password in sorted(peers.items()):
        n = live.get(peer, {})
        st = str(n.get("bgpState") or "bgpd not answering")
        err = peer_error(n, has_password, md5) if n else "bgpd not answering"
        up.append(((peer,), 1.0 if st == ESTABLISHED else 0.0))
        state.append(((peer, st), 1.0))
        established.append(((peer,), float(n.get("connectionsEstablished") or 0)))
        errors.append(((peer, err), 1.0 if err else 0.0))
        with _lock:
            if _seen.get(peer) != (st, err):
                _seen[peer] = (st, err)
                if err:
                    log(f"BGP peer {peer}: {err}", event="bgp", peer=peer, state=st, error=err)
                else:
                    log(f"BGP peer {peer}: {st}", event="bgp", peer=peer, state=st)
    return [
        Metric("vragent_bgp_peer_up", "1 while the BGP session with the peer is established",
               "gauge", ("peer",), tuple(up)),
        Metric("vragent_bgp_peer_state", "The BGP session's state (bgpd's FSM)", "gauge",
               ("peer", "state"), tuple(state)),
        Metric("vragent_bgp_peer_established_total",
               "Times the session with the peer was established", "counter", ("peer",),
               tuple(established)),
        Metric("vragent_bgp_peer_error", "Why the session is not up (the last error)", "gauge",
               ("peer", "error"), tuple(errors)),
        Metric("vragent_bgp_tcp_md5_segments_total",
               "The router's TCP-MD5 drops (kernel TcpExt counters)", "counter", ("counter",),
               tuple(((k,), float(v)) for k, v in md5.items())),
    ]
