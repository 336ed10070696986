"""CloudStack's ``vpc_netusage.sh`` and ``netusage.sh``, installed in
/opt/cloud/bin where the management server calls them (over ssh to port
3922, VirtualRoutingResource.executeInVR, or the KVM host's router_proxy.sh;
VRScripts.VPC_NETUSAGE; NetworkUsageCommand's options create, get, reset, vpn
and remove).

``vpc_netusage.sh -l <public ip>`` (systemvm/debian/opt/cloud/bin/vpc_netusage.sh):

- ``-g``: ``<sent>:<received>:``, the bytes forwarded between the tiers and
  the public link that holds the IP since the counters were last reset;
  nothing when no public link holds it (upstream: nothing either). Exit 0.
- ``-n``: the same for traffic into and out of VPN tunnels, answered for an
  address of the source-NAT link (upstream's ``-n`` is commented out and
  prints nothing; the management server does not ask it today).
- ``-r``: resets the link's counters; exit 1 when no public link holds the
  IP (upstream: ``iptables -Z`` of a chain that does not exist).
- ``-c [-v <vpc cidr>]``: remembers the IP (and the VPC's CIDR) as one the
  management server accounts, in the state directory (crash-safe); the
  counters themselves exist for every public link from the start, as
  upstream's configure.py makes its chains (its ``-c`` is a no-op now).
- ``-d``: forgets it; the counters stay, they belong to the link.

``netusage.sh`` (an isolated router's; netusage.sh): ``-g`` answers every
public link, ``<sent>:<received>:<own sent>:<own received>:`` each (the
router's own TCP on the link counts, as upstream's NETWORK_STATS has it),
or the one link that holds ``-l <ip>``; ``-r`` resets them; ``-c``, ``-a``
and ``-d <interface>`` are accepted and do nothing, as upstream's.

Bad arguments: the usage line and why on stderr, exit 2, nothing read or
changed. A failure to read or reset: the reason on stderr, exit 1.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ...errors import VragentError
from ...settings import Settings
from .report import ISOLATED, USAGE, USAGE_EXIT, VPC, Request, UsageError, parse

if TYPE_CHECKING:
    from ...topology import Topology


def vpc_netusage(argv: list[str] | None = None) -> int:
    return main(VPC, sys.argv[1:] if argv is None else argv)


def netusage(argv: list[str] | None = None) -> int:
    return main(ISOLATED, sys.argv[1:] if argv is None else argv)


def main(script: str, argv: list[str]) -> int:
    try:
        request = parse(script, argv)
    except UsageError as exc:
        print(f"{script}: {exc}\n{USAGE[script]}", file=sys.stderr)
        return USAGE_EXIT
    try:
        out = run(request, Settings.from_env())
    except (VragentError, OSError) as exc:
        print(f"{script}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(out)
    sys.stdout.flush()
    return 0


def _topology(settings: Settings) -> Topology:
    """The public links as the stored configuration has them, resolved to the
    links present (by MAC, as the agent does). Only the box's part is read:
    no feature's view is needed, nor imported."""
    from ... import box
    from ...config import Memo, RouterConfig
    from ...store import Store
    from ...system import iproute
    from ...topology import resolve

    keys = tuple(bt.store_key for bt in box.BAGS)
    cfg = RouterConfig(**box.view(Store(settings).load(types=keys), Memo().validate))
    return resolve(cfg, iproute.links())


def run(request: Request, settings: Settings) -> str:
    """What the script prints for ``request`` (an error raises)."""
    from ...errors import ApplyError
    from ...system import nft
    from . import state
    from .report import answer, counted, created_after

    if request.action in ("create", "remove"):
        if request.script == VPC:
            state.update(settings, lambda created: created_after(created, request))
        return ""
    if request.action in ("none", "add_vif", "delete_vif"):
        return ""
    names = counted(request, _topology(settings))
    if request.action == "reset":
        if names is None:
            if request.script == ISOLATED and not request.ip:
                return ""  # no public link yet: nothing to zero
            raise ApplyError(f"no public link holds {request.ip}: nothing was reset")
        with nft.counters_locked(settings.run_dir):
            nft.reset_counters(settings.nft_table, names)
        return ""
    if names is None:
        return ""
    counts = nft.counters(settings.nft_table) or {}
    if any(n not in counts for n in names):
        return ""  # not counted (yet): the table is not loaded, as a chain upstream lacks
    return answer([counts[n][1] for n in names])
