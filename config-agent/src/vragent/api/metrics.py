"""What the router exposes to Prometheus (``GET /metrics`` on the control address).

Counters the agent keeps itself (commands, apply durations, daemon starts,
restarts and reloads), and values read when scraped (the pair state and its
transitions, conntrack's table size). One registry per agent, never the
process-global one, so tests can run several.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..feature import Metric
from ..pairstate import STATUSES, HaState

# Seconds: a single-rule change is milliseconds, a cold 10,000-rule load about a second.
APPLY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.commands = Counter("vragent_commands", "Commands taken, by kind and outcome",
                                ["kind", "outcome"], registry=self.registry)
        self.apply_seconds = Histogram("vragent_apply_duration_seconds",
                                       "Time from a command's turn in the queue to its result",
                                       ["kind"], buckets=APPLY_BUCKETS, registry=self.registry)
        self.health_checks = Gauge("vragent_health_check_success",
                                   "1 if the health check passed at its last run",
                                   ["kind", "check"], registry=self.registry)
        self.daemon_events = Counter("vragent_daemon_events",
                                     "Supervised daemons started, restarted and reloaded by "
                                     "the agent", ["daemon", "event"], registry=self.registry)

    def command(self, kind: str, outcome: str, seconds: float) -> None:
        self.commands.labels(kind, outcome).inc()
        self.apply_seconds.labels(kind).observe(seconds)

    def health(self, kind: str, outcome: dict[str, Any]) -> None:
        for name, result in outcome.items():
            if isinstance(result, dict) and "success" in result:
                self.health_checks.labels(kind, name).set(
                    1.0 if result["success"] == "true" else 0.0)

    def daemon(self, name: str, event: str) -> None:
        self.daemon_events.labels(name, event).inc()

    def watch(self, state_file: Path, conntrack_count: Callable[[], int | None],
              features: Callable[[], list[Metric]] = list) -> None:
        """Values read at scrape time: the pair's, conntrack's and every feature's."""
        self.registry.register(_Scraped(state_file, conntrack_count, features))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Scraped(Collector):
    def __init__(self, state_file: Path, conntrack_count: Callable[[], int | None],
                 features: Callable[[], list[Metric]]) -> None:
        self.state_file = state_file
        self.conntrack_count = conntrack_count
        self.features = features

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        state = HaState.load(self.state_file)
        g = GaugeMetricFamily("vragent_vrrp_state", "1 for the pair state this router is in",
                              labels=["state"])
        for status in STATUSES:
            g.add_metric([status], 1.0 if state.status == status else 0.0)
        yield g
        yield CounterMetricFamily("vragent_vrrp_transitions",
                                  "Pair state changes since the state file was created",
                                  value=state.transitions)
        yield GaugeMetricFamily("vragent_dual_master", "1 while the peer holds our addresses "
                                "too", value=1.0 if state.dual_master else 0.0)
        count = self.conntrack_count()
        if count is not None:
            yield GaugeMetricFamily("vragent_conntrack_entries",
                                    "Connections in this router's conntrack table", value=count)
        for m in self.features():
            family: GaugeMetricFamily | CounterMetricFamily
            if m.kind == "counter":
                family = CounterMetricFamily(m.name, m.help, labels=list(m.labels))
            else:
                family = GaugeMetricFamily(m.name, m.help, labels=list(m.labels))
            for values, value in m.samples:
                family.add_metric(list(values), value)
            yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())
