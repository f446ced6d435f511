"""The operator's own metrics on /metrics, for Prometheus and Grafana."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)

REGISTRY = CollectorRegistry(auto_describe=True)
# process_cpu_seconds_total, process_resident_memory_bytes, open fds (Linux): what a platform
# team alerts on, and what hack/bench-scale.sh reads per cycle.
ProcessCollector(registry=REGISTRY)
SERVICE = ("namespace", "service")

CYCLES = Counter("infscale_cycles", "Reconcile cycles run", registry=REGISTRY)
CYCLE_SECONDS = Histogram(
    "infscale_cycle_duration_seconds", "Wall time of one reconcile cycle", registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)  # fmt: skip
ERRORS = Counter("infscale_errors", "Failures by where they happened", ["kind"], registry=REGISTRY)
PROMETHEUS_QUERIES = Gauge(
    "infscale_prometheus_queries", "PromQL queries issued since start (batched per cycle)",
    registry=REGISTRY,
)  # fmt: skip
DECISIONS = Counter(
    "infscale_scaling_decisions", "Replica changes applied", SERVICE, registry=REGISTRY
)
DESIRED = Gauge(
    "infscale_desired_replicas", "Desired replicas", (*SERVICE, "variant"), registry=REGISTRY
)
READY = Gauge("infscale_ready_replicas", "Ready replicas", (*SERVICE, "variant"), registry=REGISTRY)
SERVICE_COST = Gauge("infscale_service_usd_per_hour", "Node cost share", SERVICE, registry=REGISTRY)
ATTAINMENT = Gauge(
    "infscale_slo_attainment", "Share of requests within the SLO", SERVICE, registry=REGISTRY
)
LEADER = Gauge(
    "infscale_leader", "1 while this replica holds the leader Lease and acts", registry=REGISTRY
)
POOL_NODES = Gauge("infscale_pool_nodes", "Nodes per pool", ("pool", "state"), registry=REGISTRY)
POOL_COST = Gauge(
    "infscale_pool_usd_per_hour", "Cost of a pool's nodes", ("pool",), registry=REGISTRY
)


def serve(address: str) -> None:
    """Serve /metrics on `host:port`."""
    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0", registry=REGISTRY)  # noqa: S104


_VARIANT_SERIES = (DESIRED, READY)
_SERVICE_SERIES = (DECISIONS, SERVICE_COST, ATTAINMENT)
_variants: dict[tuple[str, str], set[str]] = {}  # the variants each service has series of


def record_service(namespace: str, name: str, status: Mapping[str, object]) -> None:
    """Gauges from a service's status as just written; a variant gone from it loses its series."""
    listed = status.get("variants") or []
    names = {str(v["name"]) for v in listed}  # type: ignore[attr-defined]
    for gone in _variants.get((namespace, name), set()) - names:
        _remove(_VARIANT_SERIES, namespace, name, gone)
    _variants[(namespace, name)] = names
    for variant in listed:  # type: ignore[attr-defined]
        labels = (namespace, name, variant["name"])
        DESIRED.labels(*labels).set(variant.get("desiredReplicas", 0))
        READY.labels(*labels).set(variant.get("readyReplicas", 0))
    cost = status.get("usdPerHour")
    if isinstance(cost, int | float):
        SERVICE_COST.labels(namespace, name).set(cost)
    attainment = status.get("sloAttainment")
    if isinstance(attainment, int | float):
        ATTAINMENT.labels(namespace, name).set(attainment)


def keep_services(present: Collection[tuple[str, str]]) -> None:
    """Remove every series of the services not in ``present`` (deleted, or out of scope), so a
    cluster's churn does not grow /metrics without bound."""
    for key in set(_variants) - set(present):
        for variant in _variants.pop(key):
            _remove(_VARIANT_SERIES, *key, variant)
        _remove(_SERVICE_SERIES, *key)


def _remove(metrics: Collection[Gauge | Counter], *labels: str) -> None:
    for metric in metrics:
        with contextlib.suppress(KeyError):  # never set
            metric.remove(*labels)


def record_pool(name: str, ready: int, desired: int, usd_per_hour: float) -> None:
    POOL_NODES.labels(name, "ready").set(ready)
    POOL_NODES.labels(name, "desired").set(desired)
    POOL_COST.labels(name).set(usd_per_hour)
