"""The VPN's health check. Upstream has none (systemvm/debian/root/health_checks/):
the management server learns a tunnel's state only from checkbatchs2svpn.sh."""

from __future__ import annotations

from ...feature import Check, Outcome, failed, ok
from ...feature import CheckContext as Context


def vpn(ctx: Context) -> Outcome:
    from .stats import l2tp_status

    outcome = _site_to_site(ctx)
    # L2TP/IPsec that the kernel cannot carry is said, never failed: IKEv2
    # remote access is served.
    status = l2tp_status(ctx.settings)
    if status.get("configured") and not status.get("served"):
        return Outcome(outcome.success, f"{outcome.message}; L2TP/IPsec remote access not "
                                        f"served: {status.get('why')}")
    return outcome


def _site_to_site(ctx: Context) -> Outcome:
    from .stats import _index, _sas, peer_up

    conns = {n: c for n, c in _index(ctx.settings).get("conns", {}).items() if c.get("peer")}
    if not conns:
        return ok("No site-to-site VPN configured, skipping")
    sas = _sas(ctx.settings)
    if sas is None:
        return failed(f"charon is not answering: {len(conns)} site-to-site VPN(s) down")
    down = sorted(c["peer"] for n, c in conns.items()
                  if c.get("initiate") and not peer_up(sas, n, c.get("children", [])))
    if down:
        return failed(f"site-to-site VPN down: {', '.join(down)}")
    return ok(f"All {len(conns)} site-to-site VPN(s) up (or waiting for passive peers)")


CHECKS = (Check("vpn_check.py", "advanced", vpn),)
