"""Stabilisation of raw optimiser output: what actually changes this cycle, and why.

Rules: scale up at once; scale down only to the highest recommendation of the stabilization
window (a recommendation raised by a burst due on the clock stays out of it) and by at most
``scale_down_max_step`` replicas per decision, and not while the recommendation is rising (the
rate lags a climbing load); never scale down on unknown data;
make-before-break (a service keeps its old replicas while replicas of another variant are still
starting); nodes grow at once and shrink only when the surplus has been empty for
``node_unneeded_s`` and the pool has not grown for ``node_cooldown_s``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from infscale.domain import model, tuning


@dataclasses.dataclass(frozen=True)
class ReplicaDecision:
    """Stabilised replicas of one service, the updated window and the reasons."""

    replicas: dict[str, int]
    history: dict[str, tuple[tuple[float, int], ...]]
    reasons: tuple[str, ...]


def replicas(
    service: model.ServiceSpec,
    raw: Mapping[str, int],
    last: Mapping[str, int] | None,
    history: Mapping[str, tuple[tuple[float, int], ...]],
    obs: model.Observation | None,
    now_s: float,
    data_known: bool,
    unknown_why: str = "",
    scheduled: bool = False,
    cover: tuple[Mapping[str, float], float] | None = None,
) -> ReplicaDecision:
    """Apply the scale-down window, step bound, unknown-data hold and make-before-break (a batch
    service: only the unknown-data hold; it scales down at once).

    ``data_known`` False (the rate, or any signal the decision needs, is unknown) allows
    scale-up only; ``unknown_why`` names what is missing for the reason.

    ``scheduled``: a burst due on the clock raised ``raw``. It applies (up at once) but stays
    out of the window: the window keeps capacity through dips of noisy demand, and the end of
    a burst that came on time is no dip. Its replicas go once it is no longer due.

    ``cover`` (usable rps per replica of each variant, demand rps): make-before-break keeps only
    as many old replicas as the Ready capacity needs to cover the demand; without it, all.
    """
    window_s = service.scale_down_stabilization_s
    new_history: dict[str, tuple[tuple[float, int], ...]] = {}
    target: dict[str, int] = {}
    reasons: list[str] = []
    for variant in service.variants:
        name = variant.name
        rec = int(raw.get(name, 0))
        window = [(t, n) for t, n in history.get(name, ()) if now_s - t < window_s]
        previous = window[-1][1] if window else None
        if not scheduled:
            window.append((now_s, rec))
        elif rec > int((last or {}).get(name, 0)):
            reasons.append(
                f"{name}: replicas for the burst due on the clock stay out of the "
                f"{window_s:.0f} s window and go once it has passed"
            )
        new_history[name] = tuple(window)
        if last is None:
            target[name] = rec
            continue
        current = int(last.get(name, 0))
        if rec >= current:
            target[name] = rec
            if rec > current:
                reasons.append(f"scale up {name} {current}->{rec} at once")
            continue
        if _barred(service, variant):
            target[name] = rec
            reasons.append(
                f"scale down {name} {current}->{rec} at once: its quality {variant.quality} is "
                f"under the per-request floor {service.quality_floor:g}, so none of its pods "
                "may serve (a plain Service would still send them their share)"
            )
            continue
        if not data_known:
            target[name] = current
            reasons.append(
                f"hold {name} at {current}: {unknown_why or 'request rate unknown'}, "
                "never scale down on unknown data"
            )
            continue
        if service.batch:
            target[name] = rec
            reasons.append(
                f"scale down {name} {current}->{rec} at once: batch work waits, so its capacity "
                "goes as soon as the plan needs less (and interactive work may need the nodes)"
            )
            continue
        if previous is not None and rec > previous:
            target[name] = current
            reasons.append(
                f"hold {name} at {current}: the recommendation is rising ({previous}->{rec}), "
                "no scale-down while the load climbs"
            )
            continue
        held = max((n for _, n in window), default=rec)
        value = max(rec, min(held, current))
        if service.scale_down_max_step > 0:
            value = max(value, current - service.scale_down_max_step)
        target[name] = value
        if value >= current:
            reasons.append(
                f"hold {name} at {current} (recommended {rec}; highest in the "
                f"{window_s:.0f} s window {held})"
            )
        elif value > rec:
            reasons.append(
                f"scale down {name} {current}->{value} (recommended {rec}; highest in the "
                f"{window_s:.0f} s window {held}; step {service.scale_down_max_step or 'any'})"
            )
        else:
            reasons.append(
                f"scale down {name} {current}->{value}: "
                f"nothing higher in the {window_s:.0f} s window"
            )
    if last is not None and obs is not None and not service.batch:
        _make_before_break(service, target, last, obs, cover, reasons)
    return ReplicaDecision(target, new_history, tuple(reasons))


def _make_before_break(
    service: model.ServiceSpec,
    target: dict[str, int],
    last: Mapping[str, int],
    obs: model.Observation,
    cover: tuple[Mapping[str, float], float] | None,
    reasons: list[str],
) -> None:
    """Keep old replicas (in ``target``) while another variant's are starting: as many as the
    Ready capacity needs to cover the demand (``cover``), or all without it."""
    seen = obs.variants
    starting = [
        v.name for v in service.variants if v.name in seen and target[v.name] > _ready(seen, v.name)
    ]
    per_replica, demand_rps = cover if cover is not None else ({}, math.inf)
    ready_rps = sum(
        per_replica.get(v.name, 0.0) * min(target[v.name], _ready(seen, v.name))
        for v in service.variants
    )
    for variant in service.variants:
        name = variant.name
        current = int(last.get(name, 0))
        others = [s for s in starting if s != name]
        if target[name] >= current or not others or _barred(service, variant):
            continue
        short_rps = demand_rps - ready_rps
        if short_rps <= 1e-9:
            reasons.append(
                f"scale down {name} to {target[name]} while {', '.join(others)} starts: "
                f"the Ready capacity {ready_rps:.2f} rps covers the demand {demand_rps:.2f} rps"
            )
            continue
        rps = per_replica.get(name, 0.0)
        keep = current - target[name]
        if rps > 0 and math.isfinite(short_rps):
            keep = min(keep, math.ceil(short_rps / rps - 1e-9))
        spare_ready = max(0, min(current, _ready(seen, name)) - target[name])
        ready_rps += rps * min(keep, spare_ready)
        target[name] += keep
        reasons.append(
            f"make-before-break: keep {name} at {target[name]} until {', '.join(others)} is Ready"
        )


def _ready(seen: Mapping[str, model.VariantObservation], name: str) -> int:
    return seen[name].ready_replicas if name in seen else 0


@dataclasses.dataclass(frozen=True)
class NodeDecision:
    """Stabilised node count of one pool and the cool-down bookkeeping."""

    nodes: int
    scale_up_s: float | None
    surplus_since_s: float | None
    reasons: tuple[str, ...]


def nodes(
    pool: model.PoolSpec,
    needed: int,
    last: int | None,
    scale_up_s: float | None,
    surplus_since_s: float | None,
    now_s: float,
    cfg: tuning.PlannerSettings,
    held_by: tuple[str, ...] = (),
) -> NodeDecision:
    """Grow at once; shrink to ``needed`` only after the surplus stayed empty and cooled down.

    ``held_by`` names services with unknown data on this pool: it does not shrink this cycle.
    """
    reasons: list[str] = []
    required = max(pool.min_nodes, min(needed, pool.max_nodes))
    if needed > pool.max_nodes:
        reasons.append(f"needs {needed} nodes but maxNodes is {pool.max_nodes}: demand not covered")
    if last is None or required > last:
        if last is not None:
            reasons.append(f"grow {last}->{required} nodes at once")
        return NodeDecision(
            required, now_s if last is not None else scale_up_s, None, tuple(reasons)
        )
    if required == last:
        return NodeDecision(last, scale_up_s, None, tuple(reasons))
    since = now_s if surplus_since_s is None else surplus_since_s
    empty_for = now_s - since
    if held_by:
        reasons.append(
            f"keep {last} nodes ({last - required} surplus): data unknown for "
            f"{', '.join(held_by)}, never scale down on unknown data"
        )
        return NodeDecision(last, scale_up_s, since, tuple(reasons))
    cooled = scale_up_s is None or now_s - scale_up_s >= cfg.node_cooldown_s
    if empty_for >= cfg.node_unneeded_s and cooled:
        reasons.append(f"release {last - required} empty node(s) {last}->{required}")
        return NodeDecision(required, scale_up_s, None, tuple(reasons))
    reasons.append(
        f"keep {last} nodes ({last - required} empty for {empty_for:.0f} s; release after "
        f"{cfg.node_unneeded_s:.0f} s empty and {cfg.node_cooldown_s:.0f} s after the last growth)"
    )
    return NodeDecision(last, scale_up_s, since, tuple(reasons))


def _barred(service: model.ServiceSpec, variant: model.VariantSpec) -> bool:
    """Whether a per-request quality floor bars the variant from serving."""
    return service.below_floor(variant) and not service.quality_average
