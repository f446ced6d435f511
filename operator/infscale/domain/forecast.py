"""Demand forecast per service: Holt smoothing, peak hold, recurring bursts and a margin.

Why this model: decisions run every 15-30 s on thousands of services, and what matters is the
rate over the next lead time (pod start, plus node provisioning when no node is free; one to
fifteen minutes). Holt's linear method (level + trend, adapted to irregular sample intervals by
time constants) follows the ramps of a diurnal curve at O(1) cost and memory per service. Bursty
inference traffic (the Azure LLM code trace idles for minutes between bursts) breaks any smooth
model, so a peak hold keeps the forecast at or above the highest rate seen within the lead time
(capacity released now could not return before a burst that recent recurs), and an EWMA of
squared one-step under-forecasts widens the smooth forecast on noisy services. Bursts that
recur on a clock (timer-triggered work on the hour) are remembered per minute of the last
periods and provisioned for a lead time before they return (:func:`seasonal_rps`).
Only upward trends are extrapolated: a falling forecast is acted on through the stabilization
window, never predicted early. ARIMA-class models need per-service fitting and history, and would
not beat the peak hold on bursts; they do not earn their cost here.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import operator
import statistics

from infscale.domain import model, tuning


def update(
    state: model.ForecastState,
    rps: float | None,
    now_s: float,
    cfg: tuning.PlannerSettings,
    expected_rps: float = 0.0,
) -> model.ForecastState:
    """Fold one observed rate into the forecaster; an unknown rate (None) changes nothing.

    ``expected_rps``: the recurring burst due now (the first of :func:`seasonal_profile`). A rate
    within it is that burst: the per-minute memory keeps it for its next period, but it is no
    error of the smooth forecast and no peak to hold, since it comes back a period later, not
    within the lead.
    """
    if rps is None or not math.isfinite(rps):
        return state
    rps = max(0.0, rps)
    hold_s = max(cfg.peak_hold_s, cfg.peak_hold_max_s)
    minutes = _push_minute(state.minutes, now_s, rps, cfg)
    active_since_s = state.active_since_s
    if active_since_s is None and rps > 0:
        active_since_s = now_s
    if state.last_s is not None and state.level_rps < rps <= expected_rps * HOLD_SURPRISE:
        peaks = tuple((t, r) for t, r in state.peaks if now_s - t <= hold_s)
        return dataclasses.replace(
            state,
            last_s=now_s,
            peaks=peaks,
            minutes=minutes,
            active_since_s=active_since_s,
        )
    peaks = _push_peak(state.peaks, now_s, rps, hold_s)
    if state.last_s is None:
        return model.ForecastState(
            level_rps=rps,
            last_s=now_s,
            peaks=peaks,
            minutes=minutes,
            active_since_s=active_since_s,
        )
    dt_s = max(now_s - state.last_s, 1e-3)
    alpha = 1.0 - math.exp(-dt_s / cfg.level_tau_s)
    beta = 1.0 - math.exp(-dt_s / cfg.trend_tau_s)
    predicted = state.level_rps + state.trend_rps_per_s * dt_s
    error = rps - predicted
    level = max(0.0, predicted + alpha * error)
    trend = state.trend_rps_per_s + alpha * beta * error / dt_s
    # Only under-forecasts feed the margin: they are what risks the SLO. Over-forecasts while the
    # level catches up with a fall would otherwise hold capacity up long after a burst ends.
    shortfall = max(error, 0.0)
    var = (1.0 - alpha) * state.var_rps2 + alpha * shortfall * shortfall
    return model.ForecastState(
        level_rps=level,
        trend_rps_per_s=trend,
        var_rps2=var,
        last_s=now_s,
        peaks=peaks,
        minutes=minutes,
        active_since_s=active_since_s,
    )


HOLD_SURPRISE = 1.5  # a burst this much above the recurring one expected is held as any other


def demand_rps(
    state: model.ForecastState,
    now_s: float,
    lead_s: float,
    cfg: tuning.PlannerSettings,
    hold_lead_s: float | None = None,
) -> float:
    """The rate to provision for over the next ``lead_s`` seconds, margin included.

    Peaks are held for ``hold_lead_s`` (the lead of the capacity in use; default ``lead_s``),
    within ``[peak_hold_s, peak_hold_max_s]``.
    """
    horizon_s = min(max(0.0, lead_s), cfg.trend_horizon_s)
    trend_part = max(0.0, state.trend_rps_per_s) * horizon_s
    trend_part = min(trend_part, cfg.max_trend_growth * state.level_rps)
    hold_lead_s = lead_s if hold_lead_s is None else hold_lead_s
    hold_s = min(max(cfg.peak_hold_s, hold_lead_s), max(cfg.peak_hold_s, cfg.peak_hold_max_s))
    peak = max((r for t, r in state.peaks if now_s - t <= hold_s), default=0.0)
    # The margin widens the smooth forecast; the held peak is an observed rate, not a guess.
    margin = cfg.margin_sigmas * math.sqrt(max(state.var_rps2, 0.0))
    return max(0.0, state.level_rps + trend_part + margin, peak)


def fresh_rps(state: model.ForecastState, now_s: float, cfg: tuning.PlannerSettings) -> float:
    """The rate to buy new capacity for: the smooth level with its margin, or the latest observed
    rate when higher. No held peak (a burst that has passed) and no trend (a rising rate is as
    often a burst's edge as a ramp): :func:`demand_rps` keeps capacity for those."""
    latest_s, latest_rps = state.peaks[-1] if state.peaks else (None, 0.0)
    if latest_s is None or latest_s != state.last_s or now_s - latest_s > cfg.peak_hold_s:
        latest_rps = 0.0
    return max(smooth_rps(state, cfg), latest_rps)


def smooth_rps(state: model.ForecastState, cfg: tuning.PlannerSettings) -> float:
    """The smooth level with its margin: the rate arriving now, its bursts aside."""
    margin = cfg.margin_sigmas * math.sqrt(max(state.var_rps2, 0.0))
    return max(0.0, state.level_rps + margin)


def seasonal_rps(
    state: model.ForecastState, now_s: float, lead_s: float, cfg: tuning.PlannerSettings
) -> float:
    """The rate of a burst that recurs with period ``season_s`` and is due within ``lead_s``;
    0 when none is (the highest of :func:`seasonal_profile`)."""
    return max(seasonal_profile(state, now_s, lead_s, cfg), default=0.0)


def seasonal_profile(
    state: model.ForecastState, now_s: float, lead_s: float, cfg: tuning.PlannerSettings
) -> list[float]:
    """The rate expected of a burst recurring with period ``season_s``, for each minute from
    now to ``lead_s`` ahead (0 where none is due; empty when nothing can be said or none is).

    For each minute (bucket) due within the lead, capped at half a period, and each of the
    last ``season_periods`` periods: the highest rate at that minute of the period (one bucket
    of slack either side), scaled by today's median rate (the last half period) over that
    period's median around it (half a period either side), so bursts grow and shrink with the
    traffic. A minute counts only if its burst reached ``season_min_ratio`` times that median,
    and ``season_min_burst_rps``, in every one of those periods; it is expected at the smallest
    of its scaled rates.
    """
    if not _season_on(cfg) or not state.minutes:
        return []
    bucket_s = cfg.season_bucket_s
    minutes = state.minutes
    half = int(cfg.season_s / 2 / bucket_s)
    now_i = math.floor(now_s / bucket_s)
    recent = _between(minutes, now_i - half, now_i)
    if not recent:  # nothing observed lately (a metrics outage): nothing to scale by
        return []
    today = statistics.median(recent)
    ahead = math.floor(min(max(lead_s, 0.0), cfg.season_s / 2) / bucket_s)
    # Each period must have been watched at least 40 % as densely as the last half period
    # (decisions may come every 15 s or every 5 min; a young memory has not seen it yet).
    needed = max(3.0, 0.4 * len(recent) / (half + 1) * (2 * half + ahead + 1))
    # Per period, per minute due: the burst's rate scaled to today, or 0 where it was too low.
    periods = []
    for k in range(1, cfg.season_periods + 1):
        first = math.floor((now_s - k * cfg.season_s) / bucket_s)
        around = _between(minutes, first - half, first + ahead + half)
        if len(around) < needed:
            return []
        usual = statistics.median(around)
        scale = today / usual if usual > 0 else 1.0
        least = max(cfg.season_min_ratio * usual, cfg.season_min_burst_rps)
        rates = [0.0] * (ahead + 3)  # buckets first - 1 to first + ahead + 1
        for i, rate in _slice(minutes, first - 1, first + ahead + 1):
            rates[i - first + 1] = rate
        bursts = map(max, rates, rates[1:], rates[2:])  # one bucket of slack either side
        due = [burst * scale if burst >= least else 0.0 for burst in bursts]
        if not any(due):  # the smallest over the periods: nothing is due
            return []
        periods.append(due)
    return [min(due) for due in zip(*periods, strict=True)]


def highest_before(
    state: model.ForecastState, before_s: float, cfg: tuning.PlannerSettings
) -> float | None:
    """The highest rate of the per-minute memory among minutes that ended by ``before_s``;
    None when it holds none (no memory yet, or the seasonal memory is off)."""
    if not _season_on(cfg):
        return None
    last = math.floor(before_s / cfg.season_bucket_s) - 1
    rates = _between(state.minutes, -(2**62), last)
    return max(rates) if rates else None


def _season_on(cfg: tuning.PlannerSettings) -> bool:
    return cfg.season_s > 0 and cfg.season_bucket_s > 0 and cfg.season_periods >= 1


def _slice(
    minutes: tuple[tuple[int, float], ...], first: int, last: int
) -> tuple[tuple[int, float], ...]:
    """The (bucket, rate) entries of buckets ``first`` to ``last`` (``minutes`` is sorted)."""
    start = bisect.bisect_left(minutes, (first, -math.inf))
    return minutes[start : bisect.bisect_left(minutes, (last + 1, -math.inf), start)]


def _between(minutes: tuple[tuple[int, float], ...], first: int, last: int) -> list[float]:
    """The rates of buckets ``first`` to ``last``."""
    return list(map(operator.itemgetter(1), _slice(minutes, first, last)))


def _push_peak(
    peaks: tuple[tuple[float, float], ...], now_s: float, rps: float, hold_s: float
) -> tuple[tuple[float, float], ...]:
    """A monotone (decreasing-rate) queue: its first live entry is the window maximum."""
    kept = [(t, r) for t, r in peaks if now_s - t <= hold_s]
    while kept and kept[-1][1] <= rps:
        kept.pop()
    kept.append((now_s, rps))
    return tuple(kept)


def _push_minute(
    minutes: tuple[tuple[int, float], ...], now_s: float, rps: float, cfg: tuning.PlannerSettings
) -> tuple[tuple[int, float], ...]:
    """The highest rate per bucket, as far back as :func:`seasonal_rps` looks."""
    if not _season_on(cfg):
        return ()
    index = math.floor(now_s / cfg.season_bucket_s)
    periods = cfg.season_periods + 0.5
    oldest = index - math.ceil(periods * cfg.season_s / cfg.season_bucket_s) - 1
    kept = _slice(minutes, oldest, index) if minutes and minutes[-1][0] <= index else minutes
    if kept and kept[-1][0] == index:
        return kept if kept[-1][1] >= rps else (*kept[:-1], (index, rps))
    if kept and kept[-1][0] > index:  # the clock went back: merge, keep the order
        merged = dict(i_r for i_r in kept if i_r[0] >= oldest)
        merged[index] = max(merged.get(index, rps), rps)
        return tuple(sorted(merged.items()))
    return (*kept, (index, rps))
