"""What a service's observations say, read before its demand is forecast: the rate requests
really arrive at (completions plus the queue's growth), the signals that are missing, the variants
too slow for the SLO whatever their load, the rates at which a variant was seen too slow, and the
demand headroom that recent SLO misses call for. Pure functions of one service's observation and
the memory the planner keeps for it."""

from __future__ import annotations

import math
from collections.abc import Mapping

from infscale.domain import capacity, model, tuning


def ceilings(
    svc: model.ServiceSpec,
    obs: model.Observation,
    learned: Mapping[str, float],
    previous: Mapping[str, tuple[float, float]],
    now_s: float,
    cfg: tuning.PlannerSettings,
    in_backlog: bool,
    too_few: bool,
) -> dict[str, tuple[float, float]]:
    """Per variant, the (per-replica rps, time) at which it was last seen too slow, if lately
    (``too_few``: :func:`too_few_requests`, no sample counts)."""
    kept = {v: c for v, c in previous.items() if now_s - c[1] <= cfg.capacity_ceiling_memory_s}
    for v in svc.variants:
        slow_rps = capacity.too_slow_at(
            learned.get(v.name, v.capacity_rps),
            obs.variants.get(v.name),
            svc.slo_latency_s,
            in_backlog,
            too_few,
        )
        if slow_rps is not None:
            kept[v.name] = (slow_rps, now_s)
    return kept


def too_slow(
    svc: model.ServiceSpec,
    obs: model.Observation,
    caps: Mapping[str, float],
    previous: Mapping[str, tuple[float, float, float]],
    now_s: float,
    cfg: tuning.PlannerSettings,
    in_backlog: bool,
) -> dict[str, tuple[float, float, float]]:
    """Per variant seen over the SLO at light load with nothing queued: (latency, first seen,
    last seen). Such a sample may be a burst's backlog that has just drained (the latency
    window still holds it), so a variant counts as too slow (:func:`excluded`) only once every
    decision for ``too_slow_confirm_s`` saw it so; a sample that does not, clears it. A
    confirmed one is remembered ``too_slow_memory_s``."""
    kept: dict[str, tuple[float, float, float]] = {}
    for name, (latency_s, first_s, last_s) in previous.items():
        confirmed = last_s - first_s >= cfg.too_slow_confirm_s
        if confirmed and now_s - last_s <= cfg.too_slow_memory_s:
            kept[name] = (latency_s, first_s, last_s)
    queued = obs.queued if finite(obs.queued) else None
    quiet = not in_backlog and queued is not None and queued <= 0
    for v in svc.variants:
        seen = obs.variants.get(v.name)
        if seen is None or seen.ready_replicas <= 0 or not finite(seen.rps):
            continue  # no traffic, no evidence either way
        slow = (
            quiet
            and finite(seen.latency_s)
            and (seen.latency_s or 0.0) > svc.slo_latency_s
            and (seen.rps or 0.0) / seen.ready_replicas
            <= cfg.too_slow_load_fraction * caps.get(v.name, v.capacity_rps)
        )
        if not slow:
            continue  # an unconfirmed span ends here (only confirmed ones were kept)
        before = previous.get(v.name)
        recent = before is not None and now_s - before[2] <= TOO_SLOW_GAP_S
        # A confirmed finding (kept above) goes on: a later slow sample never restarts it.
        first_s = before[1] if before is not None and (recent or v.name in kept) else now_s
        kept[v.name] = (float(seen.latency_s or 0.0), first_s, now_s)
    return kept


def too_few_requests(svc: model.ServiceSpec, obs: model.Observation) -> bool:
    """The service's window holds fewer than ``1 / (1 - percentile)`` requests (20 at p95):
    its SLO percentile is then no more than its slowest request. False when unknown."""
    if obs.rps is None or obs.rate_window_s <= 0 or svc.slo_percentile >= 100:
        return False
    return obs.rps * obs.rate_window_s * (1.0 - svc.slo_percentile / 100.0) < 1.0


TOO_SLOW_GAP_S = 60.0
"""Two slow samples further apart than this (no decision, or no traffic, between) start anew."""


def excluded(
    svc: model.ServiceSpec,
    candidates: Mapping[str, tuple[float, float, float]],
    cfg: tuning.PlannerSettings,
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
    if finite(obs.rps) and (obs.rps or 0.0) > 0 and not finite(obs.latency_s):
        gaps.append("service latency")
    for variant in svc.variants:
        seen = obs.variants.get(variant.name)
        if seen is None or seen.ready_replicas <= 0:
            continue
        if not finite(seen.rps):
            gaps.append(f"{variant.name} request rate")
        elif (seen.rps or 0.0) > 0 and not finite(seen.latency_s):
            gaps.append(f"{variant.name} latency")
    gaps.extend(m for m in obs.missing if m not in gaps)
    return tuple(gaps)


def arrival_rps(
    previous: model.ForecastState, obs: model.Observation, now_s: float
) -> float | None:
    """The rate requests arrive at: what the servers completed over the rate window plus how
    fast their queue grew over it (or minus how fast it drained). Saturated servers complete only
    what they can, so completions alone hide demand exactly when it matters; the queue's change
    is the rest of it. Without a queue reading from about one window ago, the completions."""
    if not finite(obs.rps):
        return obs.rps
    rps = float(obs.rps or 0.0)
    if not finite(obs.queued) or not previous.queue_samples:
        return rps
    window_s = obs.rate_window_s if obs.rate_window_s > 0 else QUEUE_SLACK_S
    then_s, then_q = min(previous.queue_samples, key=lambda s: abs(s[0] - (now_s - window_s)))
    if abs(then_s - (now_s - window_s)) > max(QUEUE_SLACK_S, window_s / 2) or then_s >= now_s:
        return rps
    return max(0.0, rps + (float(obs.queued or 0.0) - then_q) / (now_s - then_s))


def queue_samples(
    previous: model.ForecastState, obs: model.Observation, now_s: float
) -> tuple[tuple[float, float], ...]:
    """The queue readings of the last few windows, this one added when known."""
    horizon_s = 2 * max(obs.rate_window_s, QUEUE_SLACK_S)
    kept = [(t, q) for t, q in previous.queue_samples if now_s - horizon_s <= t < now_s]
    if finite(obs.queued):
        kept.append((now_s, float(obs.queued or 0.0)))
    return tuple(kept)


QUEUE_SLACK_S = 30.0
"""A queue reading this far from one rate window ago still measures the queue's change."""


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def headroom(
    current: float,
    last_s: float | None,
    obs: model.Observation,
    svc: model.ServiceSpec,
    now_s: float,
    cfg: tuning.PlannerSettings,
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
