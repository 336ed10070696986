"""Commands many clients send at once, each client owning one thing on the
router, so what the store and the system hold at the end can be checked
against what each client was told."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vragent.api.client import AgentGone, Client, NoAgent

PF_IP = "100.64.10.11"


def command(client: int, seq: int) -> dict[str, Any]:
    """Client ``client``'s ``seq``-th bag: even clients own a DHCP entry (its
    host name carries ``seq``), odd ones a port forward (its private port)."""
    if client % 2 == 0:
        return {"type": "dhcpentry", "host_name": f"c{client}-{seq}",
                "mac_address": f"02:00:0b:00:00:{client:02x}",
                "ipv4_address": f"10.10.1.{100 + client}", "default_gateway": "10.10.1.1",
                "dns_addresses": "10.10.1.1", "default_entry": True, "remove": False}
    return {"type": "forwardrules", "rules": [{
        "revoke": False, "protocol": "tcp", "source_ip_address": PF_IP,
        "source_port_range": f"{30000 + client}:{30000 + client}",
        "destination_ip_address": "10.10.1.10",
        "destination_port_range": f"{1000 + seq}:{1000 + seq}"}]}


def invalid(client: int, seq: int) -> dict[str, Any]:
    bag = command(client, seq)
    if client % 2 == 0:
        bag["ipv4_address"] = "10.10.1.300"
    else:
        bag["rules"][0]["destination_port_range"] = "0:70000"
    return bag


def stored_seq(docs: dict[str, Any], client: int) -> int | None:
    """The ``seq`` of client ``client``'s command that the store holds."""
    if client % 2 == 0:
        entry = docs.get("dhcpentry", {}).get(f"10.10.1.{100 + client}")
        return int(entry["host_name"].split("-")[1]) if entry else None
    for rule in docs.get("forwardrules", {}).get(PF_IP, []):
        if rule["source_port_range"] == f"{30000 + client}:{30000 + client}":
            return int(rule["destination_port_range"].split(":")[0]) - 1000
    return None


@dataclass
class Ack:
    seq: int
    revision: int
    changed: bool


@dataclass
class Sender:
    """One client: sends its commands in turn until told to stop."""

    client: int
    api: Client
    invalid_every: int = 7
    acks: list[Ack] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    unanswered: list[int] = field(default_factory=list)  # sent; the agent died meanwhile
    errors: list[str] = field(default_factory=list)

    def run(self, stop: threading.Event) -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            bad = seq % self.invalid_every == 0
            doc = invalid(self.client, seq) if bad else command(self.client, seq)
            try:
                status, body = self.api.json(
                    "POST", "/v1/apply", body=json.dumps(doc).encode(),
                    query=[("source", f"c{self.client}-{seq}")])
            except NoAgent:
                seq -= 1  # nothing listens (the agent restarts): nothing was sent
                stop.wait(0.05)
                continue
            except AgentGone:
                self.unanswered.append(seq)
                continue
            if bad:
                if status != 422:
                    self.errors.append(f"seq {seq}: invalid bag answered {status}: {body}")
                self.rejected.append(seq)
            elif status == 200:
                self.acks.append(Ack(seq, body["revision"], bool(body["changes"])))
            else:
                self.errors.append(f"seq {seq}: answered {status}: {body}")


def run_clients(api: Client, clients: int, seconds: float,
                during: Callable[[], bool] | None = None) -> list[Sender]:
    """``clients`` senders for ``seconds``; meanwhile ``during()`` is called in a
    loop, until it returns False (that ends the run early)."""
    senders = [Sender(i, api) for i in range(clients)]
    stop = threading.Event()
    threads = [threading.Thread(target=s.run, args=(stop,)) for s in senders]
    for t in threads:
        t.start()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if during is not None:
                if not during():
                    break
            else:
                stop.wait(min(1.0, max(0.0, deadline - time.monotonic())))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    return senders
