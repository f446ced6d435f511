"""An InferenceService's status: replicas, cost, metrics, conditions and the last decision."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from infscale.api import v1alpha1
from infscale.controller import convert, desired, service_view
from infscale.domain import energy, model, pricing
from infscale.ports import metrics


def _usd_per_hour(
    service: model.ServiceSpec,
    pools: Mapping[str, model.PoolSpec],
    replicas: Mapping[str, int],
) -> float | None:
    """status.usdPerHour: the planner's node-share cost of ``replicas``; None (absent) when a
    replica fits no node of its pool, which the planner's model gives no finite cost."""
    usd = pricing.share_usd_per_hour(replicas, service, pools)
    return round(usd, 4) if math.isfinite(usd) else None


def _energy(
    service: model.ServiceSpec,
    pools: Mapping[str, model.PoolSpec],
    ready: Mapping[str, int],
    observed: metrics.ServiceMetrics | None,
    usd_per_hour: float | None,
) -> energy.ServiceEnergy:
    """The Ready replicas' draw at their measured load, and the figures per million requests."""
    signals = observed.variants if observed else {}
    return energy.service_energy(
        service,
        pools,
        ready,
        {v.name: signals[v.name].rps if v.name in signals else None for v in service.variants},
        observed.total.rps if observed else None,
        usd_per_hour,
    )


def missing_pools_message(missing_pools: Sequence[str]) -> str:
    """Why some variants get no replicas, in words."""
    if len(missing_pools) == 1:
        return (
            f"InferenceNodePool {missing_pools[0]} does not exist; its variants get no replicas "
            "until it is created"
        )
    return (
        f"InferenceNodePools {', '.join(missing_pools)} do not exist; their variants get no "
        "replicas until they are created"
    )


