"""The forecaster (Holt + peak hold + margin) and online capacity learning."""

from __future__ import annotations

import dataclasses

from infscale.domain import capacity, evidence, forecast, model, tuning
from tests.unit import planner_fixtures as fx

CFG = tuning.PlannerSettings()


def test_unknown_rate_changes_nothing() -> None:
    state = forecast.update(model.ForecastState(), 5.0, 0.0, CFG)
    assert forecast.update(state, None, 30.0, CFG) == state
    assert forecast.update(state, float("nan"), 30.0, CFG) == state


def test_peak_hold_keeps_a_burst_for_its_window() -> None:
    state = model.ForecastState()
    for t, rps in [(0, 1.0), (15, 50.0), (30, 1.0), (45, 1.0)]:
        state = forecast.update(state, rps, float(t), CFG)
    assert forecast.demand_rps(state, 45.0, 60.0, CFG) >= 50.0
    for t in range(60, 600, 15):
        state = forecast.update(state, 1.0, float(t), CFG)
    assert forecast.demand_rps(state, 600.0, 60.0, CFG) < 10.0


def test_peak_is_held_for_the_lead_time_within_bounds() -> None:
    state = model.ForecastState()
    for t, rps in [(0, 1.0), (15, 50.0)] + [(t, 1.0) for t in range(30, 2000, 15)]:
        state = forecast.update(state, rps, float(t), CFG)
        if 300 < t <= 360:  # a 360 s lead (300 s node + 60 s start) still holds the burst
            assert forecast.demand_rps(state, float(t), 360.0, CFG) >= 50.0
            assert forecast.demand_rps(state, float(t), 60.0, CFG) < 10.0
        if CFG.peak_hold_max_s + 15 < t:  # a slower pool holds it no longer than the bound
            assert forecast.demand_rps(state, float(t), 5000.0, CFG) < 10.0
    # The margin widens the smooth forecast only: a held peak is not inflated by it.
    bursty = model.ForecastState()
    for t, rps in [(0, 1.0), (15, 50.0), (30, 1.0), (45, 1.0)]:
        bursty = forecast.update(bursty, rps, float(t), CFG)
    assert bursty.var_rps2 > 0
    assert forecast.demand_rps(bursty, 45.0, 360.0, CFG) == 50.0


def test_ramp_is_extrapolated_but_bounded() -> None:
    state = model.ForecastState()
    for t in range(0, 900, 15):
        state = forecast.update(state, 1.0 + t / 30.0, float(t), CFG)
    observed = 1.0 + 885 / 30.0
    ahead = forecast.demand_rps(state, 885.0, 300.0, CFG)
    assert ahead > observed
    assert ahead <= (1 + CFG.max_trend_growth) * observed * 1.5


def test_capacity_learning_is_damped_and_bounded() -> None:
    variant = fx.service().variant("l4")  # spec 6 rps
    slow = model.VariantObservation(ready_replicas=2, desired_replicas=2, rps=6.0, latency_s=2.0)
    cap = 6.0
    cap = capacity.learn(cap, variant, slow, 0.5, CFG)
    assert 6.0 * 0.9 - 1e-9 <= cap < 6.0  # one sample moves at most 10 %
    for _ in range(200):
        cap = capacity.learn(cap, variant, slow, 0.5, CFG)
    assert cap >= CFG.capacity_min_factor * 6.0 - 1e-9
    fast = model.VariantObservation(ready_replicas=1, desired_replicas=1, rps=100.0, latency_s=0.1)
    for _ in range(200):
        cap = capacity.learn(cap, variant, fast, 0.5, CFG)
    assert cap <= CFG.capacity_max_factor * 6.0 + 1e-9


def test_capacity_creeps_up_when_loaded_near_the_estimate_and_still_fast() -> None:
    variant = fx.service().variant("l4")  # spec 6 rps
    near = model.VariantObservation(ready_replicas=2, desired_replicas=2, rps=10.0, latency_s=0.1)
    cap = capacity.learn(6.0, variant, near, 0.5, CFG)  # 5 rps each: 83 % of the estimate
    assert 6.0 < cap <= 6.0 * (1 + CFG.capacity_max_step_fraction)
    # Near the estimate but not well inside the SLO: no evidence of room.
    busy = dataclasses.replace(near, latency_s=0.45)
    assert capacity.learn(6.0, variant, busy, 0.5, CFG) == 6.0


