"""Known traffic, and what a router's usage counters say of it (shared by the
namespace tests, the pair's and the containers')."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

TRANSFER = str(Path(__file__).with_name("transfer.py"))

# Bytes of headers a counted IPv4/TCP packet carries besides its payload (nft
# counts the IP packet): 20 of IPv4 and 20 of TCP, plus up to 20 of TCP
# options (a SYN's MSS, SACK permitted, timestamps and window scale; Linux's
# data segments and ACKs carry 12, the timestamps). Where segments are
# aggregated (GRO) one counted packet holds several segments' payload under
# one header: the bound is per counted packet either way.
HEADER_MIN = 40
HEADER_MAX = 60


@contextmanager
def serving(ns: str, port: int, down: int) -> Iterator[None]:
    """transfer.py's server in ``ns``: ``down`` bytes back to every client."""
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, TRANSFER, "serve",
                             str(port), str(down)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # once listening: no race with the client
        assert line.strip() == "ready", line
        yield
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def send(ns: str, host: str, port: int, up: int) -> dict[str, int]:
    """``up`` bytes to ``host:port`` from ``ns``; what crossed each way."""
    proc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, TRANSFER, "send", host,
                           str(port), str(up)], capture_output=True, text=True, check=False,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, int] = json.loads(proc.stdout)
    return result


# A UDP datagram's headers, as nft counts the IP packet: IPv4 20, UDP 8.
UDP_HEADERS = 28


class Echo:
    """transfer.py's UDP echo in ``ns``; ``stop()`` gives how many it echoed."""

    def __init__(self, ns: str, port: int) -> None:
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, TRANSFER,
                                      "echo", str(port)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", line
        self.echoed: int | None = None

    def stop(self) -> int:
        if self.echoed is None:
            self.proc.send_signal(signal.SIGTERM)
            out, _ = self.proc.communicate(timeout=10)
            self.echoed = int(json.loads(out)["echoed"])
        return self.echoed

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Stream:
    """transfer.py's UDP stream from ``ns``, in the background: ``count``
    datagrams of ``size`` bytes, one every ``interval`` seconds."""

    def __init__(self, ns: str, host: str, port: int, count: int, interval: float,
                 size: int) -> None:
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, TRANSFER,
                                      "stream", host, str(port), str(count), repr(interval),
                                      str(size)], stdout=subprocess.PIPE, text=True)

    def result(self, timeout: float) -> dict[str, int]:
        out, _ = self.proc.communicate(timeout=timeout)
        found: dict[str, int] = json.loads(out)
        return found

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass(frozen=True)
class Delta:
    """A counter's change: bytes and packets."""

    octets: int
    packets: int

    def overhead(self, payload: int) -> int:
        return self.octets - payload

    def within_headers(self, payload: int) -> bool:
        return (payload + HEADER_MIN * self.packets <= self.octets
                <= payload + HEADER_MAX * self.packets)


def delta(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]],
          name: str) -> Delta:
    b = before.get(name, (0, 0))
    a = after[name]
    return Delta(a[1] - b[1], a[0] - b[0])


def nft_counters(ns: str, table: str = "vragent") -> dict[str, tuple[int, int]]:
    """The table's counters by name: (packets, bytes)."""
    out = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "counters", "table",
                          "inet", table], capture_output=True, text=True, check=True).stdout
    found = {}
    for item in json.loads(out)["nftables"]:
        c = item.get("counter")
        if c:
            found[c["name"]] = (int(c["packets"]), int(c["bytes"]))
    return found


def script(ns: str, root: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """CloudStack's entry point ``name`` (vpc_netusage.sh, netusage.sh) in the
    router's namespace, as the management server's ssh runs it there."""
    return subprocess.run(["ip", "netns", "exec", ns, "env", f"VRAGENT_ROOT={root}",
                           str(Path(sys.executable).parent / name), *args],
                          capture_output=True, text=True, check=False, timeout=60)
