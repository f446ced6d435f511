"""The metrics-source port: what the operator asks of Prometheus (or anything like it).

Every value is a float or None. None means UNKNOWN (no series, NaN, Inf, stale, an error) and
always comes with a reason; it is never read as zero, since a zero latency would look perfect and
trigger a scale-down.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Protocol


@dataclasses.dataclass(frozen=True)
class SeriesLabels:
    """The labels that identify a model server's series in Prometheus.

    The defaults match a PodMonitor with `podTargetLabels: [infscale.dev/service,
    infscale.dev/variant]` (Prometheus turns `.` and `/` into `_`) plus the usual namespace and pod.
    """

    namespace: str = "namespace"
    service: str = "infscale_dev_service"
    variant: str = "infscale_dev_variant"
    pod: str = "pod"


@dataclasses.dataclass(frozen=True)
class ServiceQuery:
    """What to observe for one InferenceService."""

    namespace: str
    service: str
    preset: str
    slo_metric: str
    percentile: float
    threshold_s: float
    request_counter: str | None = None
    latency_histogram: str | None = None
    queue_gauge: str | None = None
    arrival_rate_query: str | None = None
    """PromQL for the requests/s arriving in front of the servers (a gateway's counter)."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.service)


@dataclasses.dataclass(frozen=True)
class Signals:
    """Observed signals of a pod, a variant or a whole service; None is unknown."""

    rps: float | None = None
    latency_s: float | None = None
    """The SLO metric at the SLO percentile (the mean, for servers without histograms)."""
    slo_attainment: float | None = None
    """Fraction of requests within the SLO threshold."""
    queue: float | None = None
    """Requests waiting in the server's queue."""
    running: float | None = None
    kv_cache_usage: float | None = None
    """KV-cache use in [0, 1], where the server exports it."""


@dataclasses.dataclass(frozen=True)
class ServiceMetrics:
    """One service's signals, overall, per variant and per pod, with why anything is unknown."""

    total: Signals
    variants: Mapping[str, Signals]
    pods: Mapping[str, Signals]
    pod_variant: Mapping[str, str]
    unknown: tuple[str, ...] = ()
    arrival_rps: float | None = None
    """Requests/s arriving in front of the servers (the arrival-rate query), None if not asked
    for or unknown."""

    @property
    def available(self) -> bool:
        """True when a request rate is known; latency may still be unknown without traffic."""
        return self.total.rps is not None or self.arrival_rps is not None


class ValueSource(Protocol):
    """Answers users' own PromQL expressions (a pool's electricity price, say)."""

    def values(self, expressions: Sequence[str]) -> dict[str, tuple[float | None, str | None]]:
        """Each PromQL expression's value now (its series averaged), or None and why (no
        series, not finite or negative, a failure); a bounded number of backend queries for
        all of them. Never raises."""
        ...


class MetricsSource(ValueSource, Protocol):
    """Reads the signals of many services in one batched round."""

    def observe(self, queries: Sequence[ServiceQuery]) -> dict[tuple[str, str], ServiceMetrics]:
        """Signals for every query, keyed by (namespace, service).

        Issues a bounded number of backend queries per call, independent of len(queries)
        (the arrival-rate queries are one request, plus one per failed expression whose retry
        is due).
        Never raises for backend failures: they become unknown values with reasons.
        Safe to call repeatedly (no state besides counters and the backoff of failing
        arrival-rate expressions).
        """
        ...

    @property
    def queries_issued(self) -> int:
        """Backend queries issued since creation (an operator metric)."""
        ...


def empty(reason: str) -> ServiceMetrics:
    """Metrics that are entirely unknown, for one reason."""
    return ServiceMetrics(total=Signals(), variants={}, pods={}, pod_variant={}, unknown=(reason,))


def merge_reasons(*groups: Sequence[str]) -> tuple[str, ...]:
    """Reasons in order, without repeats."""
    seen: dict[str, None] = {}
    for group in groups:
        for reason in group:
            seen.setdefault(reason, None)
    return tuple(seen)


SignalsByKey = Mapping[str, Signals]
