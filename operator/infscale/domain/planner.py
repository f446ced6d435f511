"""The planner: the one pure entry point from specs, observations and state to a Plan.

``plan(services, pools, observations, state, now_s, settings)`` runs one decision for every
service at once: learn capacities, forecast demand over each service's lead time, solve the
cost-optimal allocation across all services and pools, stabilise it, and size the pools. The live
operator and the simulator call this same function; the clock is the ``now_s`` argument.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from infscale.domain import capacity, forecast, model, optimize, settings, stabilize

_EXCESS_STEP_MAX_S = 300.0
"""A longer gap between decisions (a restart, a metrics outage) counts as this long."""


def plan(
    services: Sequence[model.ServiceSpec],
    pools: Sequence[model.PoolSpec],
    observations: Mapping[str, model.Observation],
    state: model.PlannerState,
    now_s: float,
    cfg: settings.PlannerSettings | None = None,
) -> tuple[model.Plan, model.PlannerState]:
    """One decision; returns the plan and the state to pass to the next call.

    ``observations`` is keyed by ``ServiceSpec.key``; a missing entry means all unknown.
    Equal inputs give equal outputs (the function has no hidden state or randomness).
    """
    cfg = cfg or settings.PlannerSettings()
    pool_map = {p.name: p for p in pools}
    services = sorted(services, key=lambda s: s.key)
    last_needed = optimize.pool_nodes_needed(state.last_replicas, services, pool_map)
    free_pools = {
        name for name in pool_map if state.last_nodes.get(name, 0) > last_needed.get(name, 0)
    }

    capacities: dict[str, dict[str, float]] = {}
    forecasts: dict[str, model.ForecastState] = {}
    last_active: dict[str, float] = dict(state.last_active_s)
    headroom: dict[str, float] = {}
    demands: list[optimize.Demand] = []
    reasons: dict[str, list[str]] = {}
    known: dict[str, bool] = {}
    unknown_why: dict[str, str] = {}
    idle: dict[str, bool] = {}
    scheduled: set[str] = set()  # demand raised by a burst due on the clock
    backlog_until = {k: t for k, t in state.backlog_until_s.items() if t > now_s}
    missed = {k: t for k, t in state.missed_slo_s.items() if now_s - t <= cfg.miss_memory_s}
    ceilings: dict[str, dict[str, tuple[float, float]]] = {}
    covers: dict[str, optimize.Cover] = {}
    moving: set[str] = set()
    too_slow: dict[str, dict[str, tuple[float, float, float]]] = {}
    for svc in services:
        key = svc.key
        obs = observations.get(key, model.Observation())
        why = reasons.setdefault(key, [])
        learned = state.capacity_rps.get(key, {})
        ready_rps = sum(
            learned.get(v.name, v.capacity_rps) * obs.variants[v.name].ready_replicas
            for v in svc.variants
            if v.name in obs.variants
        )
        # Without per-variant readiness nothing says the replicas were overwhelmed.
        overloaded = (
            obs.rps is not None
            and bool(obs.variants)
            and obs.rps > cfg.target_utilization * ready_rps
        )
        if overloaded:
            backlog_until[key] = now_s + cfg.backlog_grace_s
        in_backlog = overloaded or now_s < backlog_until.get(key, -math.inf)
        ceiling = _ceilings(
            svc, obs, learned, state.capacity_ceiling.get(key, {}), now_s, cfg, in_backlog
        )
        if ceiling:
            ceilings[key] = ceiling
        caps = {
            v.name: capacity.learn(
                learned.get(v.name, v.capacity_rps),
                v,
                obs.variants.get(v.name),
                svc.slo_latency_s,
                cfg,
                in_backlog,
                ceiling[v.name][0] if v.name in ceiling else None,
            )
            for v in svc.variants
        }
        candidates = _too_slow(svc, obs, caps, state.too_slow.get(key, {}), now_s, cfg, in_backlog)
        if candidates:
            too_slow[key] = candidates
        slow = _excluded(svc, candidates, cfg)
        for name, (latency_s, first_s, last_s) in sorted(slow.items()):
            why.append(
                f"{name} too slow for the SLO: p{svc.slo_percentile:g} {latency_s:.2f} s over "
                f"{svc.slo_latency_s:.2f} s at light load with no queue for "
                f"{last_s - first_s:.0f} s until {now_s - last_s:.0f} s ago: no traffic for it"
            )
        feasible = [v for v in svc.variants if v.name not in slow] or list(svc.variants)
        capacities[key] = caps
        rps_known = obs.rps is not None and math.isfinite(obs.rps)
        gaps = missing_signals(svc, obs)
        # Partial data: the known signals may still scale up; nothing may scale down.
        known[key] = rps_known and not gaps
        if rps_known and gaps:
            unknown_why[key] = "missing " + ", ".join(gaps)
            why.append(f"{unknown_why[key]}: scale-up only, no scale-down, nodes kept")
        elif not rps_known:
            unknown_why[key] = "request rate unknown"
        previous = state.forecasts.get(key, model.ForecastState())
        # A miss the capacity learner took as its own (it lowered an estimate) is not counted
        # again as headroom: both at once would shrink supply and grow demand for one symptom.
        learned_down = any(caps[v.name] < learned.get(v.name, v.capacity_rps) for v in svc.variants)
        head = _headroom(
            state.headroom.get(key, 1.0),
            previous.last_s,
            obs,
            svc,
            now_s,
            cfg,
            in_backlog or learned_down,
        )
        headroom[key] = head
        lead_s = max(
            (
                v.startup_s + (0.0 if v.pool in free_pools else _provisioning_s(pool_map, v.pool))
                for v in svc.variants
            ),
            default=0.0,
        )
        # Bursts that recur on the clock, per minute of the lead, from the memory before this
        # sample; the one due this minute explains a rate above the smooth level.
        profile = forecast.seasonal_profile(previous, now_s, lead_s, cfg)
        recurring = max(profile, default=0.0)
        arrival_rps = _arrival_rps(previous, obs, now_s)
        if arrival_rps is not None and obs.rps is not None and arrival_rps > obs.rps + 1e-6:
            why.append(
                f"the queue grew by {(arrival_rps - obs.rps):.2f} rps: {arrival_rps:.2f} rps "
                f"arrive while {obs.rps:.2f} rps complete"
            )
        fstate = forecast.update(previous, arrival_rps, now_s, cfg, profile[0] if profile else 0.0)
        fstate = dataclasses.replace(fstate, queue_samples=_queue_samples(previous, obs, now_s))
        forecasts[key] = fstate
        if rps_known and (obs.rps or 0.0) > 0:
            last_active[key] = now_s
        elif key not in last_active and rps_known:
            last_active[key] = now_s  # idle time counts from the first observation
        # Bursts are held for as long as capacity released now would take to come back by its
        # fastest path (rent or buy: holding longer costs more than buying it again would).
        hold_lead_s = min(
            (
                v.startup_s + (0.0 if v.pool in free_pools else _provisioning_s(pool_map, v.pool))
                for v in feasible
            ),
            default=lead_s,
        )
        if obs.latency_s is not None and obs.latency_s > svc.slo_latency_s:
            missed[key] = now_s
        # A service that missed its SLO lately has bursts that outrun its lead: hold them longer.
        missed_ago_s = now_s - missed.get(key, -math.inf)
        if missed_ago_s <= cfg.miss_memory_s:
            hold_lead_s *= cfg.miss_hold_factor
            why.append(f"SLO missed {missed_ago_s:.0f} s ago: peaks held {hold_lead_s:.0f} s")
        demand = forecast.demand_rps(fstate, now_s, lead_s, cfg, hold_lead_s)
        if recurring > demand:
            why.append(
                f"a burst came at this time in each of the last {cfg.season_periods} periods of "
                f"{cfg.season_s:.0f} s: {recurring:.2f} rps expected within the lead"
            )
            demand = recurring
            scheduled.add(key)
        demand *= head
        queued = obs.queued if _finite(obs.queued) else 0.0
        spare_rps = ready_rps - (obs.rps or 0.0)
        if cfg.backlog_drain and queued and lead_s > 0 and queued > spare_rps * lead_s:
            demand += queued / lead_s
            why.append(
                f"{queued:.0f} request(s) queued, more than the spare capacity clears within the "
                f"lead: +{queued / lead_s:.2f} rps to clear them"
            )
        if head > 1.0 + 1e-3:
            why.append(f"recent SLO misses: demand x{head:.2f} headroom")
        last = state.last_replicas.get(key)
        min_total = svc.min_replicas
        idle_for_s = now_s - last_active.get(key, now_s)
        is_idle = (
            known[key]
            and svc.min_replicas == 0
            and (obs.rps or 0.0) <= 0
            and idle_for_s >= svc.idle_timeout_s
            and recurring <= 0  # a burst on the hour is due: warm up for it
        )
        idle[key] = is_idle
        if svc.min_replicas == 0 and not is_idle and (last is None or sum(last.values()) > 0):
            min_total = 1  # stay warm until the idle timeout
        if is_idle:
            demand = 0.0
        if not rps_known:
            why.append("request rate unknown: forecast held, no scale-down")
            if svc.fallback.mode == "fixed":
                min_total = max(min_total, svc.fallback.replicas)
                why.append(f"fallback fixed: at least {svc.fallback.replicas} replicas")
            if last is not None and obs.latency_s is not None and obs.latency_s > svc.slo_latency_s:
                served = sum(caps[v] * n for v, n in last.items() if v in caps)
                boost = min(2.0, obs.latency_s / svc.slo_latency_s)
                demand = max(demand, served * cfg.target_utilization * boost)
                why.append(
                    f"latency {obs.latency_s:.3f} s over SLO {svc.slo_latency_s:.3f} s: "
                    f"scale up x{boost:.2f}"
                )
        min_total = min(min_total, svc.max_replicas)
        dem = optimize.Demand(
            service=svc,
            demand_rps=demand,
            capacity_rps={
                v: 0.0 if v in slow else c * cfg.target_utilization for v, c in caps.items()
            },
            min_total=min_total,
            max_total=svc.max_replicas,
            current=dict(last or {}),
            cold_start_s={
                v.name: v.startup_s
                + (0.0 if v.pool in free_pools else _provisioning_s(pool_map, v.pool))
                for v in svc.variants
            },
        )
        cover = optimize.cheapest_cover(dem, pool_map)
        if cover is not None:
            covers[key] = cover
            paid = state.excess_paid.get(key, (0.0, now_s))[0]
            if cover.move_usd > 0 and paid >= cfg.move_after_paid * cover.move_usd:
                dem = dataclasses.replace(dem, switch_weight=0.0)
                moving.add(key)
                why.append(
                    f"since {cover.replicas} {cover.variant} became cheaper the allocation has "
                    f"cost ${paid:.3f} more, as much as moving there costs "
                    f"(${cover.move_usd:.3f}): no switch cost weighed this cycle"
                )
        demands.append(dem)
        observed = "unknown" if obs.rps is None else f"{obs.rps:.2f}"
        why.append(
            f"demand {demand:.2f} rps over a {lead_s:.0f} s lead (observed {observed} rps); "
            + ", ".join(f"{v} {c:.2f} rps/replica" for v, c in caps.items())
        )

    allocation = optimize.optimize(demands, pool_map, cfg)
    demand_of = {d.service.key: d for d in demands}

    replicas: dict[str, dict[str, int]] = {}
    history: dict[str, dict[str, tuple[tuple[float, int], ...]]] = {}
    excess_paid: dict[str, tuple[float, float]] = {}
    for svc in services:
        key = svc.key
        raw = allocation.replicas.get(key, {})
        kept = _within_tolerance(raw, state.last_replicas.get(key), demand_of[key], cfg)
        if kept is not None and known[key] and not idle[key]:
            reasons[key].append(
                f"keep {kept}: its capacity is within {cfg.tolerance:.0%} of the demand "
                f"{demand_of[key].demand_rps:.2f} rps (optimiser: "
                + ", ".join(f"{v}={n}" for v, n in sorted(raw.items()))
                + ")"
            )
            raw = kept
        bridge = _bridge(
            svc,
            raw,
            demand_of[key],
            observations.get(key),
            _excluded(svc, too_slow.get(key, {}), cfg),
        )
        if bridge is not None:
            name, extra = bridge
            attained = (observations[key].slo_attainment or 0.0) * 100
            reasons[key].append(
                f"SLO attainment {attained:.1f} % under the p{svc.slo_percentile:g} target: "
                f"+{extra} {name} replica(s), the fastest to Ready, until the planned capacity is"
            )
            raw = {**raw, name: raw.get(name, 0) + extra}
        cover = covers.get(key)
        paid, since_s = state.excess_paid.get(key, (0.0, now_s))
        if cover is None or key in moving or idle[key]:
            pass  # a move starts (or nothing is left to move): the count starts again
        elif not known[key]:
            if paid > 0:
                excess_paid[key] = (paid, now_s)  # unknown data pays nothing and loses nothing
        else:
            excess = optimize.share_usd_per_hour(raw, svc, pool_map) - cover.usd_per_hour
            if excess > 1e-6:
                step_s = min(max(0.0, now_s - since_s), _EXCESS_STEP_MAX_S)
                excess_paid[key] = (paid + excess * step_s / 3600.0, now_s)
        if idle[key]:
            replicas[key] = {v.name: 0 for v in svc.variants}
            history[key] = {}
            reasons[key].append(f"idle for {svc.idle_timeout_s:.0f} s or more: scale to zero")
            continue
        decision = stabilize.replicas(
            svc,
            raw,
            state.last_replicas.get(key),
            state.history.get(key, {}),
            observations.get(key),
            now_s,
            known[key],
            unknown_why.get(key, ""),
            scheduled=key in scheduled,
            cover=(demand_of[key].capacity_rps, demand_of[key].demand_rps),
        )
        replicas[key] = decision.replicas
        history[key] = decision.history
        if allocation.shortfall_rps.get(key, 0.0) > 1e-6:
            reasons[key].append(
                f"pools cannot cover {allocation.shortfall_rps[key]:.2f} rps of the demand"
            )
        reasons[key].append(
            f"optimiser ({allocation.method}) recommends "
            + ", ".join(f"{v}={n}" for v, n in sorted(raw.items()))
        )
        reasons[key].extend(decision.reasons)

    needed = optimize.pool_nodes_needed(replicas, services, pool_map)
    # A pool that hosts a variant of a service with unknown data keeps its nodes this cycle.
    held_by: dict[str, list[str]] = {}
    for svc in services:
        if not known[svc.key]:
            for pool_name in sorted({v.pool for v in svc.variants}):
                held_by.setdefault(pool_name, []).append(svc.key)
    nodes: dict[str, int] = {}
    scale_up_s = dict(state.pool_scale_up_s)
    surplus_since: dict[str, float] = {}
    for name, pool in sorted(pool_map.items()):
        node_decision = stabilize.nodes(
            pool,
            needed.get(name, 0),
            state.last_nodes.get(name),
            state.pool_scale_up_s.get(name),
            state.pool_surplus_since_s.get(name),
            now_s,
            cfg,
            held_by=tuple(held_by.get(name, ())),
        )
        nodes[name] = node_decision.nodes
        if node_decision.scale_up_s is not None:
            scale_up_s[name] = node_decision.scale_up_s
        if node_decision.surplus_since_s is not None:
            surplus_since[name] = node_decision.surplus_since_s
        reasons[f"pool:{name}"] = [
            f"{needed.get(name, 0)} node(s) needed for the planned replicas",
            *node_decision.reasons,
        ]

    usd_per_hour = sum(nodes[name] * pool_map[name].usd_per_hour for name in nodes)
    result = model.Plan(
        replicas=replicas,
        nodes=nodes,
        demand_rps={d.service.key: d.demand_rps for d in demands},
        reasons={k: tuple(v) for k, v in reasons.items()},
        usd_per_hour=usd_per_hour,
    )
    new_state = model.PlannerState(
        last_replicas=replicas,
        last_nodes=nodes,
        history=history,
        capacity_rps=capacities,
        forecasts=forecasts,
        last_active_s=last_active,
        pool_scale_up_s=scale_up_s,
        pool_surplus_since_s=surplus_since,
        headroom={k: v for k, v in headroom.items() if v > 1.0 + 1e-3},
        backlog_until_s=backlog_until,
        missed_slo_s=missed,
        capacity_ceiling=ceilings,
        excess_paid=excess_paid,
        too_slow=too_slow,
    )
    return result, new_state


def adopt(
    state: model.PlannerState, svc: model.ServiceSpec, replicas: Mapping[str, int], now_s: float
) -> model.PlannerState:
    """``state`` that starts ``svc`` from the replicas that run (the operator's first sight of
    it or a restart, the simulator's warm start): its stabilization window starts at ``now_s``."""
    history = {v.name: ((now_s, replicas.get(v.name, 0)),) for v in svc.variants}
    return dataclasses.replace(
        state,
        last_replicas={**state.last_replicas, svc.key: dict(replicas)},
        history={**state.history, svc.key: history},
    )


def _ceilings(
    svc: model.ServiceSpec,
    obs: model.Observation,
    learned: Mapping[str, float],
    previous: Mapping[str, tuple[float, float]],
    now_s: float,
    cfg: settings.PlannerSettings,
    in_backlog: bool,
) -> dict[str, tuple[float, float]]:
    """Per variant, the (per-replica rps, time) at which it was last seen too slow, if lately."""
    kept = {v: c for v, c in previous.items() if now_s - c[1] <= cfg.capacity_ceiling_memory_s}
    for v in svc.variants:
        slow_rps = capacity.too_slow_at(
            learned.get(v.name, v.capacity_rps),
            obs.variants.get(v.name),
            svc.slo_latency_s,
            in_backlog,
        )
        if slow_rps is not None:
            kept[v.name] = (slow_rps, now_s)
    return kept


def _bridge(
    svc: model.ServiceSpec,
    raw: Mapping[str, int],
    dem: optimize.Demand,
    obs: model.Observation | None,
    slow: Mapping[str, tuple[float, float, float]],
) -> tuple[str, int] | None:
    """The safety net: while the measured SLO attainment is under the SLO percentile, the
    demand that the planned capacity cannot serve by the time the fastest feasible variant could
    be Ready is bridged with that variant (variant, extra replicas); else None.

    The optimiser weighs cost; a cheaper variant that takes ten minutes to arrive leaves the
    service missing its SLO for those ten minutes. Capacity Ready soonest is what has been shown
    to help then; make-before-break keeps it until the planned capacity is Ready."""
    if obs is None or obs.slo_attainment is None:
        return None
    if obs.slo_attainment >= svc.slo_percentile / 100.0:
        return None
    if not _finite(obs.queued) or (obs.queued or 0.0) <= 0:
        return None  # no queue: the misses are slow requests, which more replicas do not speed
    feasible = [
        v for v in svc.variants if v.name not in slow and dem.capacity_rps.get(v.name, 0) > 0
    ]
    if not feasible:
        return None

    def cold_s(v: model.VariantSpec) -> float:
        return dem.cold_start_s.get(v.name, v.startup_s)

    fastest = min(feasible, key=lambda v: (cold_s(v), v.name))
    soon = 0.0
    for v in svc.variants:
        planned = raw.get(v.name, 0)
        seen = obs.variants.get(v.name)
        ready = min(planned, seen.ready_replicas if seen else 0)
        coming = planned - ready if cold_s(v) <= cold_s(fastest) else 0
        soon += dem.capacity_rps.get(v.name, 0.0) * (ready + coming)
    gap = dem.demand_rps - soon
    room = dem.max_total - sum(raw.values())
    if gap <= 1e-6 or room <= 0:
        return None
    return fastest.name, min(room, math.ceil(gap / dem.capacity_rps[fastest.name]))


def _within_tolerance(
    raw: Mapping[str, int],
    last: Mapping[str, int] | None,
    dem: optimize.Demand,
    cfg: settings.PlannerSettings,
) -> dict[str, int] | None:
    """The current replicas, when the optimiser changes them and their capacity is within
    ``tolerance`` of the demand either way (covering at least ``1 - tolerance`` of it, and no
    more than ``1 + tolerance`` times what the optimiser's plan covers); else None."""
    if last is None or cfg.tolerance <= 0:
        return None
    current = {name: int(n) for name, n in last.items()}
    if all(current.get(v, 0) == n for v, n in raw.items()):
        return None
    if any(n > 0 and dem.capacity_rps.get(v, 0.0) <= 0 for v, n in current.items()):
        return None  # it runs a variant the plan no longer uses (too slow, removed)
    have = sum(dem.capacity_rps.get(v, 0.0) * n for v, n in current.items())
    planned = sum(dem.capacity_rps.get(v, 0.0) * n for v, n in raw.items())
    if have < (1.0 - cfg.tolerance) * dem.demand_rps or have > (1.0 + cfg.tolerance) * planned:
        return None
    if sum(current.values()) < dem.min_total or sum(current.values()) > dem.max_total:
        return None
    return current


def _too_slow(
    svc: model.ServiceSpec,
    obs: model.Observation,
    caps: Mapping[str, float],
    previous: Mapping[str, tuple[float, float, float]],
    now_s: float,
    cfg: settings.PlannerSettings,
    in_backlog: bool,
) -> dict[str, tuple[float, float, float]]:
    """Per variant seen over the SLO at light load with nothing queued: (latency, first seen,
    last seen). Such a sample may be a burst's backlog that has just drained (the latency
    window still holds it), so a variant counts as too slow (:func:`_excluded`) only once every
    decision for ``too_slow_confirm_s`` saw it so; a sample that does not, clears it. A
    confirmed one is remembered ``too_slow_memory_s``."""
    kept: dict[str, tuple[float, float, float]] = {}
    for name, (latency_s, first_s, last_s) in previous.items():
        confirmed = last_s - first_s >= cfg.too_slow_confirm_s
        if confirmed and now_s - last_s <= cfg.too_slow_memory_s:
            kept[name] = (latency_s, first_s, last_s)
    queued = obs.queued if _finite(obs.queued) else None
    quiet = not in_backlog and queued is not None and queued <= 0
    for v in svc.variants:
        seen = obs.variants.get(v.name)
        if seen is None or seen.ready_replicas <= 0 or not _finite(seen.rps):
            continue  # no traffic, no evidence either way
        slow = (
            quiet
            and _finite(seen.latency_s)
            and (seen.latency_s or 0.0) > svc.slo_latency_s
            and (seen.rps or 0.0) / seen.ready_replicas
            <= cfg.too_slow_load_fraction * caps.get(v.name, v.capacity_rps)
        )
        if not slow:
            continue  # an unconfirmed span ends here (only confirmed ones were kept)
        before = previous.get(v.name)
        recent = before is not None and now_s - before[2] <= _TOO_SLOW_GAP_S
        first_s = before[1] if before is not None and recent else now_s
        kept[v.name] = (float(seen.latency_s or 0.0), first_s, now_s)
    return kept


_TOO_SLOW_GAP_S = 60.0
"""Two slow samples further apart than this (no decision, or no traffic, between) start anew."""


def _excluded(
    svc: model.ServiceSpec,
    candidates: Mapping[str, tuple[float, float, float]],
    cfg: settings.PlannerSettings,
) -> dict[str, tuple[float, float, float]]:
    """The variants confirmed too slow; none when that would be every variant (then the traffic,
    not a variant, is what misses the SLO, and no choice of variant helps)."""
    slow = {n: c for n, c in candidates.items() if c[2] - c[1] >= cfg.too_slow_confirm_s}
    return {} if len(slow) >= len(svc.variants) else slow


def missing_signals(svc: model.ServiceSpec, obs: model.Observation) -> tuple[str, ...]:
    """The signals this service's decision needs that are unknown while others are present.

    The request rate of every variant with Ready replicas, the latency of anything with traffic,
    and whatever the metrics source reported missing (``Observation.missing``). An entirely
    unknown request rate is not listed here: it is the plain "unknown" case.
    """
    gaps: list[str] = []
    if _finite(obs.rps) and (obs.rps or 0.0) > 0 and not _finite(obs.latency_s):
        gaps.append("service latency")
    for variant in svc.variants:
        seen = obs.variants.get(variant.name)
        if seen is None or seen.ready_replicas <= 0:
            continue
        if not _finite(seen.rps):
            gaps.append(f"{variant.name} request rate")
        elif (seen.rps or 0.0) > 0 and not _finite(seen.latency_s):
            gaps.append(f"{variant.name} latency")
    gaps.extend(m for m in obs.missing if m not in gaps)
    return tuple(gaps)


def _arrival_rps(
    previous: model.ForecastState, obs: model.Observation, now_s: float
) -> float | None:
    """The rate requests arrive at: what the servers completed over the rate window plus how
    fast their queue grew over it (or minus how fast it drained). Saturated servers complete only
    what they can, so completions alone hide demand exactly when it matters; the queue's change
    is the rest of it. Without a queue reading from about one window ago, the completions."""
    if not _finite(obs.rps):
        return obs.rps
    rps = float(obs.rps or 0.0)
    if not _finite(obs.queued) or not previous.queue_samples:
        return rps
    window_s = obs.rate_window_s if obs.rate_window_s > 0 else _QUEUE_SLACK_S
    then_s, then_q = min(previous.queue_samples, key=lambda s: abs(s[0] - (now_s - window_s)))
    if abs(then_s - (now_s - window_s)) > max(_QUEUE_SLACK_S, window_s / 2) or then_s >= now_s:
        return rps
    return max(0.0, rps + (float(obs.queued or 0.0) - then_q) / (now_s - then_s))


def _queue_samples(
    previous: model.ForecastState, obs: model.Observation, now_s: float
) -> tuple[tuple[float, float], ...]:
    """The queue readings of the last few windows, this one added when known."""
    horizon_s = 2 * max(obs.rate_window_s, _QUEUE_SLACK_S)
    kept = [(t, q) for t, q in previous.queue_samples if now_s - horizon_s <= t < now_s]
    if _finite(obs.queued):
        kept.append((now_s, float(obs.queued or 0.0)))
    return tuple(kept)


_QUEUE_SLACK_S = 30.0
"""A queue reading this far from one rate window ago still measures the queue's change."""


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _headroom(
    current: float,
    last_s: float | None,
    obs: model.Observation,
    svc: model.ServiceSpec,
    now_s: float,
    cfg: settings.PlannerSettings,
    explained: bool = False,
) -> float:
    """Raise the demand multiplier on an SLO miss; let it decay back to 1 while the SLO holds.

    A miss that is explained (``explained``: an overload's backlog drains and more replicas are
    already coming, or the capacity learner lowered an estimate for it) does not raise it.
    """
    if obs.latency_s is not None and obs.latency_s > svc.slo_latency_s and not explained:
        return min(cfg.headroom_max, current * cfg.headroom_step)
    if last_s is None or current <= 1.0:
        return 1.0
    return 1.0 + (current - 1.0) * math.exp(-max(0.0, now_s - last_s) / cfg.headroom_decay_s)


def _provisioning_s(pools: Mapping[str, model.PoolSpec], name: str) -> float:
    pool = pools.get(name)
    return 0.0 if pool is None else pool.provisioning_s
