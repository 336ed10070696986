"""Running routers and probing them with real packets in network namespaces."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vragent_lab.netns import Lab, in_ns, sample_vpc

SAMPLE = Path(__file__).resolve().parents[2] / "compose/vragent_lab/sample"
PEER = str(Path(__file__).with_name("peer.py"))
ALL_BAGS = [
    "ip_associations.json", "guest_network_tier1.json", "guest_network_tier2.json",
    "private_gateway.json", "network_acl_tier1.json", "network_acl_tier2.json",
    "forwarding_rules.json", "staticnat_rules.json", "static_routes.json",
]


@dataclass
class Router:
    lab: Lab
    ns: str
    root: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["ip", "netns", "exec", self.ns, sys.executable, "-m", "vragent",
             "--root", str(self.root), *args],
            capture_output=True, text=True, check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"vragent {' '.join(args)} exit {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def apply(self, *files: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        paths = [str(f if Path(f).is_absolute() else SAMPLE / f) for f in files]
        return self.run("apply", *paths, check=check)

    def sh(self, *argv: str, check: bool = True) -> str:
        return in_ns(self.ns, list(argv), check=check)

    def table_handle(self) -> int | None:
        import json

        out = json.loads(self.sh("nft", "-j", "list", "tables"))
        for item in out["nftables"]:
            t = item.get("table")
            if t and t["name"] == "vragent":
                return int(t["handle"])
        return None

    def snapshot(self) -> dict[str, str]:
        """What the router's kernel state looks like, for comparisons."""
        return {
            "addr": self.sh("ip", "-4", "-o", "addr", "show"),
            "route": self.sh("ip", "-4", "route", "show", "table", "all"),
            "rule": self.sh("ip", "-4", "rule", "show"),
            "nft": _chains_sorted(
                self.sh("nft", "-s", "list", "table", "inet", "vragent", check=False)),
        }


def _chains_sorted(listing: str) -> str:
    """The table listing with chains in name order: a full load and a chain-by-chain
    update leave the same rules but list chains in creation order."""
    chains: list[list[str]] = []
    for line in listing.splitlines():
        if line.startswith("\tchain "):
            chains.append([])
        if chains and line.strip() and line != "}":
            chains[-1].append(line)
    return "\n".join("\n".join(c) for c in sorted(chains))


@contextmanager
def vpc_lab(tmp_path: Path) -> Iterator[Router]:
    prefix = f"vt{os.getpid() % 100000}{int(time.monotonic_ns() % 1000):03d}-"
    lab = sample_vpc(prefix)
    root = tmp_path / "root"
    (root / "var/cache/cloud").mkdir(parents=True)
    shutil.copy(SAMPLE / "cmd_line.json", root / "var/cache/cloud/cmd_line.json")
    try:
        yield Router(lab, f"{prefix}r", root)
    finally:
        lab.destroy()


def ns_of(router: Router, short: str) -> str:
    return f"{router.lab.prefix}{short}"


@contextmanager
def server(ns: str, port: int, proto: str = "tcp") -> Iterator[subprocess.Popen[str]]:
    """A peer.py server in ``ns`` that answers every client with the address it saw."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, PEER, "serve", proto, str(port)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "ready" once bound: no race with the first client
        assert line.strip() == "ready", line
        yield proc
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def connect(ns: str, host: str, port: int, proto: str = "tcp", timeout: float = 2.0) -> str | None:
    """The address the server saw us as, or None when nothing came back."""
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, PEER, "connect", proto, host, str(port),
         str(timeout)],
        capture_output=True, text=True, check=False,
    )
    return proc.stdout.strip() or None

