"""The emulated model servers of one InferenceService: a queue model plus per-pod metrics.

THIS IS AN EMULATOR. No model runs: request latencies come from the shared replica/queue model
(`infscale.sim.servers`), and each Ready pod of the service reports counters and histograms under
the model server's own metric names, so Prometheus and the operator see what they would see from
real servers. One latency is modelled per request (queue wait plus service time); it is exported
as time to first token and as end-to-end latency; the wait alone is the queue time.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import math
from collections.abc import Iterator, Mapping

from infscale.domain.model import Routing
from infscale.sim import servers

# Histogram bounds in seconds (the emulator's own choice, similar in range to vLLM's; the
# longer ones measure batch deadlines).
BUCKETS_S = (
    0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6,
    0.75, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 600.0, 900.0,
    1200.0, 1800.0, 2700.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, math.inf,
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class PodIdentity:
    namespace: str
    service: str
    variant: str
    pod: str


class Histogram:
    """Cumulative bucket counts and the sum, as a Prometheus histogram."""

    def __init__(self) -> None:
        self.counts = [0] * len(BUCKETS_S)
        self.total_s = 0.0
        self.count = 0

    def observe(self, value_s: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS_S, value_s)] += 1
        self.total_s += value_s
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        running, result = 0, []
        for bound, count in zip(BUCKETS_S, self.counts, strict=True):
            running += count
            result.append((bound, running))
        return result


@dataclasses.dataclass
class PodCounters:
    """Everything one emulated pod exports."""

    identity: PodIdentity
    requests: int = 0
    latency: Histogram = dataclasses.field(default_factory=Histogram)
    queue_time: Histogram = dataclasses.field(default_factory=Histogram)
    running: int = 0
    waiting: float = 0.0
    kv_cache_usage: float = 0.0


class EmulatedService:
    """The replica/queue model of one service and the counters of its pods."""

    def __init__(
        self,
        namespace: str,
        name: str,
        variant_order: list[str],
        seed: int,
        threshold_s: float = math.inf,
        routing: Routing = "shared",
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.queue = servers.router(variant_order, seed, routing)
        """One queue in front of every replica, a weighted route to a queue per variant, or a
        plain Service's even spread over the pods (a queue per variant, shares by pods)."""
        self.pods: dict[str, PodCounters] = {}
        self.truth: collections.deque[servers.Completion] = collections.deque()
        self._perf: dict[str, servers.Perf] = {}
        self.arrived = 0
        """Requests that reached the service, served or not (the emulated gateway's counter)."""
        self.threshold_s = threshold_s
        self.completed = 0
        self.within_slo = 0
        self.latency = Histogram()
        """Every completion since the start (ground truth for a benchmark's attainment)."""

    def set_pods(self, ready: Mapping[str, tuple[str, servers.Perf]]) -> None:
        """The Ready pods (name -> (variant, perf)); pods that went away stop taking requests."""
        for pod, (variant, _) in ready.items():
            if pod not in self.pods:
                identity = PodIdentity(self.namespace, self.name, variant, pod)
                self.pods[pod] = PodCounters(identity)
        self._perf = {pod: perf for pod, (_, perf) in ready.items()}
        self.queue.set_replicas(dict(ready))
        self._refresh_gauges()
        for pod in list(self.pods):
            if pod not in ready and self.queue.busy(pod) == 0:
                del self.pods[pod]

    def route(self, weights: Mapping[str, float]) -> None:
        """The weighted route's weights, by variant (ignored without a weighted route)."""
        if isinstance(self.queue, servers.WeightedQueues):
            self.queue.weights = dict(weights)

    def arrive(self, at_s: float) -> None:
        self.arrived += 1
        self._record(self.queue.arrive(at_s))

    def advance(self, to_s: float) -> None:
        self._record(self.queue.advance(to_s))
        self._refresh_gauges()

    def _record(self, done: list[servers.Completion]) -> None:
        for completion in done:
            counters = self.pods.get(completion.replica)
            if counters is None:
                continue
            counters.requests += 1
            counters.latency.observe(completion.latency_s)
            counters.queue_time.observe(completion.wait_s)
            self.truth.append(completion)
            self.completed += 1
            self.within_slo += completion.latency_s <= self.threshold_s
            self.latency.observe(completion.latency_s)

    def _refresh_gauges(self) -> None:
        live = [p for p in self.pods if p in self._perf]
        share = self.queue.waiting / len(live) if live else 0.0
        for pod, counters in self.pods.items():
            counters.running = self.queue.busy(pod)
            counters.waiting = share if pod in self._perf else 0.0
            slots = self._perf[pod].slots if pod in self._perf else 1
            counters.kv_cache_usage = min(1.0, counters.running / slots)

    def forget_before(self, cutoff_s: float) -> None:
        """Drop ground-truth records older than ``cutoff_s``."""
        while self.truth and self.truth[0].done_s < cutoff_s:
            self.truth.popleft()

    def ground_truth(self, now_s: float, window_s: float, percentile: float) -> dict[str, object]:
        """Exact rate and latency percentile of requests finished in the last ``window_s``."""
        recent = [c for c in self.truth if now_s - window_s < c.done_s <= now_s]
        groups: dict[str, list[servers.Completion]] = collections.defaultdict(list)
        for completion in recent:
            groups[f"variant/{completion.variant}"].append(completion)
            groups[f"pod/{completion.replica}"].append(completion)
        groups["service"] = recent

        def summary(items: list[servers.Completion]) -> dict[str, float | None]:
            latencies = sorted(c.latency_s for c in items)
            value = None
            if latencies:
                index = max(0, math.ceil(percentile / 100 * len(latencies)) - 1)
                value = latencies[index]
            return {"rps": len(items) / window_s, "latency_s": value, "requests": len(items)}

        return {key: summary(items) for key, items in groups.items()}

    def totals(self, percentile: float) -> dict[str, float | None]:
        """Since the start: requests arrived, completed, completed within the SLO threshold, and
        the SLO percentile of latency (the histogram bucket's upper bound; None before any)."""
        rank, latency_s = percentile / 100 * self.latency.count, None
        for bound, running in self.latency.cumulative():
            if self.latency.count and running >= rank:
                latency_s = bound
                break
        return {
            "arrived": self.arrived,
            "completed": self.completed,
            "within_slo": self.within_slo,
            "latency_s": latency_s,
        }

    def all_pods(self) -> Iterator[PodCounters]:
        yield from self.pods.values()