def service_status(
    *,
    view: service_view.ServiceView,
    unschedulable: str,
    pools: Mapping[str, v1alpha1.InferenceNodePoolSpec],
    plan: Mapping[str, int],
    plan_reason: str,
    observed: metrics.ServiceMetrics | None,
    asleep: bool,
    applied: Mapping[str, int],
    missing_pools: Sequence[str],
    rejected: Sequence[str],
    now: str,
    quality: float | None = None,
    floor_usd_per_hour: float | None = None,
    weights: Mapping[str, int] | None = None,
    window_s: float = 60.0,
    capacity_rps: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The status as this cycle sees it: ``plan`` is the recommendation, ``applied`` what the
    Deployments were given; ``window_s``, the rates' window, sets how many requests the
    latency was measured on."""
    spec = view.spec
    metadata = view.body["metadata"]
    generation = metadata.get("generation")
    old: Mapping[str, Any] = view.body.get("status") or {}
    previous = old.get("conditions") or []
    current = {d.variant: d for d in view.owned}
    ready = {
        v.name: (current[v.name].ready_replicas if v.name in current else 0) for v in spec.variants
    }
    total_desired = sum(applied.values())
    total_ready = sum(ready.values())

    decision = view.hold or plan_reason
    last = old.get("lastDecision") or {}
    last_decision = (
        dict(last) if last.get("reason") == decision else {"time": now, "reason": decision}
    )

    def cond(kind: str, state: bool | None, reason: str, message: str) -> dict[str, Any]:
        return desired.condition(
            kind, state, reason, message, previous=previous, now=now, generation=generation
        )

    conditions = [
        _ready_condition(cond, rejected, total_ready, total_desired),
        _metrics_condition(cond, observed, asleep),
        _slo_condition(cond, observed, spec.slo, _was(previous, "SLOMet"), window_s),
        _capacity_condition(cond, missing_pools, unschedulable),
    ]
    total = observed.total if observed else metrics.Signals()
    service = convert.service_spec(
        metadata["namespace"], metadata["name"], spec, sum(applied.values())
    )
    pool_map = convert.pool_specs(pools, convert.hour_utc(now))
    usd_per_hour = _usd_per_hour(service, pool_map, applied)
    drawn = _energy(service, pool_map, ready, observed, usd_per_hour)
    recommendation = None
    if view.held:
        recommendation = ", ".join(f"{v}={n}" for v, n in plan.items()) + f" ({plan_reason})"
    return {
        "observedGeneration": generation,
        "replicas": total_desired,
        "readyReplicas": total_ready,
        "selector": desired.selector(metadata["name"]),
        "usdPerHour": usd_per_hour,
        "powerWatts": _rounded(drawn.watts),
        "usdPerMillionRequests": _rounded(drawn.usd_per_million),
        "kwhPerMillionRequests": _rounded(drawn.kwh_per_million),
        "gramsCo2PerMillionRequests": _rounded(drawn.g_co2_per_million),
        **desired.accrued_energy(old, now),
        "observedRps": _rounded(total.rps),
        "arrivalRps": _rounded(observed.arrival_rps if observed else None),
        "observedLatencySeconds": _rounded(total.latency_s),
        "sloAttainment": _rounded(total.slo_attainment),
        "quality": _rounded(quality),
        "qualityFloorUsdPerHour": _rounded(floor_usd_per_hour),
        "variants": [
            {
                "name": v.name,
                "desiredReplicas": applied[v.name],
                "readyReplicas": ready[v.name],
                "powerWatts": _rounded(drawn.variant_watts.get(v.name)),
                "capacityRps": _significant((capacity_rps or {}).get(v.name)),
                **({"weight": weights.get(v.name, 0)} if weights is not None else {}),
            }
            for v in spec.variants
        ],
        "conditions": conditions,
        "lastDecision": last_decision,
        "recommendation": recommendation,
    }


ASLEEP_METRICS = (
    "no replica runs, so no server reports requests: the rate reads as 0 until one starts"
)


def _significant(value: float | None) -> float | None:
    """Two significant digits: a learned capacity moves about 2 % a sample, and every move
    would be a status write."""
    return None if value is None else float(f"{value:.2g}")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _ready_condition(
    cond: Any, rejected: Sequence[str], total_ready: int, total_desired: int
) -> dict[str, Any]:
    if rejected:
        return dict(cond("Ready", False, "DeploymentRejected", "; ".join(rejected)[:1000]))
    message = f"{total_ready}/{total_desired} replicas ready"
    if total_ready >= total_desired:
        return dict(cond("Ready", True, "ReplicasReady", message))
    return dict(cond("Ready", False, "ReplicasStarting", message))


def _capacity_condition(
    cond: Any, missing_pools: Sequence[str], unschedulable: str
) -> dict[str, Any]:
    if missing_pools:
        message = missing_pools_message(missing_pools)
        return dict(cond("CapacityAvailable", False, "NodePoolNotFound", message))
    if unschedulable:
        return dict(cond("CapacityAvailable", False, "PodsUnschedulable", unschedulable))
    return dict(cond("CapacityAvailable", True, "NodePoolsFound", "every node pool exists"))


def _metrics_condition(
    cond: Any, observed: metrics.ServiceMetrics | None, asleep: bool
) -> dict[str, Any]:
    if observed is None:
        return dict(cond("MetricsAvailable", None, "NoMetricsSource", "no metrics read yet"))
    if asleep and not observed.available:
        return dict(cond("MetricsAvailable", True, "Asleep", ASLEEP_METRICS))
    if not observed.available:
        reason = observed.unknown[0] if observed.unknown else "request rate unknown"
        return dict(cond("MetricsAvailable", False, "MetricsUnknown", reason[:500]))
    detail = "; ".join(observed.unknown)[:500] or "request rate and latency read"
    return dict(cond("MetricsAvailable", True, "MetricsRead", detail))


def _was(conditions: Sequence[Mapping[str, Any]], kind: str) -> bool | None:
    """The state a condition had (None: unknown or absent)."""
    for c in conditions:
        if c.get("type") == kind:
            return {"True": True, "False": False}.get(str(c.get("status")))
    return None


def _slo_condition(
    cond: Any,
    observed: metrics.ServiceMetrics | None,
    slo: v1alpha1.Slo,
    was: bool | None,
    window_s: float,
) -> dict[str, Any]:
    """SLOMet: the latency at the SLO's percentile within its threshold. It turns only on a
    clear crossing: where the share of requests within the threshold is within three standard
    deviations (binomial, over the requests of the window) of the percentile, it keeps its
    state and says so (a quiet service's dozen requests move its p95 across the threshold
    from one cycle to the next, and each turn would be a status write)."""
    threshold_s = slo.limit_seconds
    latency = observed.total.latency_s if observed else None
    if latency is None:
        quiet = observed is not None and observed.available and not observed.total.rps
        if quiet and was:  # a window without requests breaks no SLO: met stays met, no write
            return dict(cond("SLOMet", True, "WithinSLO", "no requests in the window"))
        return dict(
            cond("SLOMet", None, "NoLatency", "no latency observed (no traffic or no data)")
        )
    met = latency <= threshold_s
    said = f"{latency:.3f} s {'<=' if met else '>'} {threshold_s} s"
    total = observed.total if observed else metrics.Signals()
    if was is not None and met != was and total.slo_attainment is not None and total.rps:
        target = slo.percentile / 100.0
        requests = total.rps * window_s
        noise = 3.0 * math.sqrt(target * (1.0 - target) / max(requests, 1.0))
        attained = total.slo_attainment
        if abs(attained - target) <= noise:
            met = was
            said += (
                f", within the noise of {requests:.0f} requests ({attained:.1%} within the "
                f"threshold, p{slo.percentile:g} target {target:.1%} +- {noise:.1%})"
            )
    if met:
        return dict(cond("SLOMet", True, "WithinSLO", said))
    return dict(cond("SLOMet", False, "OverSLO", said))


# Status fields that follow live measurements. A status is a summary for `kubectl get` and
# GitOps tools, not a gauge (the operator's /metrics has the live values): the request rates are
# rewritten only when they move beyond their counting noise (four standard deviations of the
# difference of two Poisson counts over the rate window: at three, a fleet of 1,000 quiet
# services rewrote 16 a cycle) and by more than ``LIVE_CHANGE`` of their size; the
# latency, the attainment and the last decision's wording are refreshed with any other change
# (replicas, readiness, a condition such as SLOMet turning, the planner's memory), never alone:
# at 0.2 requests/s a 60 s window holds a dozen requests, whose 95th percentile wanders by half
# a 0.5 s SLO from one cycle to the next, and one slow request moves their attainment by 0.08.
# A steady service costs no API write per cycle.
LIVE_CHANGE = 0.25
NOISE_SIGMAS = 4.0
_LIVE_MESSAGES = ("MetricsAvailable", "SLOMet")
_MEASURED_ON_REQUESTS = ("observedLatencySeconds", "sloAttainment")
"""Kept as last measured through a window without requests (each gap and return would be a
write: a quiet service has them every other minute)."""
_REFRESHED_WITH_THE_REST = (
    "observedLatencySeconds",
    "sloAttainment",
    "quality",  # moves with the learned capacities
    "qualityFloorUsdPerHour",  # moves with the demand
    "powerWatts",  # the energy figures move with the load
    "usdPerMillionRequests",
    "kwhPerMillionRequests",
    "gramsCo2PerMillionRequests",
)


_WRITTEN_WHEN_MOVED = (
    "powerWatts",
    "usdPerMillionRequests",
    "kwhPerMillionRequests",
    "gramsCo2PerMillionRequests",
)
"""Refreshed with the rest, and on their own once they move by more than LIVE_CHANGE (the
energy meter likewise: meter_kept)."""


METER_STEP_KWH = 0.01
"""An energy meter is written on its own only once it has grown by this much too (6 min of a
100 W draw): a new meter at 0 would otherwise be written every cycle at first."""


def moved(old: Any, new: Any, at_least: float = 0.0) -> bool:
    """Whether two known figures differ by more than ``LIVE_CHANGE`` of the old one (and by
    more than ``at_least``)."""
    if not isinstance(old, int | float) or not isinstance(new, int | float):
        return False
    return abs(new - old) > max(LIVE_CHANGE * abs(old), at_least)


def meter_kept(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The energy meter (``energyKwh``, ``energyAccruedAt``) of ``old`` where ``new``'s has not
    grown by a quarter and by METER_STEP_KWH: then it is no reason to write. Empty otherwise
    (``new``'s stands)."""
    if "energyKwh" not in old or moved(old["energyKwh"], new.get("energyKwh"), METER_STEP_KWH):
        return {}
    return {"energyKwh": old["energyKwh"], "energyAccruedAt": old.get("energyAccruedAt")}


def settled(old: Mapping[str, Any], new: Mapping[str, Any], window_s: float) -> dict[str, Any]:
    """``new`` with its live fields put back to ``old``'s where they have not moved materially:
    equal to ``old`` (times aside) exactly when no write is needed. ``window_s``: the range of
    the rates' PromQL rate()."""
    result = dict(new)
    for key in ("observedRps", "arrivalRps"):
        if key in old and not _rate_moved(old[key], new.get(key), window_s):
            result[key] = old[key]
    idle = new.get("observedRps") == 0  # a window without requests measures no latency
    for key in _REFRESHED_WITH_THE_REST:
        unmeasured = idle and key in _MEASURED_ON_REQUESTS and new.get(key) is None
        if key in _WRITTEN_WHEN_MOVED and moved(old.get(key), new.get(key)):
            continue  # a tariff, a carbon curve or the load moved it materially
        if key in old and ((old[key] is None) == (new.get(key) is None) or unmeasured):
            result[key] = old[key]
    result.update(meter_kept(old, new))
    drawn = {v.get("name"): v.get("powerWatts") for v in old.get("variants") or []}
    result["variants"] = [
        {**v, "powerWatts": drawn[v["name"]]}
        if v.get("name") in drawn and (drawn[v["name"]] is None) == (v.get("powerWatts") is None)
        else v
        for v in new.get("variants") or []
    ]
    if old.get("lastDecision"):
        result["lastDecision"] = old["lastDecision"]
    if _plan_part(old.get("recommendation")) == _plan_part(new.get("recommendation")):
        result["recommendation"] = old.get("recommendation")
    before = {c.get("type"): c for c in old.get("conditions") or []}
    conditions = []
    for cond in new.get("conditions") or []:
        was = before.get(cond["type"])
        same = was is not None and all(was.get(k) == cond[k] for k in ("status", "reason"))
        if same and cond["type"] in _LIVE_MESSAGES:
            cond = {**cond, "message": was.get("message")}  # type: ignore[union-attr]
        conditions.append(cond)
    result["conditions"] = conditions
    return result


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """The status fields (a condition by its type, ``conditions/SLOMet``) that differ between
    two statuses, timestamps aside: why a status is written."""
    before, after = desired.without_times(old), desired.without_times(new)
    changed = {
        key
        for key in before.keys() | after.keys()
        if key != "conditions" and before.get(key) != after.get(key)
    }
    old_conditions = {c.get("type"): c for c in before.get("conditions") or []}
    new_conditions = {c.get("type"): c for c in after.get("conditions") or []}
    changed |= {
        f"conditions/{kind}"
        for kind in old_conditions.keys() | new_conditions.keys()
        if old_conditions.get(kind) != new_conditions.get(kind)
    }
    return tuple(sorted(changed))


def _rate_moved(old: Any, new: Any, window_s: float) -> bool:
    if old is None or new is None:
        return old is not new
    old_rps, new_rps = float(old), float(new)
    high = max(abs(old_rps), abs(new_rps))
    # Both readings are counts over the window: the sd of their difference, in requests/s.
    noise = NOISE_SIGMAS * math.sqrt((abs(old_rps) + abs(new_rps)) / max(window_s, 1.0))
    return abs(new_rps - old_rps) > max(noise, LIVE_CHANGE * high)


def _plan_part(recommendation: Any) -> Any:
    return recommendation.split(" (", 1)[0] if isinstance(recommendation, str) else recommendation
