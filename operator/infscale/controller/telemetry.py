"""The operator's own metrics on /metrics, for Prometheus and Grafana."""

from __future__ import annotations

import contextlib
import time
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
STATUS_WRITES = Counter(
    "infscale_status_writes",
    "InferenceService status writes, by each field whose change made one (a write of several "
    "counts once under each)",
    ["field"], registry=REGISTRY,
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
SERVICE_POWER = Gauge(
    "infscale_service_power_watts", "What the service's Ready replicas draw", SERVICE,
    registry=REGISTRY,
)  # fmt: skip
SERVICE_ENERGY = Counter(
    "infscale_service_energy_kwh", "Energy the service's Ready replicas drew, as measured each "
    "cycle (cycles whose draw is unknown add nothing)", SERVICE, registry=REGISTRY,
)  # fmt: skip
POOL_POWER = Gauge(
    "infscale_pool_power_watts", "What a pool's Ready nodes draw", ("pool",), registry=REGISTRY
)
POOL_ENERGY = Counter(
    "infscale_pool_energy_kwh", "Energy a pool's Ready nodes drew, as measured each cycle",
    ("pool",), registry=REGISTRY,
)  # fmt: skip
POOL_NODES = Gauge("infscale_pool_nodes", "Nodes per pool", ("pool", "state"), registry=REGISTRY)
POOL_COST = Gauge(
    "infscale_pool_usd_per_hour", "Cost of a pool's nodes", ("pool",), registry=REGISTRY
)
POOL_ENERGY_PRICE = Gauge(
    "infscale_pool_usd_per_kwh", "Electricity price the planner uses for a pool now (its query, "
    "schedule or constant)", ("pool",), registry=REGISTRY,
)  # fmt: skip
POOL_CARBON = Gauge(
    "infscale_pool_grams_co2_per_kwh", "Carbon intensity the planner uses for a pool now",
    ("pool",), registry=REGISTRY,
)  # fmt: skip


def serve(address: str) -> None:
    """Serve /metrics on `host:port`."""
    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0", registry=REGISTRY)  # noqa: S104


_VARIANT_SERIES = (DESIRED, READY)
_SERVICE_SERIES = (DECISIONS, SERVICE_COST, ATTAINMENT, SERVICE_POWER, SERVICE_ENERGY)
_drawn_since: dict[tuple[str, ...], tuple[float, float]] = {}  # (monotonic s, watts) last seen
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
    _draw(SERVICE_POWER, SERVICE_ENERGY, (namespace, name), status.get("powerWatts"))


def _draw(power: Gauge, energy: Counter, labels: tuple[str, ...], watts: object) -> None:
    """The draw now, and the energy since the last cycle at the draw then (a draw that was
    unknown adds nothing, and an unknown one now removes the gauge's series)."""
    now = time.monotonic()
    last = _drawn_since.pop(labels, None)
    if last is not None:
        energy.labels(*labels).inc(last[1] * (now - last[0]) / 3.6e6)
    if isinstance(watts, int | float):
        power.labels(*labels).set(watts)
        _drawn_since[labels] = (now, float(watts))
    else:
        with contextlib.suppress(KeyError):
            power.remove(*labels)


def keep_services(present: Collection[tuple[str, str]]) -> None:
    """Remove every series of the services not in ``present`` (deleted, or out of scope), so a
    cluster's churn does not grow /metrics without bound."""
    for key in set(_variants) - set(present):
        for variant in _variants.pop(key):
            _remove(_VARIANT_SERIES, *key, variant)
        _remove(_SERVICE_SERIES, *key)
        _drawn_since.pop(key, None)


def _remove(metrics: Collection[Gauge | Counter], *labels: str) -> None:
    for metric in metrics:
        with contextlib.suppress(KeyError):  # never set
            metric.remove(*labels)


def record_pool(
    name: str,
    ready: int,
    desired: int,
    usd_per_hour: float,
    watts: float | None = None,
    usd_per_kwh: float | None = None,
    grams_co2_per_kwh: float | None = None,
    standby: int | None = None,
) -> None:
    POOL_NODES.labels(name, "ready").set(ready)
    POOL_NODES.labels(name, "desired").set(desired)
    if standby is not None:  # of the desired, kept ahead of need (spec.standby)
        POOL_NODES.labels(name, "standby").set(standby)
    else:
        _remove((POOL_NODES,), name, "standby")
    POOL_COST.labels(name).set(usd_per_hour)
    _draw(POOL_POWER, POOL_ENERGY, (name,), watts)
    for gauge, value in ((POOL_ENERGY_PRICE, usd_per_kwh), (POOL_CARBON, grams_co2_per_kwh)):
        if value is not None:
            gauge.labels(name).set(value)
        else:  # unknown is no series, never a stale figure
            _remove((gauge,), name)
