"""The planner's vocabulary: specs, observations, plans and persisted state as frozen dataclasses.

Everything here is plain data. ``None`` in an observation means UNKNOWN (Prometheus down, an empty
or NaN result), never zero: a zero latency would look perfect and trigger a scale-down.
``PlannerState`` holds only JSON-friendly values so the controller can keep it in ``status``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Mapping
from typing import Any, Literal

GPU = "nvidia.com/gpu"


@dataclasses.dataclass(frozen=True)
class Resources:
    """A resource vector: cpu cores, memory in GiB and extended resources (GPUs) by name."""

    cpu: float = 0.0
    memory_gib: float = 0.0
    extended: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        """All dimensions by name (``cpu``, ``memory_gib`` and each extended resource)."""
        return {"cpu": self.cpu, "memory_gib": self.memory_gib, **dict(self.extended)}

    @functools.cached_property
    def shape(self) -> tuple[float, float, tuple[tuple[str, float], ...]]:
        """The vector as a hashable value, computed once per object."""
        return (self.cpu, self.memory_gib, tuple(sorted(self.extended.items())))

    def fits_per_node(self, node: Resources) -> int:
        """How many of these fit on one node of shape ``node`` (0 when any dimension is short)."""
        # Called about ten times for every (variant, pool) pair of every plan (40,000 pairs at
        # 1,000 services): remembered by value, one entry per pair of shapes. (Remembered by
        # identity, each cycle's new spec objects added entries that held them alive: tens of
        # MiB at 1,000 services before the bound emptied it.)
        key = (self.shape, node.shape)
        fits = _FITS.get(key)
        if fits is None:
            fits = _fits(self, node)
            if len(_FITS) >= _FITS_BOUND:
                _FITS.clear()
            _FITS[key] = fits
        return fits


_FITS: dict[tuple[object, object], int] = {}
_FITS_BOUND = 10_000  # distinct (replica, node) shapes: a cluster has a handful


def _fits(replica: Resources, node: Resources) -> int:
    """One pass over the dimensions, no lists."""
    fits = math.inf
    if replica.cpu > 0:
        fits = math.floor(node.cpu / replica.cpu + 1e-9)
    if replica.memory_gib > 0:
        fits = min(fits, math.floor(node.memory_gib / replica.memory_gib + 1e-9))
    for key, need in replica.extended.items():
        if need > 0:
            fits = min(fits, math.floor(node.extended.get(key, 0.0) / need + 1e-9))
    return 0 if fits == math.inf else int(fits)


@dataclasses.dataclass(frozen=True)
class Power:
    """One node's draw (watts idle and at full load) and its electricity's price and carbon."""

    idle_w: float
    max_w: float
    usd_per_kwh: float = 0.0
    g_co2_per_kwh: float | None = None
    by_hour: tuple[tuple[float, float | None], ...] = ()
    """(usd_per_kwh, g_co2_per_kwh) of each hour of the day, UTC, where a schedule declares
    figures that change through the day (what batch work may wait for); empty: all day alike."""

    def at_hour(self, hour_utc: int) -> Power:
        """The figures of that hour of the day (the same without a schedule)."""
        if not self.by_hour:
            return self
        usd, grams = self.by_hour[hour_utc % 24]
        return dataclasses.replace(self, usd_per_kwh=usd, g_co2_per_kwh=grams)


@dataclasses.dataclass(frozen=True)
class PoolSpec:
    """An InferenceNodePool: identical nodes with a price and size bounds."""

    name: str
    node: Resources
    usd_per_hour: float
    min_nodes: int = 0
    max_nodes: int = 10
    provisioning_s: float = 300.0
    power: Power | None = None
    spot: bool = False  # nodes reclaimable at short notice (capacityType: Spot)
    standby_max_nodes: int = 0  # nodes kept Ready ahead of need, at most (spec.standby)
    standby_warm: bool = False  # standby nodes run started replicas (spec.standby.warm)
    interruptions_per_hour: float = 0.0  # expected reclaims per node-hour (spot)


@dataclasses.dataclass(frozen=True)
class VariantSpec:
    """One way to run a service: a pool, per-replica resources and a capacity estimate."""

    name: str
    pool: str
    resources: Resources
    capacity_rps: float
    startup_s: float = 60.0
    quality: float | None = None  # answer quality, 0-1, from the team's own evaluation


@dataclasses.dataclass(frozen=True)
class Fallback:
    """What to do when the request rate is unknown: ``hold`` the last plan or ``fixed`` replicas.

    Either way the planner never scales down on unknown data; ``fixed`` is a floor.
    """

    mode: Literal["hold", "fixed"] = "hold"
    replicas: int = 0


Routing = Literal["shared", "weighted", "spread"]
"""How requests reach a service's replicas. ``shared``: one queue handing each request to a free
slot (a balancer that does so); ``weighted``: a route that gives each variant the plan's share
(infscale's HTTPRoute); ``spread``: a plain Service, every pod the same share, fast or slow, so
one variant serves at a time, with those of its speed (a mix would be as slow as its slowest
pod)."""


@dataclasses.dataclass(frozen=True)
class ServiceSpec:
    """An InferenceService as the planner sees it."""

    namespace: str
    name: str
    variants: tuple[VariantSpec, ...]
    slo_latency_s: float = 0.5
    slo_percentile: float = 95.0
    min_replicas: int = 1
    max_replicas: int = 100
    scale_down_stabilization_s: float = 300.0
    scale_down_max_step: int = 0  # replicas removed per decision; 0 = no limit
    idle_timeout_s: float = 600.0  # scale to zero after this long without traffic (min == 0)
    fallback: Fallback = Fallback()
    quality_floor: float | None = None
    quality_average: bool = False  # the floor holds for the traffic-weighted mean, not each variant
    routing: Routing = "shared"
    carbon_usd_per_tonne: float = 0.0  # an internal carbon price (spec.objective)
    spot_max_share: float = 0.5  # at most this share of the planned capacity on spot pools
    deadline_s: float | None = None
    """Batch (``spec.slo.class: Batch``): requests may queue and must be done within this long
    (``slo_latency_s`` is the same deadline); None: interactive."""
    acting: bool = True
    """False in Recommend mode or while paused: planned for the report only, its replicas held,
    so it is no reason for standby nodes either (they would be bought for real)."""

    @property
    def batch(self) -> bool:
        """Whether requests may queue up to a deadline (spare capacity, spot, scale to zero)."""
        return self.deadline_s is not None

    def below_floor(self, variant: VariantSpec) -> bool:
        """Whether ``variant``'s quality is under the service's floor (unscored counts as under)."""
        if self.quality_floor is None:
            return False
        return variant.quality is None or variant.quality < self.quality_floor

    @property
    def key(self) -> str:
        """``namespace/name``: the service's identity in plans and state."""
        return f"{self.namespace}/{self.name}"

    def variant(self, name: str) -> VariantSpec:
        """The variant called ``name`` (KeyError when absent)."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(name)


@dataclasses.dataclass(frozen=True)
class VariantObservation:
    """What the cluster reports for one variant's Deployment; ``None`` means unknown."""

    ready_replicas: int = 0
    desired_replicas: int = 0
    rps: float | None = None
    latency_s: float | None = None  # at the service's SLO percentile


@dataclasses.dataclass(frozen=True)
class Observation:
    """One service's observed state at decision time; ``None`` means unknown, never zero."""

    rps: float | None = None
    latency_s: float | None = None
    variants: Mapping[str, VariantObservation] = dataclasses.field(default_factory=dict)
    queued: float | None = None
    """Requests waiting in the service's queues (the servers' queue gauge, summed)."""
    slo_attainment: float | None = None
    """Share of the requests completed lately that met the SLO threshold (from the latency
    histogram); below the SLO percentile, the planner adds bridge capacity (see ``plan``)."""
    rate_window_s: float = 0.0
    """The window ``rps`` is averaged over (PromQL ``rate()``'s range); the queue's change over
    the same window is the demand that the completions did not show. 0: unknown."""
    missing: tuple[str, ...] = ()
    """Signals the metrics source knows to be missing although others are present (a pod's
    stale or NaN series, ...), each named for the reason; any entry forbids scale-down."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """The pure output of one decision.

    ``replicas[service_key][variant]``, ``nodes[pool]``, ``demand_rps[service_key]`` (the forecast
    the plan covers) and ``reasons[service_key or pool:<name>]``: human-readable why.
    """

    replicas: Mapping[str, Mapping[str, int]]
    nodes: Mapping[str, int]
    demand_rps: Mapping[str, float] = dataclasses.field(default_factory=dict)
    reasons: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    usd_per_hour: float = 0.0
    quality: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """Per service with a quality floor: the optimiser's mix's traffic-weighted quality."""
    weights: Mapping[str, Mapping[str, int]] = dataclasses.field(default_factory=dict)
    """Per routed service: each variant's share of the traffic in percent (``traffic.weights``)."""
    floor_usd_per_hour: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """Per service with a quality floor: its replicas' node share cost over that of the cheapest
    plan of the same demand without the floor."""
    standby: Mapping[str, tuple[int, str]] = dataclasses.field(default_factory=dict)
    """Per pool with ``standby_max_nodes``: the standby nodes of ``nodes`` kept Ready ahead of
    need, and why (:mod:`standby`)."""
    warm: Mapping[str, Mapping[str, int]] = dataclasses.field(default_factory=dict)
    """Per service: the replicas of ``replicas`` started on warm standby nodes, beyond those its
    demand needs (``standby_warm``)."""

    def total_replicas(self, service_key: str) -> int:
        """Replicas of all variants of one service."""
        return sum(self.replicas.get(service_key, {}).values())


@dataclasses.dataclass(frozen=True)
class ForecastState:
    """Per-service forecaster memory (see ``forecast``)."""

    level_rps: float = 0.0
    trend_rps_per_s: float = 0.0
    var_rps2: float = 0.0
    last_s: float | None = None
    peaks: tuple[tuple[float, float], ...] = ()  # (time_s, rps), decreasing rps: a peak-hold queue
    minutes: tuple[tuple[int, float], ...] = ()  # (bucket, highest rps in it), oldest first
    queue_samples: tuple[tuple[float, float], ...] = ()  # (time_s, requests waiting), recent
    active_since_s: float | None = None  # when the service first received traffic


@dataclasses.dataclass(frozen=True)
class PlannerState:
    """What must survive between decisions (and restarts); plain data, JSON-serialisable.

    ``history[service][variant]`` holds (time_s, recommended replicas) within the stabilization
    window; ``capacity_rps[service][variant]`` the learned capacity; ``last_active_s[service]``
    the last time traffic was seen; ``pool_scale_up_s`` / ``pool_surplus_since_s`` drive the node
    cool-down; ``headroom[service]`` is the demand multiplier raised by recent SLO misses;
    ``backlog_until_s[service]`` ends the period in which latency is blamed on a backlog left
    by an overload, not on capacity; ``missed_slo_s[service]`` is when latency was last over the
    SLO (peaks are held longer for a while after); ``capacity_ceiling[service][variant]`` is the
    (per-replica rps, time_s) at which the variant was last seen too slow;
    ``excess_paid[service]`` is the (usd, time_s) its allocation has cost over the cheapest cover
    of its demand, since that became cheaper (a move is made once it has paid for itself).
    """

    last_replicas: Mapping[str, Mapping[str, int]] = dataclasses.field(default_factory=dict)
    last_nodes: Mapping[str, int] = dataclasses.field(default_factory=dict)
    history: Mapping[str, Mapping[str, tuple[tuple[float, int], ...]]] = dataclasses.field(
        default_factory=dict
    )
    capacity_rps: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)
    forecasts: Mapping[str, ForecastState] = dataclasses.field(default_factory=dict)
    last_active_s: Mapping[str, float] = dataclasses.field(default_factory=dict)
    pool_scale_up_s: Mapping[str, float] = dataclasses.field(default_factory=dict)
    pool_surplus_since_s: Mapping[str, float] = dataclasses.field(default_factory=dict)
    headroom: Mapping[str, float] = dataclasses.field(default_factory=dict)
    backlog_until_s: Mapping[str, float] = dataclasses.field(default_factory=dict)
    missed_slo_s: Mapping[str, float] = dataclasses.field(default_factory=dict)
    capacity_ceiling: Mapping[str, Mapping[str, tuple[float, float]]] = dataclasses.field(
        default_factory=dict
    )
    excess_paid: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    too_slow: Mapping[str, Mapping[str, tuple[float, float, float]]] = dataclasses.field(
        default_factory=dict
    )
    """``too_slow[service][variant]``: (latency_s, first_s, last_s) of the span in which every
    decision saw the variant miss the SLO at light load without a queue (its requests alone take
    too long once that span is long enough)."""
    queued_since_s: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """Per batch service: since when requests have waited without a break (the oldest waiting
    request is no older), so work held for a cheaper hour still meets its deadline."""


