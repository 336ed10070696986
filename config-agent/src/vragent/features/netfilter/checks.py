"""The netfilter feature's health checks: upstream's iptables_check.py (port
forwarding against the live table) and this router's own: the live table is
what the agent last applied."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...feature import Check, Outcome, failed, ok
from ...feature import CheckContext as Context
from ...system import nft


def format_port(first: str, last: str, delim: str = "-") -> str:
    """utility/sharedFunctions.py formatPort."""
    return first if first == last else f"{first}{delim}{last}"


@dataclass(frozen=True)
class Dnat:
    """One destination NAT rule of the live table."""

    daddr: str
    ports: tuple[int, int]  # the public (destination) ports it matches
    to: str
    to_ports: tuple[int, int] | None  # None: the port is kept


def _port_range(value: Any) -> tuple[int, int] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, dict):
        bounds = value.get("range")
        if (isinstance(bounds, list) and len(bounds) == 2
                and all(isinstance(b, int) for b in bounds)):
            return bounds[0], bounds[1]
    return None


def dnat_rules(items: list[dict[str, Any]]) -> list[Dnat]:
    """The port-matching DNAT rules of an ``nft -j`` listing, in any chain
    (subsystems/netfilter.py _forward_dnat renders them: one rule for a range
    forwarded as is, one per port when the ports change)."""
    found = []
    for item in items:
        rule = item.get("rule")
        if not isinstance(rule, dict):
            continue
        daddr: str | None = None
        ports: tuple[int, int] | None = None
        to: str | None = None
        to_ports: tuple[int, int] | None = None
        for expr in rule.get("expr", []):
            match = expr.get("match") if isinstance(expr, dict) else None
            if isinstance(match, dict) and match.get("op") == "==":
                left = match.get("left")
                payload = left.get("payload", {}) if isinstance(left, dict) else {}
                if payload.get("protocol") == "ip" and payload.get("field") == "daddr" \
                        and isinstance(match.get("right"), str):
                    daddr = match["right"]
                elif payload.get("field") == "dport":
                    ports = _port_range(match.get("right"))
            target = expr.get("dnat") if isinstance(expr, dict) else None
            if isinstance(target, dict) and isinstance(target.get("addr"), str):
                to = target["addr"]
                to_ports = _port_range(target["port"]) if "port" in target else None
        if daddr is not None and ports is not None and to is not None:
            found.append(Dnat(daddr, ports, to, to_ports))
    return found


def _forwarded(rules: list[Dnat], record: dict[str, str]) -> bool:
    """Every public port of the record reaches the VM's matching port."""
    first, last = int(record["sourcePortStart"]), int(record["sourcePortEnd"])
    offset = int(record["destPortStart"]) - first
    covered: set[int] = set()
    for r in rules:
        if r.daddr != record["sourceIp"] or r.to != record["destIp"]:
            continue
        low, high = max(first, r.ports[0]), min(last, r.ports[1])
        if r.to_ports is None:
            if offset == 0:
                covered.update(range(low, high + 1))
        elif r.to_ports[0] == r.to_ports[1]:
            # One destination port: right for exactly one public port. (A
            # destination range is no 1:1 mapping in nft: never one of ours.)
            port = r.to_ports[0] - offset
            if low <= port <= high and r.ports == (port, port):
                covered.add(port)
    return len(covered) == last - first + 1


_FORWARD_KEYS = ("sourceIp", "sourcePortStart", "sourcePortEnd", "destIp", "destPortStart",
                 "destPortEnd")


def _forward_problem(record: dict[str, str]) -> str:
    """What makes a portForwarding record unusable ("" when nothing does)."""
    lacking = [k for k in _FORWARD_KEYS if k not in record]
    if lacking:
        return f"{', '.join(lacking)} missing"
    ports = [k for k in _FORWARD_KEYS if "Port" in k]
    bad = [k for k in ports if not (record[k].isascii() and record[k].isdigit())]
    if bad:
        return f"{', '.join(bad)} not a port number"
    for side in ("source", "dest"):
        if int(record[f"{side}PortStart"]) > int(record[f"{side}PortEnd"]):
            return f"{side} port range reversed"
    return ""


def port_forwarding(ctx: Context) -> Outcome:
    """health_checks/iptables_check.py: every portForwarding record is a DNAT
    rule of the live table (upstream: PREROUTING and OUTPUT lines of
    iptables-save; here the table's DNAT rules, whichever chain holds them)."""
    records = ctx.data("portForwarding")
    if not records:
        return ok("No portforwarding rules provided to check, skipping")
    table = f"inet {ctx.settings.nft_table}"
    for i, record in enumerate(records):
        problem = _forward_problem(record)
        if problem:
            return failed(f"portForwarding record {i}: {problem}")
    listing = nft.table_json(ctx.settings.nft_table)
    rules = dnat_rules(listing) if listing is not None else []
    missing = [
        f"{r['sourceIp']}:{format_port(r['sourcePortStart'], r['sourcePortEnd'])} -> "
        f"{r['destIp']}:{format_port(r['destPortStart'], r['destPortEnd'])}"
        for r in records if not _forwarded(rules, r)]
    if missing:
        why = "" if listing is not None else f" (table {table} is not loaded)"
        return failed(f"Missing port forwarding rules in table {table}{why}-\n "
                      + "\n ".join(missing))
    return ok(f"Found all entries (count {len(records)}) in table {table}")


def netfilter_applied(ctx: Context) -> Outcome:
    """This router's own: the live nft table is exactly what the agent last
    applied (the test subsystems/netfilter.py makes before loading a delta)."""
    from . import subsystem as netfilter

    s = ctx.settings
    table = f"inet {s.nft_table}"
    if not s.applied_netfilter.exists():
        return failed(f"No ruleset applied since boot ({s.applied_netfilter.name} is missing)")
    if netfilter.applied_in_force(s):
        return ok(f"Table {table} is what the agent last applied")
    if nft.list_table(s.nft_table) is None:
        return failed(f"Table {table} is not loaded: removed since the agent applied it")
    return failed(f"Table {table} was changed since the agent applied it")


CHECKS = (
    Check("iptables_check.py", "advanced", port_forwarding),
    Check("netfilter_check", "advanced", netfilter_applied),
)
