"""Translations between the API objects and the planner's and metrics' vocabularies."""

from __future__ import annotations

import datetime
import math
import string
from collections.abc import Mapping, Sequence

from infscale.api import quantity, v1alpha1
from infscale.domain import energy, model
from infscale.ports import metrics


def hour_utc(now: float | str) -> int:
    """The hour of the day, UTC, of a wall-clock time in seconds or as an RFC 3339 stamp (a
    pool's power schedule is by it)."""
    if isinstance(now, str):
        stamp = datetime.datetime.fromisoformat(now.replace("Z", "+00:00"))
        return stamp.astimezone(datetime.UTC).hour
    return int(now // 3600 % 24)


def pool_specs(
    pools: Mapping[str, v1alpha1.InferenceNodePoolSpec], hour: int | None = None
) -> dict[str, model.PoolSpec]:
    """The planner's view of the pools, by name (power figures of ``hour``, UTC)."""
    return {name: pool_spec(name, spec, hour) for name, spec in pools.items()}


def pool_spec(
    name: str, spec: v1alpha1.InferenceNodePoolSpec, hour: int | None = None
) -> model.PoolSpec:
    """One pool as the planner sees it; a power schedule's figures of ``hour`` (UTC; None: the
    constant ones)."""
    node = quantity.node_resources(spec.node.capacity)
    return model.PoolSpec(
        name=name,
        node=node,
        usd_per_hour=spec.usd_per_hour,
        min_nodes=spec.min_nodes,
        max_nodes=spec.max_nodes,
        provisioning_s=float(spec.provisioning_seconds),
        power=_power(spec.power, node, hour),
        spot=spec.capacity_type is v1alpha1.CapacityType.SPOT,
        interruptions_per_hour=spec.interruptions_per_hour or 0.0,
        standby_max_nodes=0 if spec.standby is None else spec.standby.max_nodes,
        standby_warm=spec.standby is not None and spec.standby.warm,
    )


def _power(
    power: v1alpha1.NodePower | None, node: model.Resources, hour: int | None
) -> model.Power | None:
    declared = None
    if power is not None:
        usd_per_kwh, grams = power.at_hour(hour)
        by_hour = tuple(power.at_hour(h) for h in range(24)) if power.schedule else ()
        declared = model.Power(power.idle_watts, power.max_watts, usd_per_kwh, grams, by_hour)
    return energy.node_power(declared, node)


def service_spec(
    namespace: str,
    name: str,
    spec: v1alpha1.InferenceServiceSpec,
    current_total: int,
    acting: bool = True,
) -> model.ServiceSpec:
    """The planner's view of a service; `current_total` turns the percent step into replicas;
    `acting` is False in Recommend mode or while paused."""
    step = max(1, math.floor(current_total * spec.scale_down.max_step_percent / 100))
    fallback = (
        model.Fallback("fixed", spec.fallback.replicas or 0)
        if spec.fallback.policy is v1alpha1.FallbackPolicy.FIXED
        else model.Fallback("hold")
    )
    batch = spec.slo.slo_class is v1alpha1.SloClass.BATCH
    return model.ServiceSpec(
        namespace=namespace,
        name=name,
        variants=tuple(variant_spec(v) for v in spec.variants),
        slo_latency_s=spec.slo.limit_seconds,
        slo_percentile=spec.slo.percentile,
        min_replicas=spec.replicas.min,
        max_replicas=spec.replicas.max,
        scale_down_stabilization_s=float(spec.scale_down.stabilization_seconds),
        scale_down_max_step=step,
        idle_timeout_s=float(spec.replicas.idle_timeout_seconds),
        fallback=fallback,
        quality_floor=spec.quality.floor if spec.quality else None,
        quality_average=bool(spec.quality and spec.quality.mode is v1alpha1.QualityMode.AVERAGE),
        routing="weighted" if spec.routing is not None else "spread",
        carbon_usd_per_tonne=spec.objective.carbon_usd_per_tonne if spec.objective else 0.0,
        spot_max_share=spot_share
        if (spot_share := spec.spot.max_share) is not None
        else (1.0 if batch else 0.5),
        deadline_s=spec.slo.deadline_seconds if batch else None,
        acting=acting,
    )


def variant_spec(variant: v1alpha1.Variant) -> model.VariantSpec:
    return model.VariantSpec(
        name=variant.name,
        pool=variant.node_pool,
        resources=quantity.pod_resources(variant.resources),
        capacity_rps=variant.capacity_rps,
        startup_s=float(variant.startup_seconds),
        quality=variant.quality,
    )


def service_query(
    namespace: str, name: str, spec: v1alpha1.InferenceServiceSpec, arrival_query: str | None
) -> metrics.ServiceQuery:
    return metrics.ServiceQuery(
        namespace=namespace,
        service=name,
        preset=spec.metrics.preset.value,
        slo_metric=spec.slo.metric.value,
        percentile=spec.slo.percentile,
        threshold_s=spec.slo.limit_seconds,
        request_counter=spec.metrics.request_counter,
        latency_histogram=spec.metrics.latency_histogram,
        queue_gauge=spec.metrics.queue_gauge,
        arrival_rate_query=arrival_query,
    )


def arrival_query(
    namespace: str,
    name: str,
    spec: v1alpha1.InferenceServiceSpec,
    template: str | None,
    service_queries: bool,
) -> str | None:
    """The service's arrival-rate PromQL: its own (where the operator allows it), else the
    operator's template with `$namespace` and `$service` filled in (names are DNS labels, safe in
    a PromQL string; other `$` text, as label_replace's `$1`, is left as it is)."""
    if spec.metrics.arrival_rate_query and service_queries:
        return spec.metrics.arrival_rate_query
    if template:
        return string.Template(template).safe_substitute(namespace=namespace, service=name)
    return None


def is_asleep(
    spec: v1alpha1.InferenceServiceSpec, ready: Mapping[str, int], desired: Mapping[str, int]
) -> bool:
    """Scaled to zero: replicas.min is 0 and no replica runs or is due."""
    return spec.replicas.min == 0 and not any(ready.values()) and not any(desired.values())


def observation(
    observed: metrics.ServiceMetrics | None,
    variants: Sequence[str],
    ready: Mapping[str, int],
    desired: Mapping[str, int],
    arrivals_expected: bool = False,
    asleep: bool = False,
) -> model.Observation:
    """What the planner sees; a variant without Ready pods serves nothing (a known zero).

    The service's rate is the larger of the servers' completions and the arrival-rate query
    (``arrivals_expected``: the service has one). A service ``asleep`` (see :func:`is_asleep`)
    completes nothing: a known zero and no loss of metrics (so no fallback wakes it), unless its
    arrival rate is asked for and unknown. (A new service with min 1 or more that has
    no replica yet has not started: its rate is unknown until its servers report.)
    """
    total = observed.total if observed else metrics.Signals()
    per_variant = {}
    for name in variants:
        signals = observed.variants.get(name) if observed else None
        rps = signals.rps if signals else None
        if rps is None and observed is not None and observed.available and ready.get(name, 0) == 0:
            rps = 0.0
        per_variant[name] = model.VariantObservation(
            ready_replicas=ready.get(name, 0),
            desired_replicas=desired.get(name, 0),
            rps=rps,
            latency_s=signals.latency_s if signals else None,
        )
    # The servers count completions, a gateway counts arrivals: the larger is the demand (a
    # queue hides arrivals from completions; at zero replicas only the gateway sees traffic).
    arrivals = observed.arrival_rps if observed else None
    if asleep and arrivals_expected and arrivals is None:
        rps = None  # requests may be arriving that nothing sees
    else:
        completions = 0.0 if asleep and total.rps is None else total.rps
        rps = max((r for r in (completions, arrivals) if r is not None), default=None)
    return model.Observation(
        rps=rps,
        latency_s=total.latency_s,
        slo_attainment=total.slo_attainment,
        variants=per_variant,
        queued=total.queue,
    )