def test_a_quiet_services_slowest_request_is_not_a_wrong_capacity() -> None:
    variant = fx.service().variant("l4")  # spec 6 rps
    svc = fx.service()
    # 0.2 requests/s: a dozen in a 60 s window, one slow request puts their p95 over the SLO.
    light = model.VariantObservation(ready_replicas=1, desired_replicas=1, rps=0.2, latency_s=0.9)
    quiet = model.Observation(rps=0.2, rate_window_s=60.0, variants={"l4": light})
    assert evidence.too_few_requests(svc, quiet)
    assert capacity.learn(6.0, variant, light, 0.5, CFG, too_few_requests=True) == 6.0
    assert capacity.too_slow_at(6.0, light, 0.5, too_few_requests=True) is None
    # Twenty requests a window (at p95) place the percentile: the sample counts again.
    busier = dataclasses.replace(quiet, rps=20 / 60.0)
    assert not evidence.too_few_requests(svc, busier)
    assert capacity.learn(6.0, variant, light, 0.5, CFG) < 6.0
    assert not evidence.too_few_requests(svc, dataclasses.replace(quiet, rate_window_s=0.0))


def test_capacity_ignores_uninformative_samples() -> None:
    variant = fx.service().variant("l4")
    light = model.VariantObservation(ready_replicas=2, desired_replicas=2, rps=2.0, latency_s=0.1)
    assert capacity.learn(6.0, variant, light, 0.5, CFG) == 6.0
    unknown = model.VariantObservation(ready_replicas=2, desired_replicas=2, rps=None)
    assert capacity.learn(6.0, variant, unknown, 0.5, CFG) == 6.0
    assert capacity.learn(6.0, variant, None, 0.5, CFG) == 6.0


def test_a_fall_in_load_does_not_widen_the_margin() -> None:
    cfg = tuning.PlannerSettings()
    state = model.ForecastState()
    for t in range(0, 600, 15):
        state = forecast.update(state, 30.0, float(t), cfg)
    for t in range(600, 900, 15):
        state = forecast.update(state, 4.0, float(t), cfg)
    # Five minutes after a fall from 30 to 4 rps the margin is small and demand near 4 rps.
    assert state.var_rps2**0.5 < 4.0
    assert forecast.demand_rps(state, 900.0, 60.0, cfg) < 10.0


def test_gains_above_the_spec_are_given_back_at_once_when_too_slow() -> None:
    variant = fx.service().variant("l4")  # spec 6 rps
    slow = model.VariantObservation(ready_replicas=2, desired_replicas=2, rps=14.0, latency_s=0.8)
    # Probes had raised the estimate to 9; the replicas miss the SLO at 7 each: back to 7 now.
    assert capacity.learn(9.0, variant, slow, 0.5, CFG) == 7.0
    # Below the spec learning stays damped: one sample moves at most 10 %.
    slower = dataclasses.replace(slow, rps=6.0)
    assert capacity.learn(9.0, variant, slower, 0.5, CFG) == 6.0
    assert capacity.learn(6.0, variant, slower, 0.5, CFG) >= 6.0 * 0.9 - 1e-9


def test_probes_stay_under_the_rate_last_seen_too_slow_and_near_the_spec() -> None:
    variant = fx.service().variant("l4")  # spec 6 rps
    near = model.VariantObservation(ready_replicas=1, desired_replicas=1, rps=5.5, latency_s=0.1)
    assert capacity.too_slow_at(7.0, near, 0.5) is None
    slow = dataclasses.replace(near, latency_s=0.8)
    assert capacity.too_slow_at(7.0, slow, 0.5) == 5.5
    assert capacity.too_slow_at(7.0, slow, 0.5, overloaded=True) is None  # the backlog's fault
    cap = 6.0
    for _ in range(100):
        cap = capacity.learn(cap, variant, near, 0.5, CFG, ceiling_rps=6.5)
    assert 6.0 < cap <= CFG.capacity_ceiling_fraction * 6.5 + 1e-9
    free = 6.0
    for _ in range(100):
        free = capacity.learn(free, variant, near, 0.5, CFG)
    assert free > 6.5  # without the ceiling the same samples probe past it
    fast = dataclasses.replace(near, rps=60.0)  # ten times the spec, and fast
    for _ in range(100):
        free = capacity.learn(free, variant, fast, 0.5, CFG)
    assert free <= CFG.capacity_probe_max_factor * 6.0 + 1e-9  # probes stay near the spec


