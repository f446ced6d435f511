"""A service's demand for one decision: what its observation says (:mod:`evidence`), its
forecast over the lead time (:mod:`forecast`, the hold for the fastest path back, recurring
bursts, headroom after misses, a backlog to clear) and the bounds on its replicas, as the
optimiser's ``Demand``; with the memory the planner keeps for the service. The first stage of
:func:`infscale.domain.planner.plan`."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from infscale.domain import capacity, evidence, forecast, model, optimize, pricing, tuning


@dataclasses.dataclass(frozen=True)
class Cycle:
    """What every service's stage reads: the pools, which have a free node, the settings."""

    pools: Mapping[str, model.PoolSpec]
    free_pools: frozenset[str]
    state: model.PlannerState
    now_s: float
    cfg: tuning.PlannerSettings

    def cold_start_s(self, variant: model.VariantSpec) -> float:
        """Start-up, plus the pool's provisioning when it has no free node."""
        if variant.pool in self.free_pools:
            return variant.startup_s
        pool = self.pools.get(variant.pool)
        return variant.startup_s + (0.0 if pool is None else pool.provisioning_s)


@dataclasses.dataclass
class ServiceDemand:
    """One service's first stage: its demand for the optimiser and the memory it updates."""

    demand: optimize.Demand
    reasons: list[str]
    capacities: dict[str, float]
    forecast: model.ForecastState
    headroom: float
    known: bool
    unknown_why: str | None
    idle: bool
    scheduled: bool
    too_slow: dict[str, tuple[float, float, float]]
    ceiling: dict[str, tuple[float, float]]
    cover: optimize.Cover | None
    moving: bool
    last_active_s: float | None
    backlog_until_s: float | None
    missed_s: float | None
    unfloored: optimize.Demand | None = None  # with a quality floor: the demand without it
    queued_since_s: float | None = None  # a batch service: since when requests wait


@dataclasses.dataclass
class _Evidence:
    """What one service's observation says before its demand is forecast."""

    capacities: dict[str, float]
    ceiling: dict[str, tuple[float, float]]
    in_backlog: bool
    too_few_requests: bool
    backlog_until_s: float | None
    too_slow: dict[str, tuple[float, float, float]]
    slow: dict[str, tuple[float, float, float]]
    known: bool
    rps_known: bool
    unknown_why: str | None
    ready_rps: float


