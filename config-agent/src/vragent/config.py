"""A typed view of the whole stored configuration, as the reconcilers read it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .errors import StoreError
from .models import (
    CmdLine,
    FirewallRule,
    ForwardRule,
    GuestNetwork,
    IpAddress,
    NetworkAcl,
    StaticNatRule,
    StaticRoute,
    describe_errors,
)


@dataclass(frozen=True)
class RouterConfig:
    cmdline: CmdLine
    ips: dict[str, list[IpAddress]] = field(default_factory=dict)
    guests: dict[str, GuestNetwork] = field(default_factory=dict)
    acls: dict[str, NetworkAcl] = field(default_factory=dict)
    firewall: list[FirewallRule] = field(default_factory=list)
    forwards: list[ForwardRule] = field(default_factory=list)
    staticnat: list[StaticNatRule] = field(default_factory=list)
    routes: list[StaticRoute] = field(default_factory=list)

    @classmethod
    def from_docs(cls, docs: dict[str, dict[str, Any]]) -> RouterConfig:
        try:
            cmd = docs.get("cmdline", {}).get("config", {})
            return cls(
                cmdline=CmdLine.model_validate({"type": "cmdline", "cmd_line": cmd}),
                ips={
                    dev: [IpAddress.model_validate(a) for a in addrs]
                    for dev, addrs in sorted(docs.get("ips", {}).items())
                },
                guests={
                    dev: GuestNetwork.model_validate(g)
                    for dev, g in sorted(docs.get("guestnetwork", {}).items())
                },
                acls={
                    dev: NetworkAcl.model_validate(a)
                    for dev, a in sorted(docs.get("networkacl", {}).items())
                },
                firewall=[
                    FirewallRule.model_validate(r)
                    for _, r in sorted(
                        docs.get("firewallrules", {}).get("rules", {}).items(),
                        key=lambda kv: int(kv[0]),
                    )
                ],
                forwards=[
                    ForwardRule.model_validate(r)
                    for _, rules in sorted(docs.get("forwardrules", {}).items())
                    for r in rules
                ],
                staticnat=[
                    StaticNatRule.model_validate(r)
                    for _, r in sorted(docs.get("staticnatrules", {}).items())
                ],
                routes=[
                    StaticRoute.model_validate(r)
                    for _, r in sorted(docs.get("staticroutes", {}).items())
                ],
            )
        except ValidationError as exc:
            # Only reachable if the state directory was edited by hand.
            problems = "; ".join(describe_errors(exc))
            raise StoreError(f"stored configuration is invalid: {problems}") from None

    @property
    def redundant(self) -> bool:
        """Part of a pair: asked for, and given a link to run VRRP on.

        Without a sync link the router runs standalone and owns its addresses
        itself (see ``ha_problem``), rather than waiting for a guest tier.
        """
        return self.ha is not None

    @property
    def ha(self) -> HaParams | None:
        return HaParams.from_cmdline(self.cmdline)

    @property
    def ha_problem(self) -> str | None:
        """Why a router asked to be redundant runs standalone, if it does."""
        if not self.cmdline.flag("redundant_router") or self.ha is not None:
            return None
        dev = self.cmdline.get("sync_dev")
        if not dev:
            return ("redundant_router=1 but the boot parameters name no sync link (sync_dev): "
                    "running standalone")
        return (f"sync_dev={dev}: the boot parameters give no address for it "
                f"({dev}ip/{dev}mask): running standalone")


@dataclass(frozen=True)
class HaParams:
    """What the pair is configured with, from the boot parameters.

    VRRP and conntrackd run on ``sync_dev``, a link that exists from the first
    boot, so the pair is redundant before any guest tier arrives.
    """

    name: str
    vrid: int
    priority: int
    advert_int: float
    version: int
    password: str
    sync_dev: str
    sync_ip: str
    sync_prefix: int
    peer: str | None  # unicast peer; None means multicast
    vip: str  # carried in every advert; never changes while tiers come and go
    report_url: str | None

    @classmethod
    def from_cmdline(cls, cmd: CmdLine) -> HaParams | None:
        if not cmd.flag("redundant_router"):
            return None
        dev = cmd.get("sync_dev")
        addr = cmd.interfaces().get(dev) if dev else None
        if addr is None:
            return None
        ip, mask = addr
        net = ipaddress.IPv4Network(f"{ip}/{mask}", strict=False)
        advert_int = float(cmd.get("advert_int", "1") or "1")
        # Sub-second adverts exist only in VRRPv3; v2 keeps its password auth.
        version = int(cmd.get("vrrp_version", "3"))
        return cls(
            name=cmd.get("name", "router"),
            vrid=int(cmd.get("router_id", "1") or "1"),
            priority=int(cmd.get("router_pr", "100") or "100"),
            advert_int=advert_int,
            version=version,
            password=cmd.get("router_password"),
            sync_dev=dev,
            sync_ip=ip,
            sync_prefix=net.prefixlen,
            peer=cmd.get("sync_peer") or None,
            vip=cmd.get("sync_vip") or str(net.broadcast_address - 1),
            report_url=cmd.get("report_url") or None,
        )
