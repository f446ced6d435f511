"""Online learning of per-replica capacity (requests/s at the SLO), bounded and damped.

A sample is one cycle's (per-replica rate, latency at the SLO percentile) of a variant with Ready
replicas. Latency over the SLO at a rate below the estimate proves the estimate too high; latency
well under the SLO at a rate above the estimate proves it too low. Latency while the service
as a whole is overloaded is blamed on the backlog, not on the capacity. Anything else says nothing
(a lightly loaded replica meeting its SLO tells us nothing about its limit; one loaded to
``capacity_probe_utilization`` of its estimate and still well inside the SLO nudges it up). Each
update moves a fraction of the way, by at most a bounded step, within fixed multiples of the
spec's figure, so one bad sample cannot swing the plan. A rate at which a variant was seen too
slow is remembered for a while as a ceiling that upward probes stay under: without it a probe
that overshot is repeated as soon as the damped correction lets latency recover.
"""

from __future__ import annotations

from infscale.domain import model, tuning


def too_slow_at(
    current_rps: float,
    obs: model.VariantObservation | None,
    slo_latency_s: float,
    overloaded: bool = False,
    too_few_requests: bool = False,
) -> float | None:
    """The per-replica rate at which this sample shows the variant over its SLO, if it does.

    ``overloaded`` says the service received more than its Ready replicas were believed to
    handle: latency over the SLO is then explained by the backlog, not by a wrong capacity.
    ``too_few_requests``: the service's window holds too few requests to place the SLO
    percentile (:func:`evidence.too_few_requests`): one slow request is not a wrong capacity.
    """
    if obs is None or obs.rps is None or obs.latency_s is None or obs.ready_replicas <= 0:
        return None
    if too_few_requests:
        return None
    per_replica_rps = obs.rps / obs.ready_replicas
    if overloaded or obs.latency_s <= slo_latency_s or per_replica_rps >= current_rps:
        return None
    return per_replica_rps


def learn(
    current_rps: float,
    variant: model.VariantSpec,
    obs: model.VariantObservation | None,
    slo_latency_s: float,
    cfg: tuning.PlannerSettings,
    overloaded: bool = False,
    ceiling_rps: float | None = None,
    too_few_requests: bool = False,
) -> float:
    """The capacity estimate after one observation (unchanged on unknown or uninformative data).

    ``overloaded``, ``too_few_requests``: see :func:`too_slow_at`. ``ceiling_rps``: a
    per-replica rate at which the variant was lately too slow; upward probes stay below
    ``capacity_ceiling_fraction`` of it.
    """
    if obs is None or obs.rps is None or obs.latency_s is None or obs.ready_replicas <= 0:
        return current_rps
    per_replica_rps = obs.rps / obs.ready_replicas
    too_slow = (
        too_slow_at(current_rps, obs, slo_latency_s, overloaded, too_few_requests) is not None
    )
    fast_enough = obs.latency_s <= cfg.capacity_ok_latency_fraction * slo_latency_s
    near_estimate = per_replica_rps >= cfg.capacity_probe_utilization * current_rps
    if not (too_slow or (fast_enough and near_estimate)):
        return current_rps
    if too_slow and current_rps > variant.capacity_rps:
        # What probes gained above the spec is given back at once, down to the spec at most:
        # an overshoot costs the SLO every cycle it stands, and the spec is the cautious prior.
        return max(variant.capacity_rps, per_replica_rps)
    if too_slow:
        candidate = per_replica_rps
    else:
        # Near the estimate and still fast: there is room above it. The planner never loads a
        # replica past its estimate, so without this probe a cautious spec is never corrected.
        limit = cfg.capacity_probe_max_factor * variant.capacity_rps
        if ceiling_rps is not None:
            limit = min(limit, cfg.capacity_ceiling_fraction * ceiling_rps)
        step_up = current_rps * (1.0 + cfg.capacity_max_step_fraction)
        candidate = min(max(per_replica_rps, step_up), limit)
        if candidate <= current_rps:
            return current_rps
    step = cfg.capacity_learning_rate * (candidate - current_rps)
    max_step = cfg.capacity_max_step_fraction * current_rps
    updated = current_rps + max(-max_step, min(max_step, step))
    low = cfg.capacity_min_factor * variant.capacity_rps
    high = cfg.capacity_max_factor * variant.capacity_rps
    return max(low, min(high, updated))