def service_demand(
    svc: model.ServiceSpec, obs: model.Observation, missed_s: float | None, cycle: Cycle
) -> ServiceDemand:
    """Stage one for one service: its evidence, its forecast demand over the lead time and the
    bounds on its replicas, as the optimiser's ``Demand``."""
    cfg, now_s, key = cycle.cfg, cycle.now_s, svc.key
    why: list[str] = []
    seen = _evidence(svc, obs, cycle, why)
    previous = cycle.state.forecasts.get(key, model.ForecastState())
    head = _headroom(svc, obs, seen, previous, cycle)
    lead_s = max((cycle.cold_start_s(v) for v in svc.variants), default=0.0)
    # Bursts that recur on the clock, per minute of the lead, from the memory before this
    # sample; the one due this minute explains a rate above the smooth level.
    profile = forecast.seasonal_profile(previous, now_s, lead_s, cfg)
    recurring = max(profile, default=0.0)
    arrival_rps = evidence.arrival_rps(previous, obs, now_s)
    fstate = _observe(previous, obs, arrival_rps, profile[0] if profile else 0.0, cycle, why)
    last_active_s = cycle.state.last_active_s.get(key)
    if seen.rps_known and ((obs.rps or 0.0) > 0 or last_active_s is None):
        last_active_s = now_s  # idle time counts from the first observation
    if obs.latency_s is not None and obs.latency_s > svc.slo_latency_s:
        missed_s = now_s
        _say_if_first_burst(svc, previous, arrival_rps, cycle, why)
    barred = _below_floor(svc, why)  # per request under the quality floor: no traffic
    feasible = [
        v for v in svc.variants if v.name not in seen.slow and v.name not in barred
    ] or list(svc.variants)
    last = cycle.state.last_replicas.get(key)
    # What one replica of each variant may carry; none for a variant too slow for the SLO.
    unfloored_rps = {
        v: 0.0 if v in seen.slow else c * cfg.target_utilization for v, c in seen.capacities.items()
    }
    usable_rps = {v: 0.0 if v in barred else c for v, c in unfloored_rps.items()}
    scheduled = False
    queued_since_s = _queued_since(svc, obs, cycle.state.queued_since_s.get(key), now_s)
    held = False
    if svc.batch:
        demand_rps = _batch_rps(svc, obs, last, usable_rps, lead_s, why)
        held = _wait_for_cheaper_hour(svc, obs, queued_since_s, lead_s, usable_rps, cycle, why)
    else:
        demand_rps = _forecast_rps(svc, fstate, lead_s, feasible, missed_s, cycle, why)
        if cfg.hold_keeps_only:
            demand_rps = _held_within_kept(fstate, demand_rps, last, usable_rps, cycle, why)
        scheduled = recurring > demand_rps
        if scheduled:
            why.append(
                f"a burst came at this time in each of the last {cfg.season_periods} periods of "
                f"{cfg.season_s:.0f} s: {recurring:.2f} rps expected within the lead"
            )
            demand_rps = recurring
        demand_rps *= head
        demand_rps = _backlog_rps(obs, seen, lead_s, demand_rps, cfg, why)
        if head > 1.0 + 1e-3:
            why.append(f"recent SLO misses: demand x{head:.2f} headroom")
    is_idle, min_total = _bounds(svc, obs, seen.known, last, last_active_s, recurring, now_s)
    if svc.batch and is_idle:
        why.append("batch: nothing queued or arriving: scale to zero")
    if held:
        is_idle, min_total = True, svc.min_replicas
    if is_idle:
        demand_rps = 0.0
    if not seen.rps_known:
        demand_rps, min_total = _unknown_rate(svc, obs, last, seen, demand_rps, min_total, why, cfg)
    planned_rps, fallback_rps = dominated(svc, usable_rps, cycle, why)
    dem = optimize.Demand(
        service=svc,
        demand_rps=demand_rps,
        capacity_rps=planned_rps,
        fallback_rps=fallback_rps,
        min_total=min(min_total, svc.max_replicas),
        max_total=svc.max_replicas,
        current=dict(last or {}),
        cold_start_s={v.name: cycle.cold_start_s(v) for v in svc.variants},
        loss_floor_rps=_loss_floor(svc, fstate, cycle, why),
    )
    cover, dem, moving = _cover(dem, cycle, why)
    serving = _serving(dem, cover, moving, cycle) if svc.routing == "spread" else None
    if serving is not None:
        dem = _only(dem, serving)
        peers = ", ".join(v for v, c in dem.capacity_rps.items() if c > 0)
        why.append(
            f"no route: a plain Service spreads requests evenly over the pods, so variants of "
            f"one speed serve ({peers}); spec.routing mixes variants by weight"
        )
    unfloored = None
    if svc.quality_floor is not None:  # the same demand without the floor: what the floor costs
        bare = dataclasses.replace(svc, quality_floor=None)
        unfloored_rps, unfloored_fallback = dominated(bare, unfloored_rps, cycle, [])
        unfloored = dataclasses.replace(
            dem, service=bare, capacity_rps=unfloored_rps, fallback_rps=unfloored_fallback
        )
        cheapest = optimize.cheapest_cover(unfloored, cycle.pools)
        alone = _serving(unfloored, cheapest, True, cycle) if svc.routing == "spread" else None
        if alone is not None:  # one variant serves there too: the cheapest alone
            unfloored = _only(unfloored, alone)
    if svc.carbon_usd_per_tonne > 0:
        why.append(
            f"objective: a tonne of CO2 at full power weighs ${svc.carbon_usd_per_tonne:g} "
            "beside the node price"
        )
    observed = "unknown" if obs.rps is None else f"{obs.rps:.2f}"
    why.append(
        f"demand {demand_rps:.2f} rps over a {lead_s:.0f} s lead (observed {observed} rps); "
        + ", ".join(f"{v} {c:.2f} rps/replica" for v, c in seen.capacities.items())
    )
    return ServiceDemand(
        demand=dem,
        reasons=why,
        capacities=seen.capacities,
        forecast=fstate,
        headroom=head,
        known=seen.known,
        unknown_why=seen.unknown_why,
        idle=is_idle,
        scheduled=scheduled,
        too_slow=seen.too_slow,
        ceiling=seen.ceiling,
        cover=cover,
        moving=moving,
        last_active_s=last_active_s,
        backlog_until_s=seen.backlog_until_s,
        missed_s=missed_s,
        unfloored=unfloored,
        queued_since_s=queued_since_s,
    )


