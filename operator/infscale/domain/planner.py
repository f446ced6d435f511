"""The planner: the one pure entry point from specs, observations and state to a Plan.

``plan(services, pools, observations, state, now_s, settings)`` runs one decision for every
service at once, in four stages: each service's evidence and demand over its lead time
(:func:`demand.service_demand`); the cost-optimal allocation across all services and pools
(``optimize.optimize``); each service's replicas kept within the tolerance, bridged by the safety
net and stabilised (:func:`_service_replicas`); the pools' nodes (:func:`_pool_nodes`). The live
operator and the simulator call this same function; the clock is the ``now_s`` argument.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from infscale.domain import (
    demand,
    evidence,
    model,
    optimize,
    pricing,
    stabilize,
    standby,
    traffic,
    tuning,
)

_EXCESS_STEP_MAX_S = 300.0
"""A longer gap between decisions (a restart, a metrics outage) counts as this long."""


def plan(
    services: Sequence[model.ServiceSpec],
    pools: Sequence[model.PoolSpec],
    observations: Mapping[str, model.Observation],
    state: model.PlannerState,
    now_s: float,
    cfg: tuning.PlannerSettings | None = None,
) -> tuple[model.Plan, model.PlannerState]:
    """One decision; returns the plan and the state to pass to the next call.

    ``observations`` is keyed by ``ServiceSpec.key``; a missing entry means all unknown.
    Equal inputs give equal outputs (the function has no hidden state or randomness).
    """
    cfg = cfg or tuning.PlannerSettings()
    pool_map = {p.name: p for p in pools}
    services = sorted(services, key=lambda s: s.key)
    last_needed = pricing.pool_nodes_needed(state.last_replicas, services, pool_map)
    # A pool with a node beyond its replicas' needs starts a new replica without waiting for a
    # node; on a warm pool those nodes run warm replicas, so they are not free.
    free_pools = frozenset(
        name
        for name in pool_map
        if state.last_nodes.get(name, 0) > last_needed.get(name, 0)
        and not pool_map[name].standby_warm
    )
    cycle = demand.Cycle(pool_map, free_pools, state, now_s, cfg)
    missed = {k: t for k, t in state.missed_slo_s.items() if now_s - t <= cfg.miss_memory_s}
    demanded = {
        svc.key: demand.service_demand(
            svc, observations.get(svc.key, model.Observation()), missed.get(svc.key), cycle
        )
        for svc in services
    }
    allocation = optimize.optimize([d.demand for d in demanded.values()], pool_map, cfg)
    replicas: dict[str, dict[str, int]] = {}
    history: dict[str, dict[str, tuple[tuple[float, int], ...]]] = {}
    excess_paid: dict[str, tuple[float, float]] = {}
    for svc in services:
        decided, paid = _service_replicas(
            svc, demanded[svc.key], allocation, observations.get(svc.key), cycle
        )
        replicas[svc.key] = decided.replicas
        history[svc.key] = decided.history
        if paid is not None:
            excess_paid[svc.key] = paid
    reasons = {key: d.reasons for key, d in demanded.items()}
    nodes, spare, warm, scale_up_s, surplus_since = _pool_nodes(
        services, demanded, replicas, reasons, cycle
    )
    backlog_until = {k: t for k, t in state.backlog_until_s.items() if t > now_s}
    last_active = dict(state.last_active_s)
    for key, d in demanded.items():
        if d.backlog_until_s is not None:
            backlog_until[key] = d.backlog_until_s
        if d.missed_s is not None:
            missed[key] = d.missed_s
        if d.last_active_s is not None:
            last_active[key] = d.last_active_s
    quality, floor_usd = _quality(services, demanded, allocation, pool_map, cfg)
    weights = {
        svc.key: traffic.weights(
            svc,
            replicas[svc.key],
            _ready(observations.get(svc.key)),
            demanded[svc.key].demand.capacity_rps,
        )
        for svc in services
        if svc.routing == "weighted"
    }
    result = model.Plan(
        replicas={key: _plus(mine, warm.get(key, {})) for key, mine in replicas.items()},
        nodes=nodes,
        demand_rps={key: d.demand.demand_rps for key, d in demanded.items()},
        reasons={k: tuple(v) for k, v in reasons.items()},
        usd_per_hour=sum(nodes[name] * pool_map[name].usd_per_hour for name in nodes),
        quality=quality,
        weights=weights,
        floor_usd_per_hour=floor_usd,
        standby=spare,
        warm=warm,
    )
    new_state = model.PlannerState(
        last_replicas=replicas,
        last_nodes=nodes,
        history=history,
        capacity_rps={key: d.capacities for key, d in demanded.items()},
        forecasts={key: d.forecast for key, d in demanded.items()},
        last_active_s=last_active,
        pool_scale_up_s=scale_up_s,
        pool_surplus_since_s=surplus_since,
        headroom={k: d.headroom for k, d in demanded.items() if d.headroom > 1.0 + 1e-3},
        backlog_until_s=backlog_until,
        missed_slo_s=missed,
        capacity_ceiling={k: d.ceiling for k, d in demanded.items() if d.ceiling},
        excess_paid=excess_paid,
        too_slow={k: d.too_slow for k, d in demanded.items() if d.too_slow},
        queued_since_s={
            k: d.queued_since_s for k, d in demanded.items() if d.queued_since_s is not None
        },
    )
    return result, new_state


def _ready(obs: model.Observation | None) -> dict[str, int]:
    """Ready replicas per variant (none known: none)."""
    return {} if obs is None else {v: o.ready_replicas for v, o in obs.variants.items()}


def _quality(
    services: Sequence[model.ServiceSpec],
    demanded: Mapping[str, demand.ServiceDemand],
    allocation: optimize.Allocation,
    pools: Mapping[str, model.PoolSpec],
    cfg: tuning.PlannerSettings,
) -> tuple[dict[str, float], dict[str, float]]:
    """Per service with a quality floor: the quality of the optimiser's mix (the traffic split
    the plan aims at: replicas the scale-down window keeps a while longer are not part of it),
    and what the floor costs: that mix's node share over that of the cheapest plan of the same
    demand without the floor (solved for the service alone); both said in its reasons."""
    quality: dict[str, float] = {}
    floor_usd: dict[str, float] = {}
    for svc in services:
        d = demanded[svc.key]
        if svc.quality_floor is None or d.unfloored is None:
            continue
        planned = allocation.replicas.get(svc.key, {})
        mix = traffic.mix_quality(svc, planned, d.demand.capacity_rps)
        if mix is not None:
            quality[svc.key] = mix
        bare = optimize.optimize([d.unfloored], pools, cfg).replicas.get(svc.key, {})
        with_usd = pricing.share_usd_per_hour(planned, svc, pools)
        without_usd = pricing.share_usd_per_hour(bare, svc, pools)
        if math.isfinite(with_usd) and math.isfinite(without_usd):
            floor_usd[svc.key] = with_usd - without_usd
        mode = "on average" if svc.quality_average else "per request"
        d.reasons.append(
            f"quality {'unknown' if mix is None else format(mix, '.3f')} over the traffic "
            f"(floor {svc.quality_floor:g} {mode}); the optimiser's mix ${with_usd:.3f}/h by node "
            f"share, ${without_usd:.3f}/h without the floor ("
            + ", ".join(f"{v}={n}" for v, n in sorted(bare.items()) if n)
            + ")"
        )
    return quality, floor_usd


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


def _service_replicas(
    svc: model.ServiceSpec,
    d: demand.ServiceDemand,
    allocation: optimize.Allocation,
    obs: model.Observation | None,
    cycle: demand.Cycle,
) -> tuple[stabilize.ReplicaDecision, tuple[float, float] | None]:
    """Stage three for one service: the optimiser's replicas kept within the tolerance, bridged
    by the safety net and stabilised; with the excess paid over the cheapest cover so far."""
    key, why, dem = svc.key, d.reasons, d.demand
    raw, standby_why = _miss_standby(svc, d, allocation.replicas.get(key, {}), cycle)
    kept = _within_tolerance(raw, cycle.state.last_replicas.get(key), dem, cycle.cfg, cycle.pools)
    if kept is None and standby_why:
        why.append(standby_why)
    if kept is not None and d.known and not d.idle:
        why.append(
            f"keep {kept}: its capacity is within {cycle.cfg.tolerance:.0%} of the demand "
            f"{dem.demand_rps:.2f} rps (optimiser: "
            + ", ".join(f"{v}={n}" for v, n in sorted(raw.items()))
            + ")"
        )
        raw = kept
    slow = evidence.excluded(svc, d.too_slow, cycle.cfg)
    bridge = _bridge(svc, raw, dem, obs, slow, cycle.pools, cycle.cfg.bridge_max_cost_ratio)
    if bridge is not None and obs is not None:
        name, extra, bound = bridge
        attained = (obs.slo_attainment or 0.0) * 100
        why.append(
            f"SLO attainment {attained:.1f} % under the p{svc.slo_percentile:g} target: "
            f"+{extra} {name} replica(s), the fastest to Ready, until the planned capacity is"
            + (f" (at most ${bound:.2f}/h, the plan's cost per hour)" if bound is not None else "")
        )
        raw = {**raw, name: raw.get(name, 0) + extra}
    paid = _excess_paid(svc, d, raw, cycle)
    if d.idle:
        if not svc.batch:  # a batch service said why: nothing waits, or it waits for an hour
            why.append(f"idle for {svc.idle_timeout_s:.0f} s or more: scale to zero")
        return stabilize.ReplicaDecision({v.name: 0 for v in svc.variants}, {}, ()), paid
    decision = stabilize.replicas(
        svc,
        raw,
        cycle.state.last_replicas.get(key),
        cycle.state.history.get(key, {}),
        obs,
        cycle.now_s,
        d.known,
        d.unknown_why or "",
        scheduled=d.scheduled,
        cover=(dem.capacity_rps, dem.demand_rps),
    )
    if allocation.shortfall_rps.get(key, 0.0) > 1e-6:
        why.append(f"pools cannot cover {allocation.shortfall_rps[key]:.2f} rps of the demand")
    why.append(
        f"optimiser ({allocation.method}) recommends "
        + ", ".join(f"{v}={n}" for v, n in sorted(raw.items()))
    )
    why.extend(decision.reasons)
    return decision, paid


def _miss_standby(
    svc: model.ServiceSpec, d: demand.ServiceDemand, raw: Mapping[str, int], cycle: demand.Cycle
) -> tuple[Mapping[str, int], str]:
    """With ``miss_standby``, for ``miss_memory_s`` after an SLO miss, the optimiser's plan has
    at least one replica of the variant that serves an rps for the least money, priced as the
    node it may need (not on spot; none that is too slow or under a quality floor), and the
    reason. The optimiser sizes the plan for the forecast; the misses show that the traffic
    outruns it, and the most capacity per dollar is the cheapest slack for the next burst. Like
    any plan, it applies when it moves beyond the tolerance of the replicas that run."""
    cfg = cycle.cfg
    missed_s = d.missed_s
    if not cfg.miss_standby or missed_s is None or svc.batch or d.idle:
        return raw, ""
    if cycle.now_s - missed_s > cfg.miss_memory_s or sum(raw.values()) >= svc.max_replicas:
        return raw, ""
    usd_per_rps = {
        v.name: cycle.pools[v.pool].usd_per_hour / d.demand.capacity_rps[v.name]
        for v in svc.variants
        if d.demand.capacity_rps.get(v.name, 0.0) > 0
        and v.pool in cycle.pools
        and not cycle.pools[v.pool].spot
    }
    if not usd_per_rps:
        return raw, ""
    best = min(usd_per_rps, key=lambda v: (usd_per_rps[v], v))
    if raw.get(best, 0) > 0:
        return raw, ""
    return {**raw, best: 1}, (
        f"SLO missed {cycle.now_s - missed_s:.0f} s ago: one {best} replica, the most capacity "
        f"per dollar (${usd_per_rps[best]:.3f}/h an rps), stands by for "
        f"{cfg.miss_memory_s:.0f} s after a miss"
    )


def _excess_paid(
    svc: model.ServiceSpec, d: demand.ServiceDemand, raw: Mapping[str, int], cycle: demand.Cycle
) -> tuple[float, float] | None:
    """What the allocation has cost over the cheapest single-variant cover since that became
    cheaper, and when last counted; None to start the count again (a move starts, or nothing
    is left to move). Unknown data pays nothing and loses nothing."""
    paid, since_s = cycle.state.excess_paid.get(svc.key, (0.0, cycle.now_s))
    if d.cover is None or d.moving or d.idle:
        return None
    if not d.known:
        return (paid, cycle.now_s) if paid > 0 else None
    excess = pricing.share_usd_per_hour(raw, svc, cycle.pools) - d.cover.usd_per_hour
    if excess <= 1e-6:
        return None
    step_s = min(max(0.0, cycle.now_s - since_s), _EXCESS_STEP_MAX_S)
    return (paid + excess * step_s / 3600.0, cycle.now_s)


def _pool_nodes(
    services: Sequence[model.ServiceSpec],
    demanded: Mapping[str, demand.ServiceDemand],
    replicas: Mapping[str, Mapping[str, int]],
    reasons: dict[str, list[str]],
    cycle: demand.Cycle,
) -> tuple[
    dict[str, int],
    dict[str, tuple[int, str]],
    dict[str, dict[str, int]],
    dict[str, float],
    dict[str, float],
]:
    """Stage four: each pool's nodes for the planned replicas and its standby nodes
    (:mod:`standby`), stabilised; (nodes, standby nodes, warm replicas per service on them,
    last scale-up times, surplus-since times). A pool that hosts a variant of a service with
    unknown data keeps its nodes this cycle."""
    needed = pricing.pool_nodes_needed(replicas, services, cycle.pools)
    standing = {
        name: _on_pool(pool, services, demanded, replicas, cycle)
        for name, pool in cycle.pools.items()
        if pool.standby_max_nodes > 0
    }
    spare = {
        name: standby.decide(cycle.pools[name], planned, needed.get(name, 0), on_pool)
        for name, (planned, on_pool) in standing.items()
    }
    held_by: dict[str, list[str]] = {}
    for svc in services:
        if not demanded[svc.key].known:
            for pool_name in sorted({v.pool for v in svc.variants}):
                held_by.setdefault(pool_name, []).append(svc.key)
    nodes: dict[str, int] = {}
    warm: dict[str, dict[str, int]] = {}
    scale_up_s = dict(cycle.state.pool_scale_up_s)
    surplus_since: dict[str, float] = {}
    for name, pool in sorted(cycle.pools.items()):
        ahead = spare.get(name, standby.Standby())
        node_decision = stabilize.nodes(
            pool,
            needed.get(name, 0) + ahead.nodes,
            cycle.state.last_nodes.get(name),
            cycle.state.pool_scale_up_s.get(name),
            cycle.state.pool_surplus_since_s.get(name),
            cycle.now_s,
            cycle.cfg,
            held_by=tuple(held_by.get(name, ())),
        )
        nodes[name] = node_decision.nodes
        if node_decision.scale_up_s is not None:
            scale_up_s[name] = node_decision.scale_up_s
        if node_decision.surplus_since_s is not None:
            surplus_since[name] = node_decision.surplus_since_s
        reasons[f"pool:{name}"] = [
            f"{needed.get(name, 0)} node(s) needed for the planned replicas",
            *([ahead.reason] if ahead.reason else []),
            *node_decision.reasons,
        ]
        if pool.standby_warm and name in standing:
            spare[name], started = _warm_pool(
                pool, standing[name], ahead, nodes[name], needed.get(name, 0), reasons
            )
            for key, mine in started.items():
                warm[key] = _plus(warm.get(key, {}), mine)
    return (
        nodes,
        {n: (s.nodes, s.reason) for n, s in spare.items()},
        warm,
        scale_up_s,
        surplus_since,
    )


def _warm_pool(
    pool: model.PoolSpec,
    standing: tuple[list[tuple[model.Resources, int]], list[standby.ServiceOnPool]],
    ahead: standby.Standby,
    nodes: int,
    needed: int,
    reasons: dict[str, list[str]],
) -> tuple[standby.Standby, dict[str, dict[str, int]]]:
    """A warm pool's standby: every node it keeps beyond the ``needed`` ones (``ahead``'s, and
    those not yet released after a fall), and the replicas started on them per service, each
    service's reason told."""
    planned, on_pool = standing
    kept = nodes - needed
    started = standby.warm(pool, planned, needed, kept, on_pool)
    why = ahead.reason
    if kept > ahead.nodes:  # not yet released after a fall: standby while they stay
        why += f"; {kept - ahead.nodes} more kept beyond the demand, not yet released"
    if started:
        why += "; warm: " + ", ".join(
            f"{n} {v} of {key}" for key, mine in started.items() for v, n in mine.items()
        )
    for key, mine in started.items():
        reasons.setdefault(key, []).append(
            "warm standby: "
            + ", ".join(f"+{n} {v}" for v, n in sorted(mine.items()))
            + f" started on the {kept} node(s) pool {pool.name} keeps beyond the demand"
        )
    return standby.Standby(max(0, kept), why), started


