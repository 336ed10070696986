"""A typed view of the whole stored configuration, as the reconcilers read it."""

from __future__ import annotations

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
        return self.cmdline.flag("redundant_router")
