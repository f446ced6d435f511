"""Operator settings: a typed model with a reason for every default."""

from __future__ import annotations

import dataclasses
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from infscale.domain import tuning as planner_settings


class PlannerTuning(BaseModel):
    """The planner's knobs a platform team may tune: the chart's `planner` values, the CLI's
    `--planner` JSON. A field left unset keeps the planner's default (in brackets)."""

    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True,
        use_attribute_docstrings=True, extra="forbid",
    )  # fmt: skip

    margin_sigmas: float | None = Field(default=None, ge=0, le=10)
    """Uncertainty margin on forecast demand, in standard deviations of the forecast error [1]."""
    target_utilization: float | None = Field(default=None, gt=0, le=1)
    """Share of the planned capacity that forecast demand may use [1: capacityRps is already
    the rate at which the SLO holds]."""
    peak_hold_seconds: float | None = Field(default=None, ge=0, le=86400)
    """A burst is held at least this long, and at most the lead time of new capacity [60]."""
    peak_hold_max_seconds: float | None = Field(default=None, ge=0, le=86400)
    """Upper bound of that hold, however slow the pool [900]."""
    season_seconds: float | None = Field(default=None, ge=0, le=604800)
    """Period of recurring bursts provisioned for ahead of their return; 0 turns it off [3600:
    timer-triggered work on the hour]."""
    season_periods: int | None = Field(default=None, ge=1, le=48)
    """Periods in a row a burst must recur before it is provisioned for ahead [2]."""
    headroom_max: float | None = Field(default=None, ge=1, le=10)
    """Most extra demand that SLO misses may add, as a multiple of the forecast [2]."""
    switch_weight: float | None = Field(default=None, ge=0, le=100)
    """Weight of new replicas' cold start in the cost the planner minimises [3]."""
    move_after_paid: float | None = Field(default=None, ge=0, le=100)
    """A move to a cheaper variant is made once the dearer allocation has cost this multiple of
    what the move costs [1]."""
    skip_dominated: bool | None = None
    """Plan a variant only where another cannot be had that serves an rps for less, is Ready as
    soon, holds as much per replica, runs on the same capacity type and scores no lower [true:
    the dominated variant's only gain is a smaller step at light load, paid for with the slack
    for the next rise]."""
    solver_time_limit_seconds: float | None = Field(default=None, gt=0, le=60)
    """Time limit of the MILP solver per cycle; past it the cheapest of the solver's best so far,
    its LP relaxation rounded and the greedy plan is used [0.3]."""
    time_scale: float | None = Field(default=None, ge=1, le=1000)
    """For traffic replayed faster than real time (the demo): every duration of the planner's
    own (memories, holds, forecast time constants, the fields above included) is divided by
    this; leave it unset in production [1]."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        self.apply()  # raises on a combination that no planner could run with
        return self

    def apply(
        self, base: planner_settings.PlannerSettings | None = None
    ) -> planner_settings.PlannerSettings:
        """``base`` (default: the planner's defaults) with every field set here replaced."""
        changes = {
            PLANNER_FIELD_NAMES.get(name, name): value
            for name, value in self.model_dump(exclude_none=True, exclude={"time_scale"}).items()
        }
        result = dataclasses.replace(base or planner_settings.PlannerSettings(), **changes)
        if self.time_scale:
            result = result.compressed(self.time_scale)
        if result.peak_hold_s > result.peak_hold_max_s:
            raise ValueError(
                f"planner.peakHoldSeconds ({result.peak_hold_s:g}) exceeds "
                f"planner.peakHoldMaxSeconds ({result.peak_hold_max_s:g})"
            )
        return result


PLANNER_FIELD_NAMES = {
    "peak_hold_seconds": "peak_hold_s",
    "peak_hold_max_seconds": "peak_hold_max_s",
    "season_seconds": "season_s",
    "solver_time_limit_seconds": "solver_time_limit_s",
}
"""PlannerTuning names that differ from PlannerSettings' (whose units are suffixes)."""


class OperatorSettings(BaseModel):
    """How the operator runs. The Helm chart's values map onto these fields."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True, extra="forbid")

    interval_seconds: float = Field(default=15.0, gt=0, le=3600)
    """Seconds between reconcile cycles (default 15: Prometheus' usual scrape interval, so each
    cycle sees fresh samples). Changes to watched objects also start a cycle at once."""
    debounce_seconds: float = Field(default=0.5, ge=0, le=60)
    """Seconds to wait after a change before reconciling, so a burst of events (an apply of many
    objects) costs one cycle, not one per object (default 0.5)."""
    max_node_changes_per_cycle: int = Field(default=2, ge=1, le=100)
    """Nodes removed per pool per cycle at most, and added at most this many or as many as the
    pool has, whichever is more (default 2): a pool may double each cycle on a legitimate ramp,
    while a pool with a node not Ready after twice its provisioning time (a runaway input) adds
    only this many per cycle."""
    write_concurrency: int = Field(default=8, ge=1, le=64)
    """Services reconciled (Deployments, status, Events written) at once per cycle (default 8):
    a cycle of 1,000 services is mostly API round trips, and one at a time they outlast a 15 s
    interval; more than a few dozen in flight only queue at the API server."""
    node_scale_down_cooldown_seconds: float = Field(default=120.0, ge=0, le=86400)
    """A node must be empty this long, and its pool must not have grown within it, before it is
    removed (default 120 s). The planner already keeps the nodes its forecast (held peaks
    included) needs, and releases a surplus only after 120 s empty and 180 s after the pool
    last grew; this is the same rule at the node. Cluster Autoscaler's 10 min would cost
    5-12 % more on the benchmark's three-pool traces."""
    prometheus_url: str | None = None
    """Prometheus base URL; without it no metrics are read and services keep replicas.min."""
    prometheus_bearer_token_file: str | None = None
    """File holding a bearer token for Prometheus (a mounted Secret); never logged."""
    prometheus_basic_auth_file: str | None = None
    """File holding `user:password` for Prometheus basic auth (a mounted Secret); never logged."""
    prometheus_ca_file: str | None = None
    """CA bundle that signs Prometheus' TLS certificate (a mounted Secret or ConfigMap)."""
    prometheus_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """Seconds one PromQL query may take (default 10). A hung Prometheus costs one timeout per
    cycle: the rest of that round is skipped and every signal is unknown."""
    metrics_rate_window_seconds: int = Field(default=60, ge=5, le=3600)
    """Window of the PromQL rate() over counters and histograms (default 60 s: four scrapes at
    Prometheus' usual 15 s interval)."""
    metrics_staleness_seconds: float = Field(default=90.0, gt=0, le=3600)
    """A pod's series older than this is stale, hence unknown (default 90 s: six 15 s scrapes)."""
    planner_memory_save_seconds: float = Field(default=300.0, ge=0, le=86400)
    """Seconds between saves of what the planner has learned of each service (its forecast,
    hourly bursts and capacities) in the service's `status.plannerMemory`, from which a
    restarted operator or a new leader goes on (default 300: one status write per service per
    5 min; 0 never saves, and a restart then relearns from scratch)."""
    arrival_rate_query: str | None = Field(default=None, min_length=1, max_length=2000)
    """PromQL for every service's arrival rate in front of its servers (a gateway's counter),
    with `$namespace` and `$service` standing for the service's namespace and name, e.g.
    `sum(rate(istio_requests_total{reporter="destination",destination_service_namespace=
    "$namespace",destination_service_name="$service"}[1m]))`. With it, a service scaled to zero
    wakes when requests arrive (default none: only servers' metrics are read). A service's own
    `spec.metrics.arrivalRateQuery` wins over it."""
    service_arrival_queries: bool = True
    """Whether a service's `spec.metrics.arrivalRateQuery` is run (default true). Its PromQL runs
    with the operator's Prometheus credentials, so an application team could read other teams'
    series through its status: in a cluster whose tenants must not, set false and use
    `arrival_rate_query`."""
    namespaces: tuple[str, ...] = ()
    """Namespaces whose InferenceServices are managed; empty means all (the default)."""
    pools: tuple[str, ...] = ()
    """InferenceNodePools whose nodes this operator sizes; empty means all (the default). Every
    pool stays known to the planner; shards (one release per group of namespaces) split the
    pools too, so each pool has exactly one operator adding and removing its nodes."""
    planner: PlannerTuning = PlannerTuning()
    """The planner's tuning; unset fields keep its defaults."""
