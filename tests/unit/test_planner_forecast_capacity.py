"""The forecaster (Holt + peak hold + margin) and online capacity learning."""

from __future__ import annotations

import dataclasses

from infscale.domain import capacity, forecast, model, settings
from tests.unit import planner_fixtures as fx

CFG = settings.PlannerSettings()


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


def test_capacity_ignores_uninformative_samples() -> None:
    variant = fx.service().variant("l4")
    light = model.VariantObservation(ready_replicas=2, desired_replicas=2, rps=2.0, latency_s=0.1)
    assert capacity.learn(6.0, variant, light, 0.5, CFG) == 6.0
    unknown = model.VariantObservation(ready_replicas=2, desired_replicas=2, rps=None)
    assert capacity.learn(6.0, variant, unknown, 0.5, CFG) == 6.0
    assert capacity.learn(6.0, variant, None, 0.5, CFG) == 6.0


def test_a_fall_in_load_does_not_widen_the_margin() -> None:
    cfg = settings.PlannerSettings()
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