def _batch_rps(
    svc: model.ServiceSpec,
    obs: model.Observation,
    last: Mapping[str, int] | None,
    usable_rps: Mapping[str, float],
    lead_s: float,
    why: list[str],
) -> float:
    """A batch service's demand: the rate that drains its queue within half its deadline after
    the lead (at least a tenth of the deadline), held while requests wait (a drain sized anew
    each cycle would slow as the queue shrinks and never finish). Arrivals join the queue and
    raise the rate at the next decision; the queue, not a forecast, is the demand."""
    deadline_s = svc.deadline_s or 0.0
    drain_s = max(deadline_s / 2 - lead_s, deadline_s / 10)
    kept_rps = sum(usable_rps.get(v, 0.0) * n for v, n in (last or {}).items())
    if not evidence.finite(obs.queued):  # no server reports it (none runs): what arrives
        rate_rps = obs.rps if evidence.finite(obs.rps) else 0.0
        why.append(f"batch: queue unknown: {rate_rps or 0.0:.2f} rps arriving, no scale-down")
        return max(rate_rps or 0.0, kept_rps)
    queued = obs.queued or 0.0
    drain_rps = queued / drain_s
    demand_rps = max(drain_rps, kept_rps) if queued else drain_rps
    why.append(
        f"batch: {queued:.0f} request(s) queued, drained within {drain_s:.0f} s (half the "
        f"{deadline_s:.0f} s deadline after the {lead_s:.0f} s lead): {drain_rps:.2f} rps"
        + (
            f", the {kept_rps:.2f} rps running kept while requests wait"
            if demand_rps > drain_rps
            else ""
        )
    )
    return demand_rps


def _queued_since(
    svc: model.ServiceSpec, obs: model.Observation, previous_s: float | None, now_s: float
) -> float | None:
    """Since when a batch service's requests have waited without a break: kept while the queue
    is unknown, forgotten once it is empty."""
    if not svc.batch:
        return None
    if not evidence.finite(obs.queued):
        return previous_s
    return None if not obs.queued else (now_s if previous_s is None else previous_s)


def _wait_for_cheaper_hour(
    svc: model.ServiceSpec,
    obs: model.Observation,
    queued_since_s: float | None,
    lead_s: float,
    usable_rps: Mapping[str, float],
    cycle: Cycle,
    why: list[str],
) -> bool:
    """Whether a batch service's waiting work is held for a cheaper hour of its pools' power
    schedules (electricity billed beyond the node price, or carbon its objective prices): the
    cheapest hour ahead whose start still leaves the oldest waiting request its lead and its
    usual drain before the deadline. Its replicas go to zero meanwhile; at that hour the queue
    drains as any other."""
    if queued_since_s is None or not svc.deadline_s or not evidence.finite(obs.queued):
        return False  # nothing waits, or what waits is unknown: no reason to wait
    hour_s = 3600.0
    drain_s = max(svc.deadline_s / 2 - lead_s, svc.deadline_s / 10)
    now_h = math.floor(cycle.now_s / hour_s)
    usd_now = _usd_per_rps_hour(svc, usable_rps, cycle.pools, now_h)
    best: tuple[float, int] | None = None
    for ahead in range(1, 24):
        start_s = (now_h + ahead) * hour_s
        if start_s - queued_since_s + lead_s + drain_s > svc.deadline_s:
            break
        usd = _usd_per_rps_hour(svc, usable_rps, cycle.pools, now_h + ahead)
        if usd < usd_now * (1 - CHEAPER_BY) and (best is None or usd < best[0]):
            best = (usd, now_h + ahead)
    if best is None:
        return False
    usd, hour = best
    why.append(
        f"batch: {obs.queued:.0f} request(s) held for {hour % 24:02d}:00 UTC, when its "
        f"pools cost ${usd:.4f} per rps-hour against ${usd_now:.4f} now; waiting since "
        f"{cycle.now_s - queued_since_s:.0f} s ago, they still drain within the "
        f"{svc.deadline_s:.0f} s deadline"
    )
    return True