def _hours(rates: dict[int, float], hours: int, base: list[float]) -> model.ForecastState:
    """Samples every 15 s for ``hours`` hours at ``base[hour]`` rps, ``rates`` overriding
    given minutes (counted from the start)."""
    state = model.ForecastState()
    for t in range(0, hours * 3600, 15):
        rps = rates.get(t // 60, base[t // 3600])
        state = forecast.update(state, rps, float(t), CFG)
    return state


def test_a_burst_that_came_on_the_hour_twice_is_provisioned_ahead_of_the_third() -> None:
    # A 3x burst in minute 5 of hours 0 and 1; the traffic doubled after hour 0.
    state = _hours({5: 30.0, 65: 60.0}, 2, [10.0, 20.0])
    for t in range(7200, 7380, 15):
        state = forecast.update(state, 20.0, float(t), CFG)
    # 120 s before it is due, a 120 s lead sees it coming, in proportion to today's traffic
    # (hour 0's burst counts as 60 rps now):
    assert forecast.seasonal_rps(state, 7380.0, 120.0, CFG) == 60.0
    # a 30 s lead does not need it yet, and it is not expected in the middle of the hour:
    assert forecast.seasonal_rps(state, 7380.0, 30.0, CFG) == 0.0
    assert forecast.seasonal_rps(state, 7200.0 + 1800.0, 120.0, CFG) == 0.0


def test_the_burst_that_was_due_is_remembered_but_neither_held_nor_smoothed() -> None:
    steady = _hours({}, 1, [10.0])
    due = forecast.update(steady, 28.0, 3600.0, CFG, expected_rps=30.0)
    assert (due.level_rps, due.var_rps2, due.peaks) == (steady.level_rps, steady.var_rps2,
                                                        steady.peaks)  # fmt: skip
    assert dict(due.minutes)[60] == 28.0  # its minute, for the next period
    assert forecast.demand_rps(due, 3615.0, 300.0, CFG) < 15.0
    # Half again above the expected one is a surprise: held and smoothed like any burst.
    surprise = forecast.update(steady, 46.0, 3600.0, CFG, expected_rps=30.0)
    assert forecast.demand_rps(surprise, 3615.0, 300.0, CFG) == 46.0
    unexpected = forecast.update(steady, 28.0, 3600.0, CFG)
    assert forecast.demand_rps(unexpected, 3615.0, 300.0, CFG) == 28.0


def test_a_burst_seen_once_or_a_small_one_is_not_expected_again() -> None:
    once = _hours({65: 30.0}, 2, [10.0, 10.0])
    assert forecast.seasonal_rps(once, 7200.0 + 240.0, 120.0, CFG) == 0.0
    small = _hours({5: 12.0, 65: 12.0}, 2, [10.0, 10.0])  # 1.2x the usual rate: noise
    assert forecast.seasonal_rps(small, 7200.0 + 240.0, 120.0, CFG) == 0.0
    # Nor before two whole periods were seen, nor when turned off.
    young = _hours({5: 30.0}, 1, [10.0])
    assert forecast.seasonal_rps(young, 3600.0 + 240.0, 120.0, CFG) == 0.0
    off = dataclasses.replace(CFG, season_s=0.0)
    assert forecast.update(model.ForecastState(), 5.0, 0.0, off).minutes == ()


def test_the_seasonal_memory_is_bounded() -> None:
    state = _hours({}, 4, [10.0, 10.0, 10.0, 10.0])
    buckets = (CFG.season_periods + 0.5) * CFG.season_s / CFG.season_bucket_s
    assert len(state.minutes) <= buckets + 2
    assert [i for i, _ in state.minutes] == sorted({i for i, _ in state.minutes})


def test_the_seasonal_memory_needs_the_same_minute_a_burst_and_recent_data() -> None:
    lead = 690.0  # an H100's: the window one period ago spans 12 minutes
    moved = _hours({5: 30.0, 72: 30.0}, 2, [10.0, 10.0])  # minute 5, then minute 12
    assert forecast.seasonal_rps(moved, 7200.0 + 60.0, lead, CFG) == 0.0
    blips = _hours({3: 0.1, 63: 0.1}, 2, [0.0, 0.0])  # an idle service: any blip is "3x"
    assert forecast.seasonal_rps(blips, 7200.0 + 60.0, lead, CFG) == 0.0
    # After a long metrics outage there is nothing to scale by: no burst is expected, and
    # nothing fails.
    state = _hours({5: 30.0, 65: 30.0}, 2, [10.0, 10.0])
    assert forecast.seasonal_rps(state, 7200.0 + 1800.0 + 60.0, lead, CFG) == 0.0


def test_the_seasonal_memory_works_with_a_decision_every_five_minutes() -> None:
    state = model.ForecastState()
    for t in range(0, 7200, 300):  # a 30 rps burst in minutes 5-9 of hours 0 and 1
        state = forecast.update(state, 30.0 if (t % 3600) // 60 in range(5, 10) else 10.0, t, CFG)
    assert forecast.seasonal_rps(state, 7200.0, 300.0, CFG) == 30.0


def test_the_seasonal_memory_keeps_one_maximum_per_minute_when_the_clock_goes_back() -> None:
    state = model.ForecastState()
    for t, rps in [(6000.0, 50.0), (6060.0, 10.0), (6010.0, 5.0)]:
        state = forecast.update(state, rps, t, CFG)
    assert state.minutes == ((100, 50.0), (101, 10.0))