def _plus(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    """Replica counts added per variant."""
    return {v: a.get(v, 0) + b.get(v, 0) for v in {**a, **b}}


def _on_pool(
    pool: model.PoolSpec,
    services: Sequence[model.ServiceSpec],
    demanded: Mapping[str, demand.ServiceDemand],
    replicas: Mapping[str, Mapping[str, int]],
    cycle: demand.Cycle,
) -> tuple[list[tuple[model.Resources, int]], list[standby.ServiceOnPool]]:
    """The (resources, replicas) planned on one pool, and the services planned on it as reasons
    for standby nodes."""
    planned: list[tuple[model.Resources, int]] = []
    on_pool = []
    for svc in services:
        mine = replicas.get(svc.key, {})
        planned += [(v.resources, mine.get(v.name, 0)) for v in svc.variants if v.pool == pool.name]
        d = demanded[svc.key]
        here = standby.on_pool(
            svc,
            mine,
            d.demand.capacity_rps,
            d.forecast,
            pool,
            cycle.now_s,
            cycle.cfg,
            None if d.known else d.unknown_why or "metrics unknown",
        )
        if here is not None and svc.acting:
            on_pool.append(here)
    return planned, on_pool


def _bridge(
    svc: model.ServiceSpec,
    raw: Mapping[str, int],
    dem: optimize.Demand,
    obs: model.Observation | None,
    slow: Mapping[str, tuple[float, float, float]],
    pools: Mapping[str, model.PoolSpec],
    max_cost_ratio: float = math.inf,
) -> tuple[str, int, float | None] | None:
    """The safety net: while the measured SLO attainment is under the SLO percentile, the
    demand that the planned capacity cannot serve by the time the fastest feasible variant could
    be Ready is bridged with that variant (variant, extra replicas, and the $/h bound when that
    cut them: ``max_cost_ratio`` times what the planned replicas cost); else None.

    The optimiser weighs cost; a cheaper variant that takes ten minutes to arrive leaves the
    service missing its SLO for those ten minutes. Capacity Ready soonest is what has been shown
    to help then; make-before-break keeps it until the planned capacity is Ready."""
    if obs is None or obs.slo_attainment is None or svc.batch:
        return None  # a batch service's queue is its demand already
    if obs.slo_attainment >= svc.slo_percentile / 100.0:
        return None
    if not evidence.finite(obs.queued) or (obs.queued or 0.0) <= 0:
        return None  # no queue: the misses are slow requests, which more replicas do not speed
    feasible = [
        v
        for v in svc.variants
        if v.name not in slow
        and dem.capacity_rps.get(v.name, 0) > 0
        and not (svc.quality_average and svc.below_floor(v))
        and not (v.pool in pools and pools[v.pool].spot)  # what has been shown to work: on-demand
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
    extra = min(room, math.ceil(gap / dem.capacity_rps[fastest.name]))
    bound = max_cost_ratio * pricing.share_usd_per_hour(raw, svc, pools)
    each = pricing.share_usd_per_hour({fastest.name: 1}, svc, pools)
    if not (each > 0 and math.isfinite(each) and math.isfinite(bound)) or extra * each <= bound:
        return fastest.name, extra, None
    return fastest.name, max(1, math.floor(bound / each)), bound


def _within_tolerance(
    raw: Mapping[str, int],
    last: Mapping[str, int] | None,
    dem: optimize.Demand,
    cfg: tuning.PlannerSettings,
    pools: Mapping[str, model.PoolSpec],
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
    if dem.service.quality_average and dem.service.quality_floor is not None:
        quality = traffic.mix_quality(dem.service, current, dem.capacity_rps)
        if quality is not None and quality < dem.service.quality_floor:
            return None  # under the floor (raised since): the optimiser's mix meets it
    if not optimize.spot_holds(dem, current, pools):
        return None  # too much on spot for its share or its loss floor: the optimiser's holds
    return current