CHEAPER_BY = 0.05
"""An hour ahead must cost this share less per rps than now for batch work to wait for it."""


def _usd_per_rps_hour(
    svc: model.ServiceSpec,
    usable_rps: Mapping[str, float],
    pools: Mapping[str, model.PoolSpec],
    hour: int,
) -> float:
    """The cheapest usd per rps-hour of the service's usable variants in that hour (UTC, since
    the epoch): node share, electricity billed beyond it, and carbon at the service's price,
    at full power as the optimiser counts them."""
    best = math.inf
    for variant in svc.variants:
        capacity, pool = usable_rps.get(variant.name, 0.0), pools.get(variant.pool)
        if capacity <= 0 or pool is None:
            continue
        then = (
            pool
            if pool.power is None
            else dataclasses.replace(pool, power=pool.power.at_hour(hour))
        )
        share = pricing.replica_share(variant, then)
        if math.isinf(share):
            continue
        usd = share * (then.usd_per_hour + pricing.energy_usd_per_hour(then))
        usd += pricing.carbon_usd_per_hour(variant, then, svc.carbon_usd_per_tonne)
        best = min(best, usd / capacity)
    return best


def _loss_floor(
    svc: model.ServiceSpec, fstate: model.ForecastState, cycle: Cycle, why: list[str]
) -> float:
    """With variants on spot pools and off them: the rate arriving now, bursts aside (the smooth
    level with its margin), which the capacity off each spot pool must carry through that
    pool's loss; else 0 (and for a batch service: its queue waits out a loss). Bursts, held
    peaks and trends may ride on spot: a loss costs them."""
    spot = {v.pool for v in svc.variants if (p := cycle.pools.get(v.pool)) and p.spot}
    if svc.batch or not spot:
        return 0.0
    if all(v.pool in spot for v in svc.variants if v.pool in cycle.pools):
        why.append(
            f"spot: every variant runs on spot ({', '.join(sorted(spot))}), so spec.spot.maxShare "
            f"({svc.spot_max_share:.0%}) cannot hold: a reclaim costs capacity until its "
            "replacement is Ready; add an on-demand variant"
        )
        return 0.0
    floor_rps = forecast.smooth_rps(fstate, cycle.cfg)
    why.append(
        f"spot: at most {svc.spot_max_share:.0%} of the capacity on {', '.join(sorted(spot))}, "
        f"and {floor_rps:.2f} rps (arriving now, bursts aside) carried without any one of them"
    )
    return floor_rps


