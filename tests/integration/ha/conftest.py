"""A running redundant pair, and a sampler that watches it for the whole module."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from vragent_lab import pair as lab_pair
from vragent_lab.netns import wait_for
from vragent_lab.pair import Pair

ADVERT_INT = 0.5
VIP = "10.255.0.254"


@dataclass
class Sampler:
    """Samples both routers continuously; while the pair is meant to be healthy,
    every sample must show exactly one master (by the agents' state and by who
    holds the advert address)."""

    pair: Pair
    interval: float = 0.05
    samples: int = 0
    bad: list[str] = field(default_factory=list)
    _healthy: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self._healthy.is_set():
                continue
            statuses = self.pair.statuses()
            dev, vip = self.pair.advert
            holders = [r.name for r in self.pair.routers if r.holds_vip(vip, dev)]
            if not self._healthy.is_set():
                continue  # a test declared a failure while we looked
            self.samples += 1
            if sorted(statuses) != ["BACKUP", "PRIMARY"] or len(holders) != 1:
                self.bad.append(f"{time.strftime('%H:%M:%S')} states {statuses} "
                                f"advert address held by {holders}")

    def healthy(self, on: bool) -> None:
        if on:
            self._healthy.set()
        else:
            self._healthy.clear()
            time.sleep(self.interval * 2)  # let a sample in progress finish

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)


@contextmanager
def running_pair(base: Path, advert_int: float, cloudstack: bool = False,
                 boot: dict[str, str] | None = None) -> Iterator[tuple[Pair, Sampler]]:
    """Two routers with the sample VPC (public IPs, two tiers, a port forward),
    sampled from start to end: exactly one master whenever the test says healthy.
    ``boot``: more boot parameters for both (fast detection's, say)."""
    pair = lab_pair.build(base, advert_int, cloudstack=cloudstack, boot=boot)
    sampler = Sampler(pair)
    try:
        lab_pair.start(pair)
        for r in pair.routers:
            wait_for(r.config_loaded, 10, f"{r.name}'s keepalived to load the tiers")
        pair.wait_one_master()
        sampler.start()
        sampler.healthy(True)
        yield pair, sampler
        sampler.healthy(False)
        assert sampler.samples > 0
        assert sampler.bad == [], "\n".join(sampler.bad[:20])
    finally:
        sampler.stop()
        pair.destroy()


@pytest.fixture(scope="module")
def vpc_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pair, Sampler]]:
    """The sample VPC on a pair with a sync link."""
    with running_pair(tmp_path_factory.mktemp("pair"), ADVERT_INT) as running:
        yield running
