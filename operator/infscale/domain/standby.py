"""Standby nodes: nodes a pool keeps Ready ahead of the replicas that may need them.

A new replica on a pool with a free node waits for its start-up only; without one it waits for a
node as well, minutes for a GPU node. Bursts shorter than that are met only by what is already
there, so a platform team keeps warm headroom. Here the planner decides it, per pool and within
the pool's ``spec.standby.maxNodes`` (0, the default: none): as many nodes as the replicas
its services could need within one provisioning time. A service's need is how far its rate may
rise within that time above the capacity planned for it: its forecast's upward trend over it,
and ``standby_sigmas`` standard deviations of its one-step under-forecasts. A service that has
received traffic for less than one provisioning time has shown nothing of how fast it rises, and
one whose rate is unknown now (metrics lost, its servers not reporting) may be rising unseen: the
pool keeps its maximum for it. The nodes cost their price (``status.standbyUsdPerHour``); in
return, while they are empty, the services on the pool hold peaks and trends for a start-up's
lead, not a node's as well (``demand.Cycle.cold_start_s``).

A start-up takes minutes too (a model server loads its weights), so a pool may keep them
**warm** (``standby_warm``): every node it keeps beyond the planned replicas' (its standby nodes,
and nodes not yet released after a fall) runs started replicas of the services on the pool,
serving beside their planned replicas, at the same node price (:func:`warm`). A rise then finds
capacity Ready, not a node to start on; the services' demand, windows and memory count only
their planned replicas.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from infscale.domain import forecast, model, pricing, tuning


@dataclasses.dataclass(frozen=True)
class ServiceOnPool:
    """A service with planned replicas on the pool: what a standby node would be for."""

    key: str
    variant: model.VariantSpec
    """Its variant on the pool that the plan runs most replicas of."""
    replica_rps: float
    """What one replica of that variant carries."""
    short_rps: float | None
    """How far its rate may rise above its planned capacity within one provisioning time
    (0: not at all); None when unknown (``unknown_why``)."""
    rise_rps: float | None
    """How far its rate may rise within that time; None when unknown."""
    room: int = 0
    """Replicas it may still add within its ``max_replicas``."""
    unknown_why: str = ""
    """Why ``short_rps`` is unknown (empty when it is known)."""


@dataclasses.dataclass(frozen=True)
class Standby:
    """A pool's standby nodes and why."""

    nodes: int = 0
    reason: str = ""


def rise_rps(
    state: model.ForecastState, horizon_s: float, now_s: float, cfg: tuning.PlannerSettings
) -> float | None:
    """How far a service's rate may rise within ``horizon_s`` above its smooth level: the upward
    trend over it (bounded as :func:`forecast.demand_rps` bounds it) and ``standby_sigmas``
    standard deviations of the one-step under-forecasts, the size of its usual surprise (a burst
    arrives within a step; a ramp is the trend's). None when it has received traffic for less
    than ``horizon_s`` (or none yet)."""
    if state.active_since_s is None or now_s - state.active_since_s < horizon_s:
        return None
    trend = max(0.0, state.trend_rps_per_s) * min(horizon_s, cfg.trend_horizon_s)
    trend = min(trend, cfg.max_trend_growth * state.level_rps)
    return trend + cfg.standby_sigmas * math.sqrt(max(state.var_rps2, 0.0))


def on_pool(
    svc: model.ServiceSpec,
    replicas: Mapping[str, int],
    replica_rps: Mapping[str, float],
    state: model.ForecastState,
    pool: model.PoolSpec,
    now_s: float,
    cfg: tuning.PlannerSettings,
    signals_unknown: str | None = None,
) -> ServiceOnPool | None:
    """``svc`` as a reason for standby nodes on ``pool``: None unless the plan runs a replica of
    one of its variants there. ``signals_unknown``: what of its metrics is unknown this cycle
    (None: nothing)."""
    here = [v for v in svc.variants if v.pool == pool.name and replicas.get(v.name, 0) > 0]
    if not here:
        return None
    variant = max(here, key=lambda v: (replicas[v.name], v.name))
    planned_rps = sum(replica_rps.get(v, 0.0) * n for v, n in replicas.items())
    rise = None if signals_unknown else rise_rps(state, pool.provisioning_s, now_s, cfg)
    short, why = None, ""
    if signals_unknown:
        why = f"{signals_unknown} now, so how fast it rises is unknown (it may be rising unseen)"
    elif rise is None:
        why = (
            f"received traffic for less than the pool's {pool.provisioning_s:.0f} s "
            "provisioning, so how fast it rises is unknown"
        )
    else:
        short = max(0.0, forecast.smooth_rps(state, cfg) + rise - planned_rps)
    room = max(0, svc.max_replicas - sum(replicas.values()))
    return ServiceOnPool(
        svc.key, variant, replica_rps.get(variant.name, 0.0), short, rise, room, why
    )


def decide(
    pool: model.PoolSpec,
    planned: Sequence[tuple[model.Resources, int]],
    needed: int,
    services: Sequence[ServiceOnPool],
) -> Standby:
    """The standby nodes of ``pool``, beyond the ``needed`` nodes its ``planned`` (resources,
    replicas) take, for the ``services`` planned on it; within ``standby_max_nodes`` and
    ``max_nodes``."""
    if pool.standby_max_nodes <= 0 or not services:
        return Standby()
    room = max(0, min(pool.standby_max_nodes, pool.max_nodes - needed))
    unknown = [f"{s.key}: {s.unknown_why}" for s in services if s.short_rps is None]
    if unknown:
        return Standby(
            room, f"{_priced(room, pool)}, the most spec.standby allows: {'; '.join(unknown)}"
        )
    extra = [
        (s.variant.resources, math.ceil(s.short_rps / s.replica_rps - 1e-9))
        for s in services
        if s.short_rps and s.replica_rps > 0
    ]
    wanted = pricing.nodes_needed([*planned, *extra], pool.node) - needed if extra else 0
    nodes = min(wanted, room)
    rises = "; ".join(
        f"{s.key} may rise {s.rise_rps or 0.0:.2f} rps within {pool.provisioning_s:.0f} s, "
        f"{s.short_rps or 0.0:.2f} rps above its planned capacity"
        for s in services
    )
    capped = f" (capped at {room})" if wanted > room else ""
    return Standby(nodes, f"{_priced(nodes, pool)}{capped}: {rises}")


def warm(
    pool: model.PoolSpec,
    planned: Sequence[tuple[model.Resources, int]],
    needed: int,
    spare: int,
    services: Sequence[ServiceOnPool],
) -> dict[str, dict[str, int]]:
    """Per service, the replicas started on the ``spare`` nodes a warm pool keeps beyond the
    ``needed`` ones of its ``planned`` (resources, replicas): one at a time to each service in
    turn, within its ``room``, while they fit."""
    counts = [0] * len(services)
    items = list(planned)
    growing = spare > 0
    while growing:
        growing = False
        for i, s in enumerate(services):
            trial = [*items, (s.variant.resources, 1)]
            if counts[i] < s.room and pricing.nodes_needed(trial, pool.node) <= needed + spare:
                items, growing = trial, True
                counts[i] += 1
    return {s.key: {s.variant.name: n} for s, n in zip(services, counts, strict=True) if n > 0}


def _priced(nodes: int, pool: model.PoolSpec) -> str:
    return f"standby {nodes} node(s) at ${nodes * pool.usd_per_hour:.2f}/h"