def dominated(
    svc: model.ServiceSpec, usable_rps: Mapping[str, float], cycle: Cycle, why: list[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """``usable_rps`` without the variants another one dominates (``skip_dominated``), and
    those variants' capacities apart, for where the others cannot cover the demand (pools at
    their maximum): the other serves an rps for less, is Ready no later from an empty pool,
    holds at least as much per replica, runs on the same capacity type and scores no lower.
    What the dominated variant saves is part of one replica's price, a smaller step at light
    load; the slack it gives up is what meets the next rise. A batch service has no rise to
    meet (its requests may wait): every variant stays its to choose from."""
    if not cycle.cfg.skip_dominated or svc.batch:
        return dict(usable_rps), {}
    # Per live variant: usd per rps-hour, seconds to Ready from an empty pool, rps per replica,
    # spot, quality (unscored lowest).
    traits = {}
    for v in svc.variants:
        pool = cycle.pools.get(v.pool)
        rps = usable_rps.get(v.name, 0.0)
        usd = math.inf if pool is None else pricing.usd_per_rps_hour(v, pool, rps)
        if pool is not None and math.isfinite(usd):
            score = -math.inf if v.quality is None else v.quality
            traits[v.name] = (usd, v.startup_s + pool.provisioning_s, rps, pool.spot, score)
    planned, fallback = dict(usable_rps), {}
    for name, (usd, ready_s, rps, spot, score) in traits.items():
        better = [
            (w_usd, w)
            for w, (w_usd, w_ready_s, w_rps, w_spot, w_score) in traits.items()
            if w_usd < usd and w_ready_s <= ready_s and w_rps >= rps and w_spot == spot
            and w_score >= score
        ]  # fmt: skip
        if not better:
            continue
        w_usd, w = min(better)
        fallback[name], planned[name] = planned[name], 0.0
        why.append(
            f"{name} only where {w} cannot be had: {w} serves an rps for less (${w_usd:.3f}/h "
            f"against ${usd:.3f}/h), as soon ({traits[w][1]:.0f} s against {ready_s:.0f} s), "
            f"with as much per replica ({traits[w][2]:.2f} against {rps:.2f} rps)"
        )
    return planned, fallback


def _below_floor(svc: model.ServiceSpec, why: list[str]) -> frozenset[str]:
    """The variants a per-request quality floor bars from traffic (none for an average floor:
    the optimiser balances the mix)."""
    if svc.quality_floor is None:
        return frozenset()
    under = [v for v in svc.variants if svc.below_floor(v)]
    scores = ", ".join(
        f"{v.name} {'unscored' if v.quality is None else format(v.quality, 'g')}" for v in under
    )
    if svc.quality_average:
        if under:
            why.append(
                f"quality floor {svc.quality_floor:g} on average over the traffic: {scores} "
                "may serve a share balanced by better variants"
            )
        return frozenset()
    if under:
        why.append(
            f"quality floor {svc.quality_floor:g} per request: {scores} under it, no traffic"
        )
    return frozenset(v.name for v in under)


def _evidence(
    svc: model.ServiceSpec, obs: model.Observation, cycle: Cycle, why: list[str]
) -> _Evidence:
    """Learned capacities, the variants too slow for the SLO and which signals are known."""
    cfg, now_s, key = cycle.cfg, cycle.now_s, svc.key
    learned = cycle.state.capacity_rps.get(key, {})
    ready_rps = sum(
        learned.get(v.name, v.capacity_rps) * obs.variants[v.name].ready_replicas
        for v in svc.variants
        if v.name in obs.variants
    )
    # Without per-variant readiness nothing says the replicas were overwhelmed.
    overloaded = (
        obs.rps is not None and bool(obs.variants) and obs.rps > cfg.target_utilization * ready_rps
    )
    backlog_until_s = cycle.state.backlog_until_s.get(key)
    if overloaded:
        backlog_until_s = now_s + cfg.backlog_grace_s
    elif backlog_until_s is not None and backlog_until_s <= now_s:
        backlog_until_s = None
    in_backlog = overloaded or backlog_until_s is not None
    too_few = evidence.too_few_requests(svc, obs)
    ceiling = evidence.ceilings(
        svc,
        obs,
        learned,
        cycle.state.capacity_ceiling.get(key, {}),
        now_s,
        cfg,
        in_backlog,
        too_few,
    )
    caps = {
        v.name: capacity.learn(
            learned.get(v.name, v.capacity_rps),
            v,
            obs.variants.get(v.name),
            svc.slo_latency_s,
            cfg,
            in_backlog,
            ceiling[v.name][0] if v.name in ceiling else None,
            too_few,
        )
        for v in svc.variants
    }
    candidates = evidence.too_slow(
        svc, obs, caps, cycle.state.too_slow.get(key, {}), now_s, cfg, in_backlog
    )
    slow = evidence.excluded(svc, candidates, cfg)
    for name, (latency_s, first_s, last_s) in sorted(slow.items()):
        why.append(
            f"{name} too slow for the SLO: p{svc.slo_percentile:g} {latency_s:.2f} s over "
            f"{svc.slo_latency_s:.2f} s at light load with no queue for "
            f"{last_s - first_s:.0f} s until {now_s - last_s:.0f} s ago: no traffic for it"
        )
    rps_known = evidence.finite(obs.rps)
    gaps = evidence.missing_signals(svc, obs)
    unknown_why = None
    # Partial data: the known signals may still scale up; nothing may scale down.
    if rps_known and gaps:
        unknown_why = "missing " + ", ".join(gaps)
        why.append(f"{unknown_why}: scale-up only, no scale-down, nodes kept")
    elif not rps_known:
        unknown_why = "request rate unknown"
    return _Evidence(
        capacities=caps,
        ceiling=ceiling,
        in_backlog=in_backlog,
        too_few_requests=too_few,
        backlog_until_s=backlog_until_s,
        too_slow=candidates,
        slow=slow,
        known=rps_known and not gaps,
        rps_known=rps_known,
        unknown_why=unknown_why,
        ready_rps=ready_rps,
    )


def _forecast_rps(
    svc: model.ServiceSpec,
    fstate: model.ForecastState,
    lead_s: float,
    feasible: Sequence[model.VariantSpec],
    missed_s: float | None,
    cycle: Cycle,
    why: list[str],
) -> float:
    """The forecast over the lead, bursts held for as long as capacity released now would take
    to come back by its fastest path (rent or buy: holding longer costs more than buying it
    again would); longer after a recent SLO miss, whose bursts outran the lead."""
    cfg, now_s = cycle.cfg, cycle.now_s
    hold_lead_s = min((cycle.cold_start_s(v) for v in feasible), default=lead_s)
    missed_ago_s = now_s - (missed_s if missed_s is not None else -math.inf)
    if missed_ago_s <= cfg.miss_memory_s:
        hold_lead_s *= cfg.miss_hold_factor
        why.append(f"SLO missed {missed_ago_s:.0f} s ago: peaks held {hold_lead_s:.0f} s")
    return forecast.demand_rps(fstate, now_s, lead_s, cfg, hold_lead_s)


def _held_within_kept(
    fstate: model.ForecastState,
    held_rps: float,
    last: Mapping[str, int] | None,
    usable_rps: Mapping[str, float],
    cycle: Cycle,
    why: list[str],
) -> float:
    """A held peak keeps the capacity the service has (Ready or ordered); it never buys capacity
    for a burst that has passed: what is ordered now would arrive after it. New capacity follows
    :func:`forecast.fresh_rps`."""
    fresh_rps = forecast.fresh_rps(fstate, cycle.now_s, cycle.cfg)
    if held_rps <= fresh_rps + 1e-9:
        return held_rps
    kept_rps = sum(usable_rps.get(v, 0.0) * n for v, n in (last or {}).items())
    if held_rps > kept_rps:
        why.append(
            f"peak {held_rps:.2f} rps held only within the {kept_rps:.2f} rps the replicas have: "
            f"no new capacity for a burst that has passed ({fresh_rps:.2f} rps now)"
        )
    return max(fresh_rps, min(held_rps, kept_rps))


def _backlog_rps(
    obs: model.Observation,
    seen: _Evidence,
    lead_s: float,
    demand_rps: float,
    cfg: tuning.PlannerSettings,
    why: list[str],
) -> float:
    """With ``backlog_drain``, a queue the spare capacity cannot clear within the lead adds the
    rate that clears it."""
    queued = obs.queued if evidence.finite(obs.queued) else 0.0
    spare_rps = seen.ready_rps - (obs.rps or 0.0)
    if cfg.backlog_drain and queued and lead_s > 0 and queued > spare_rps * lead_s:
        why.append(
            f"{queued:.0f} request(s) queued, more than the spare capacity clears within the "
            f"lead: +{queued / lead_s:.2f} rps to clear them"
        )
        return demand_rps + queued / lead_s
    return demand_rps


def _unknown_rate(
    svc: model.ServiceSpec,
    obs: model.Observation,
    last: Mapping[str, int] | None,
    seen: _Evidence,
    demand_rps: float,
    min_total: int,
    why: list[str],
    cfg: tuning.PlannerSettings,
) -> tuple[float, int]:
    """With the request rate unknown: the forecast is held, a fixed fallback sets a floor, and a
    latency over the SLO scales the replicas that serve up."""
    why.append("request rate unknown: forecast held, no scale-down")
    if svc.fallback.mode == "fixed":
        min_total = max(min_total, svc.fallback.replicas)
        why.append(f"fallback fixed: at least {svc.fallback.replicas} replicas")
    if last is not None and obs.latency_s is not None and obs.latency_s > svc.slo_latency_s:
        served = sum(seen.capacities[v] * n for v, n in last.items() if v in seen.capacities)
        boost = min(2.0, obs.latency_s / svc.slo_latency_s)
        demand_rps = max(demand_rps, served * cfg.target_utilization * boost)
        why.append(
            f"latency {obs.latency_s:.3f} s over SLO {svc.slo_latency_s:.3f} s: "
            f"scale up x{boost:.2f}"
        )
    return demand_rps, min_total


def _cover(
    dem: optimize.Demand, cycle: Cycle, why: list[str]
) -> tuple[optimize.Cover | None, optimize.Demand, bool]:
    """The cheapest single-variant cover; once the excess paid over it equals what moving there
    costs, the switch cost is not weighed this cycle (the move is made)."""
    cover = optimize.cheapest_cover(dem, cycle.pools)
    if cover is None:
        return None, dem, False
    paid = cycle.state.excess_paid.get(dem.service.key, (0.0, cycle.now_s))[0]
    if cover.move_usd <= 0 or paid < cycle.cfg.move_after_paid * cover.move_usd:
        return cover, dem, False
    why.append(
        f"since {cover.replicas} {cover.variant} became cheaper the allocation has "
        f"cost ${paid:.3f} more, as much as moving there costs "
        f"(${cover.move_usd:.3f}): no switch cost weighed this cycle"
    )
    return cover, dataclasses.replace(dem, switch_weight=0.0), True


def _serving(
    dem: optimize.Demand, cover: optimize.Cover | None, moving: bool, cycle: Cycle
) -> str | None:
    """The one variant that serves ``dem`` (None where at most one could): without a route, a
    plain Service gives every pod the same share of the requests, so a mix carries only as much
    as its slowest pods allow, and its cheapest variant alone carries at least as much for no
    more. The variant serving now stays until moving to the cheapest cover has paid for itself
    (``moving``) or it cannot cover the demand; with nothing serving, the cheapest cover serves."""
    usable = {v: c for v, c in dem.capacity_rps.items() if c > 0}
    if len(usable) <= 1:
        return None
    running = [v for v in usable if dem.current.get(v, 0) > 0]
    serving = max(running, key=lambda v: (dem.current[v], v)) if running else None
    if serving is not None and not moving:
        alone = _only(dem, serving)
        if optimize.cheapest_cover(alone, cycle.pools) is None:
            serving = None  # it cannot cover the demand within its bounds
    if serving is None or moving:
        serving = cover.variant if cover is not None else max(usable, key=lambda v: usable[v])
    return serving


SAME_SPEED = 0.1
"""Variants whose specs' capacities per replica are this close serve side by side behind a
plain Service (the same model on on-demand and spot nodes): an even spread loses nothing."""


def _only(dem: optimize.Demand, variant: str) -> optimize.Demand:
    """``dem`` with the usable capacity of every variant but ``variant`` and those of its
    speed 0 (by their specs: learned estimates of equal servers drift apart with their loads)."""
    spec = {v.name: v.capacity_rps for v in dem.service.variants}
    speed = spec.get(variant, 0.0)
    return dataclasses.replace(
        dem,
        fallback_rps={},
        capacity_rps={
            v: c if v == variant or abs(spec.get(v, 0.0) - speed) <= SAME_SPEED * speed else 0.0
            for v, c in dem.capacity_rps.items()
        },
    )


def _say_if_first_burst(
    svc: model.ServiceSpec,
    previous: model.ForecastState,
    rate: float | None,
    cycle: Cycle,
    why: list[str],
) -> None:
    """On an SLO miss: whether ``rate``, the rate arriving now, is above anything the service
    showed earlier than its fastest path to new capacity (a first burst: only capacity held
    before it serves it), or within what it showed then."""
    lead_s = min((cycle.cold_start_s(v) for v in svc.variants), default=0.0)
    before = forecast.highest_before(previous, cycle.now_s - lead_s, cycle.cfg)
    if rate is None or before is None:
        return
    if rate > FIRST_BURST_FACTOR * before:
        why.append(
            f"SLO missed at {rate:.2f} rps, above the {before:.2f} rps the service showed until "
            f"{lead_s:.0f} s ago (its fastest path to a new replica): a first burst, which only "
            "capacity held before it serves"
        )
    else:
        why.append(
            f"SLO missed at {rate:.2f} rps, within the {before:.2f} rps the service showed "
            f"{lead_s:.0f} s ago or earlier: not a first burst"
        )


FIRST_BURST_FACTOR = 1.1
"""A rate this much above anything seen a lead earlier is a first burst (``bench``'s unseen
minutes use the same factor)."""


def _observe(
    previous: model.ForecastState,
    obs: model.Observation,
    arrival_rps: float | None,
    expected_rps: float,
    cycle: Cycle,
    why: list[str],
) -> model.ForecastState:
    """The forecaster fed with ``arrival_rps``, the rate requests arrive at (completions plus
    the queue's growth: :func:`evidence.arrival_rps`), and the queue reading kept for the next
    decision."""
    if arrival_rps is not None and obs.rps is not None and arrival_rps > obs.rps + 1e-6:
        why.append(
            f"the queue grew by {(arrival_rps - obs.rps):.2f} rps: {arrival_rps:.2f} rps "
            f"arrive while {obs.rps:.2f} rps complete"
        )
    fstate = forecast.update(previous, arrival_rps, cycle.now_s, cycle.cfg, expected_rps)
    samples = evidence.queue_samples(previous, obs, cycle.now_s)
    return dataclasses.replace(fstate, queue_samples=samples)


def _headroom(
    svc: model.ServiceSpec,
    obs: model.Observation,
    seen: _Evidence,
    previous: model.ForecastState,
    cycle: Cycle,
) -> float:
    """The demand multiplier after recent SLO misses. A miss the capacity learner took as its own
    (it lowered an estimate) is not counted again as headroom: both at once would shrink supply
    and grow demand for one symptom. Nor is one among too few requests to place the SLO
    percentile (a quiet service's slowest request)."""
    learned = cycle.state.capacity_rps.get(svc.key, {})
    learned_down = any(
        seen.capacities[v.name] < learned.get(v.name, v.capacity_rps) for v in svc.variants
    )
    return evidence.headroom(
        cycle.state.headroom.get(svc.key, 1.0),
        previous.last_s,
        obs,
        svc,
        cycle.now_s,
        cycle.cfg,
        seen.in_backlog or learned_down or seen.too_few_requests,
    )


def _bounds(
    svc: model.ServiceSpec,
    obs: model.Observation,
    known: bool,
    last: Mapping[str, int] | None,
    last_active_s: float | None,
    recurring_rps: float,
    now_s: float,
) -> tuple[bool, int]:
    """(idle: scale to zero, the fewest replicas). A service that may scale to zero stays warm
    with one replica until it has had no traffic for its idle timeout, unless a burst on the
    hour is due; a batch service goes as soon as nothing is queued or arriving (its requests
    may wait for a start)."""
    idle_for_s = now_s - (last_active_s if last_active_s is not None else now_s)
    is_idle = (
        known
        and svc.min_replicas == 0
        and (obs.rps or 0.0) <= 0
        and (obs.queued == 0 if svc.batch else idle_for_s >= svc.idle_timeout_s)
        and recurring_rps <= 0
    )
    min_total = svc.min_replicas
    if svc.min_replicas == 0 and not is_idle and (last is None or sum(last.values()) > 0):
        min_total = 1
    return is_idle, min_total