LEARNED = (
    "forecasts",
    "capacity_rps",
    "capacity_ceiling",
    "headroom",
    "missed_slo_s",
    "backlog_until_s",
    "excess_paid",
    "too_slow",
    "queued_since_s",
)
"""The per-service parts of the state that only the planner knows: what it has learned of the
traffic and the variants. The rest (replicas, windows, nodes) is rebuilt from the cluster."""


def learned(state: PlannerState, key: str) -> PlannerState:
    """What the planner has learned about one service, alone."""
    return PlannerState(
        **{f: {key: getattr(state, f)[key]} for f in LEARNED if key in getattr(state, f)}
    )


def with_learned(state: PlannerState, key: str, memory: PlannerState) -> PlannerState:
    """``state`` with one service's learned parts taken from ``memory``."""
    return dataclasses.replace(
        state,
        **{
            f: {**getattr(state, f), key: getattr(memory, f)[key]}
            for f in LEARNED
            if key in getattr(memory, f)
        },
    )


def state_to_json(state: PlannerState) -> str:
    """Serialise a state (tuples become lists)."""
    return json.dumps(dataclasses.asdict(state), sort_keys=True)


def state_from_json(text: str) -> PlannerState:
    """Inverse of :func:`state_to_json`."""
    raw: dict[str, Any] = json.loads(text)
    forecasts = {
        key: ForecastState(
            level_rps=float(f["level_rps"]),
            trend_rps_per_s=float(f["trend_rps_per_s"]),
            var_rps2=float(f["var_rps2"]),
            last_s=None if f["last_s"] is None else float(f["last_s"]),
            peaks=tuple((float(t), float(r)) for t, r in f["peaks"]),
            minutes=tuple((int(i), float(r)) for i, r in f.get("minutes", ())),
            queue_samples=tuple((float(t), float(q)) for t, q in f.get("queue_samples", ())),
            active_since_s=None if f.get("active_since_s") is None else float(f["active_since_s"]),
        )
        for key, f in raw.get("forecasts", {}).items()
    }
    history = {
        svc: {var: tuple((float(t), int(n)) for t, n in items) for var, items in per.items()}
        for svc, per in raw.get("history", {}).items()
    }
    return PlannerState(
        last_replicas=raw.get("last_replicas", {}),
        last_nodes=raw.get("last_nodes", {}),
        history=history,
        capacity_rps=raw.get("capacity_rps", {}),
        forecasts=forecasts,
        last_active_s=raw.get("last_active_s", {}),
        pool_scale_up_s=raw.get("pool_scale_up_s", {}),
        pool_surplus_since_s=raw.get("pool_surplus_since_s", {}),
        headroom=raw.get("headroom", {}),
        backlog_until_s=raw.get("backlog_until_s", {}),
        missed_slo_s=raw.get("missed_slo_s", {}),
        capacity_ceiling={
            svc: {var: (float(rps), float(t)) for var, (rps, t) in per.items()}
            for svc, per in raw.get("capacity_ceiling", {}).items()
        },
        excess_paid={
            svc: (float(usd), float(t)) for svc, (usd, t) in raw.get("excess_paid", {}).items()
        },
        queued_since_s={k: float(t) for k, t in raw.get("queued_since_s", {}).items()},
        too_slow={
            svc: {var: (float(lat), float(a), float(b)) for var, (lat, a, b) in per.items()}
            for svc, per in raw.get("too_slow", {}).items()
        },
    )
