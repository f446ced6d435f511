"""The planner end to end: stabilisation, metrics loss, scale to zero, nodes, reasons, state."""

from __future__ import annotations

import dataclasses
import math

import pytest

from infscale.domain import evidence, model, planner, stabilize, tuning
from tests.unit import planner_fixtures as fx

CFG = tuning.PlannerSettings(node_unneeded_s=300, node_cooldown_s=300)


def _run(
    svc: model.ServiceSpec,
    steps: list[tuple[float, float | None]],
    state: model.PlannerState | None = None,
) -> tuple[list[model.Plan], model.PlannerState]:
    state = state or model.PlannerState()
    plans = []
    for now_s, rps in steps:
        plan, state = planner.plan([svc], fx.pools(), {svc.key: fx.observe(rps)}, state, now_s)
        plans.append(plan)
    return plans, state


def test_scales_up_at_once_and_down_after_the_window() -> None:
    svc = fx.service(scale_down_stabilization_s=300)
    # The burst is held for the lead time (H100: 600 s provisioning + 90 s start), then the window.
    plans, _ = _run(svc, [(0, 5.0), (15, 60.0)] + [(15 + 15 * i, 5.0) for i in range(1, 90)])
    totals = [p.total_replicas(svc.key) for p in plans]
    assert totals[1] > totals[0]  # up at once
    assert totals[2] == totals[1]  # no drop right after the burst
    assert totals[-1] < totals[1]  # down after the window
    assert all(p.reasons[svc.key] for p in plans)


def test_never_scales_down_on_unknown_data_but_still_scales_up() -> None:
    svc = fx.service()
    plans, state = _run(svc, [(0, 30.0)] + [(15 * i, None) for i in range(1, 40)])
    first = plans[0].replicas[svc.key]
    for plan in plans[1:]:
        for variant, count in first.items():
            assert plan.replicas[svc.key][variant] >= count
    assert any("unknown" in r for r in plans[-1].reasons[svc.key])
    # Latency over the SLO while the rate is unknown: scale up anyway.
    obs = model.Observation(rps=None, latency_s=1.5)
    plan, _ = planner.plan([svc], fx.pools(), {svc.key: obs}, state, 700.0)
    assert plan.total_replicas(svc.key) > plans[-1].total_replicas(svc.key)


def test_fixed_fallback_is_a_floor() -> None:
    svc = fx.service(fallback=model.Fallback("fixed", 4))
    plans, _ = _run(svc, [(0, None)])
    assert plans[0].total_replicas(svc.key) >= 4


def test_scale_to_zero_after_the_idle_timeout_only() -> None:
    svc = fx.service(min_replicas=0, idle_timeout_s=600, scale_down_stabilization_s=60)
    steps: list[tuple[float, float | None]] = [(0, 3.0)]
    steps += [(15.0 * i, 0.0) for i in range(1, 60)]
    plans, _ = _run(svc, steps)
    by_time = {t: p.total_replicas(svc.key) for (t, _), p in zip(steps, plans, strict=True)}
    assert by_time[300] >= 1  # idle, but not for long enough
    assert by_time[885] == 0
    assert any("scale to zero" in r for r in plans[-1].reasons[svc.key])
    # Traffic returns: up again at once.
    plan, _ = planner.plan([svc], fx.pools(), {svc.key: fx.observe(2.0)}, _run(svc, steps)[1], 900)
    assert plan.total_replicas(svc.key) >= 1


def test_nodes_shrink_only_after_unneeded_and_cooldown() -> None:
    pool = fx.pools()[1]
    grow = stabilize.nodes(pool, 5, 2, None, None, 100.0, CFG)
    assert grow.nodes == 5
    assert grow.scale_up_s == 100.0
    early = stabilize.nodes(pool, 1, 5, 100.0, None, 150.0, CFG)
    assert early.nodes == 5
    assert early.surplus_since_s == 150.0
    still = stabilize.nodes(pool, 1, 5, 100.0, 150.0, 400.0, CFG)
    assert still.nodes == 5
    done = stabilize.nodes(pool, 1, 5, 100.0, 150.0, 460.0, CFG)
    assert done.nodes == 1
    assert any("release" in r for r in done.reasons)


def test_make_before_break_keeps_old_replicas_until_the_new_are_ready() -> None:
    svc = fx.service(scale_down_stabilization_s=0)
    last = {"h100": 0, "l4": 5}
    obs = model.Observation(
        rps=30.0,
        variants={
            "h100": model.VariantObservation(ready_replicas=0, desired_replicas=1),
            "l4": model.VariantObservation(ready_replicas=5, desired_replicas=5),
        },
    )
    held = stabilize.replicas(svc, {"h100": 1, "l4": 0}, last, {}, obs, 10.0, True)
    assert held.replicas == {"h100": 1, "l4": 5}
    assert any("make-before-break" in r for r in held.reasons)
    ready = dataclasses.replace(
        obs,
        variants={
            "h100": model.VariantObservation(ready_replicas=1, desired_replicas=1),
            "l4": model.VariantObservation(ready_replicas=5, desired_replicas=5),
        },
    )
    moved = stabilize.replicas(svc, {"h100": 1, "l4": 0}, last, {}, ready, 20.0, True)
    assert moved.replicas == {"h100": 1, "l4": 0}


def test_make_before_break_keeps_only_what_the_demand_needs_while_the_new_start() -> None:
    svc = fx.service(scale_down_stabilization_s=0)
    last = {"h100": 0, "l4": 8}
    obs = model.Observation(
        rps=30.0,
        variants={
            "h100": model.VariantObservation(ready_replicas=0, desired_replicas=1),
            "l4": model.VariantObservation(ready_replicas=8, desired_replicas=8),
        },
    )
    per_replica = {"h100": 100.0, "l4": 10.0}
    # 25 rps of demand: three Ready l4 replicas carry it until the h100 is Ready.
    short = stabilize.replicas(
        svc, {"h100": 1, "l4": 0}, last, {}, obs, 10.0, True, cover=(per_replica, 25.0)
    )
    assert short.replicas == {"h100": 1, "l4": 3}
    # The demand has gone: the h100 (still starting) is not waited for.
    gone = stabilize.replicas(
        svc, {"h100": 1, "l4": 0}, last, {}, obs, 10.0, True, cover=(per_replica, 0.0)
    )
    assert gone.replicas == {"h100": 1, "l4": 0}
    assert any("covers the demand" in r for r in gone.reasons)


def test_scale_down_step_is_bounded() -> None:
    svc = fx.service(scale_down_stabilization_s=0, scale_down_max_step=2)
    decision = stabilize.replicas(
        svc, {"h100": 0, "l4": 1}, {"h100": 0, "l4": 9}, {}, None, 0, True
    )
    assert decision.replicas["l4"] == 7


def test_no_scale_down_while_the_recommendation_rises() -> None:
    # The window's highest recommendation (2) is below the 4 replicas running, but the load is
    # climbing (2 -> 3): the 4 stay this cycle, and go down once the recommendation stops rising.
    svc = fx.service(scale_down_stabilization_s=300)
    history = {"l4": ((0.0, 2), (285.0, 2))}
    rising = stabilize.replicas(svc, {"l4": 3}, {"l4": 4}, history, None, 300.0, True)
    assert rising.replicas["l4"] == 4
    assert "rising (2->3)" in " ".join(rising.reasons)
    steady = stabilize.replicas(svc, {"l4": 3}, {"l4": 4}, rising.history, None, 315.0, True)
    assert steady.replicas["l4"] == 3


def test_state_round_trips_through_json_and_plans_are_deterministic() -> None:
    svc = fx.service()
    _, state = _run(svc, [(0, 10.0), (15, 20.0), (30, None), (45, 3.0)])
    state = dataclasses.replace(
        state,
        capacity_ceiling={svc.key: {"l4": (5.5, 40.0)}},
        excess_paid={svc.key: (0.05, 45.0)},
    )
    text = model.state_to_json(state)
    assert model.state_from_json(text) == state
    a = planner.plan([svc], fx.pools(), {svc.key: fx.observe(7.0)}, state, 60.0)
    b = planner.plan(
        [svc], fx.pools(), {svc.key: fx.observe(7.0)}, model.state_from_json(text), 60.0
    )
    assert a == b


def test_pool_reasons_and_cost() -> None:
    svc = fx.service()
    plans, _ = _run(svc, [(0, 12.0)])
    plan = plans[0]
    assert set(plan.reasons) >= {svc.key, "pool:h100", "pool:l4", "pool:cpu"}
    expected = sum(
        n * p.usd_per_hour for p in fx.pools() for name, n in plan.nodes.items() if name == p.name
    )
    assert abs(plan.usd_per_hour - expected) < 1e-9


def test_slo_misses_raise_headroom_which_decays() -> None:
    svc = fx.service(scale_down_stabilization_s=0)
    _, state = _run(svc, [(0, 12.0)])
    slow = model.Observation(rps=12.0, latency_s=3.0)
    plan, state = planner.plan([svc], fx.pools(), {svc.key: slow}, state, 15.0)
    assert state.headroom[svc.key] == pytest.approx(CFG.headroom_step)
    assert any("headroom" in r for r in plan.reasons[svc.key])
    for i in range(2, 400):
        _, state = planner.plan([svc], fx.pools(), {svc.key: fx.observe(12.0)}, state, 15.0 * i)
    assert svc.key not in state.headroom


def test_after_an_slo_miss_peaks_are_held_for_two_leads() -> None:
    # L4 replicas run (lead 300 s node + 120 s start). A 12 rps peak, then 2 rps: 585 s later
    # the peak is forgotten, unless the SLO was missed at the peak; then it is held 840 s.
    svc = fx.service(scale_down_stabilization_s=0)
    calm = [(15.0 * i, 2.0) for i in range(2, 41)]
    plans, _ = _run(svc, [(0, 12.0), (15.0, 12.0), *calm])
    assert plans[-1].demand_rps[svc.key] < 12.0
    _, state = _run(svc, [(0, 12.0)])
    missed = model.Observation(rps=12.0, latency_s=3.0)
    _, state = planner.plan([svc], fx.pools(), {svc.key: missed}, state, 15.0)
    plans, _ = _run(svc, calm, state)
    assert plans[-1].demand_rps[svc.key] >= 12.0
    assert any("SLO missed 585 s ago: peaks held 840 s" in r for r in plans[-1].reasons[svc.key])


def test_a_miss_the_capacity_learner_explains_raises_no_headroom() -> None:
    # Two L4 replicas at 4 rps each (under their 6 rps estimate) miss the SLO: the learner lowers
    # the L4 estimate, and that one symptom does not also inflate demand.
    svc = fx.service(scale_down_stabilization_s=0)
    l4 = model.VariantObservation(ready_replicas=2, desired_replicas=2, rps=8.0, latency_s=3.0)
    slow = model.Observation(rps=8.0, latency_s=3.0, variants={"l4": l4})
    _, state = _run(svc, [(0, 8.0)])
    _, state = planner.plan([svc], fx.pools(), {svc.key: slow}, state, 15.0)
    assert state.capacity_rps[svc.key]["l4"] < 6.0
    assert svc.key not in state.headroom


def test_a_quiet_services_slowest_request_teaches_neither_capacity_nor_headroom() -> None:
    # 0.2 requests/s on one L4 replica: a dozen requests a 60 s window, whose p95 is the
    # slowest of them. One slow request is no evidence of a wrong capacity or a missed SLO.
    svc = fx.service(scale_down_stabilization_s=0)
    l4 = model.VariantObservation(ready_replicas=1, desired_replicas=1, rps=0.2, latency_s=3.0)
    slow = model.Observation(rps=0.2, latency_s=3.0, variants={"l4": l4}, rate_window_s=60.0)
    _, state = _run(svc, [(0, 0.2)])
    _, state = planner.plan([svc], fx.pools(), {svc.key: slow}, state, 15.0)
    assert state.capacity_rps[svc.key].get("l4", 6.0) == 6.0
    assert svc.key not in state.headroom
    # With twenty requests a window, the same p95 is a miss.
    busier = model.VariantObservation(ready_replicas=1, desired_replicas=1, rps=0.4, latency_s=3.0)
    missed = dataclasses.replace(slow, rps=0.4, variants={"l4": busier})
    _, state = planner.plan([svc], fx.pools(), {svc.key: missed}, state, 30.0)
    assert state.capacity_rps[svc.key]["l4"] < 6.0 or svc.key in state.headroom


def test_latency_from_an_overload_backlog_teaches_neither_capacity_nor_headroom() -> None:
    # One replica meets a burst, more are added, and the backlog keeps latency high for a while:
    # that must not lower the learned capacity nor inflate demand after the burst.
    svc = fx.service(scale_down_stabilization_s=0)
    variant = svc.variants[0].name
    state = model.PlannerState()

    def observe(rps: float, latency_s: float, ready: int) -> model.Observation:
        per = model.VariantObservation(ready_replicas=ready, desired_replicas=ready, rps=rps,
                                       latency_s=latency_s)  # fmt: skip
        return model.Observation(rps=rps, latency_s=latency_s, variants={variant: per})

    capacity = svc.variants[0].capacity_rps
    _, state = planner.plan([svc], fx.pools(), {svc.key: observe(1.0, 0.1, 1)}, state, 0.0)
    _, state = planner.plan(
        [svc], fx.pools(), {svc.key: observe(5 * capacity, 3.0, 1)}, state, 15.0
    )
    for i in range(2, 6):  # plenty of replicas now, the backlog still drains
        obs = observe(2 * capacity, 3.0, 8)
        _, state = planner.plan([svc], fx.pools(), {svc.key: obs}, state, 15.0 * i)
    assert state.capacity_rps[svc.key][variant] == pytest.approx(capacity)
    assert svc.key not in state.headroom


def _partial(rps: float, l4_rps: float | None, ready: int = 6) -> model.Observation:
    """A known service rate, but the L4 replicas' own series may be missing (None)."""
    return model.Observation(
        rps=rps,
        latency_s=0.2,
        variants={
            "h100": model.VariantObservation(rps=0.0),
            "l4": model.VariantObservation(
                ready_replicas=ready, desired_replicas=ready, rps=l4_rps, latency_s=0.2
            ),
        },
    )


def test_partial_data_blocks_scale_down_names_the_signal_and_keeps_nodes() -> None:
    svc = fx.service(scale_down_stabilization_s=0)
    start = model.PlannerState(last_replicas={svc.key: {"h100": 0, "l4": 6}}, last_nodes={"l4": 6})
    # Complete data at a low rate: the service shrinks (no window).
    plan, _ = planner.plan([svc], fx.pools(), {svc.key: _partial(2.0, 2.0)}, start, 1000.0, CFG)
    assert plan.total_replicas(svc.key) < 6
    # One variant's series missing while the service rate is present: hold, and say why.
    plan, state = planner.plan(
        [svc], fx.pools(), {svc.key: _partial(2.0, None)}, start, 1000.0, CFG
    )
    assert plan.replicas[svc.key]["l4"] == 6
    assert plan.nodes["l4"] == 6
    assert any("missing l4 request rate" in r for r in plan.reasons[svc.key])
    # Even empty surplus nodes past their cool-down stay while the data is partial.
    surplus = dataclasses.replace(start, last_nodes={"l4": 8}, pool_surplus_since_s={"l4": 0.0})
    held, _ = planner.plan([svc], fx.pools(), {svc.key: _partial(2.0, None)}, surplus, 1000.0, CFG)
    assert held.nodes["l4"] == 8
    assert any("never scale down on unknown data" in r for r in held.reasons["pool:l4"])
    freed, _ = planner.plan([svc], fx.pools(), {svc.key: _partial(2.0, 2.0)}, surplus, 1000.0, CFG)
    assert freed.nodes["l4"] < 8
    # The known signals may still scale it up.
    plan, _ = planner.plan([svc], fx.pools(), {svc.key: _partial(90.0, None)}, state, 1015.0, CFG)
    capacity = sum(svc.variant(v).capacity_rps * n for v, n in plan.replicas[svc.key].items())
    assert capacity >= 90.0
    assert plan.replicas[svc.key]["l4"] >= 6


def test_missing_signals_reported_by_the_source_or_an_unknown_latency_block_scale_down() -> None:
    svc = fx.service(scale_down_stabilization_s=0)
    start = model.PlannerState(last_replicas={svc.key: {"h100": 0, "l4": 6}}, last_nodes={"l4": 6})
    stale = dataclasses.replace(_partial(2.0, 2.0), missing=("request rate of pod chat-l4-x",))
    plan, _ = planner.plan([svc], fx.pools(), {svc.key: stale}, start, 1000.0, CFG)
    assert plan.replicas[svc.key]["l4"] == 6
    assert any("pod chat-l4-x" in r for r in plan.reasons[svc.key])
    no_latency = fx.observe(2.0, latency_s=None)
    plan, _ = planner.plan([svc], fx.pools(), {svc.key: no_latency}, start, 1000.0, CFG)
    assert plan.replicas[svc.key]["l4"] == 6
    assert any("service latency" in r for r in plan.reasons[svc.key])
    assert evidence.missing_signals(svc, _partial(2.0, 2.0)) == ()
    # A variant without Ready replicas serves nothing: its silence is not missing data.
    assert evidence.missing_signals(svc, _partial(0.0, None, ready=0)) == ()


def test_partial_data_never_scales_to_zero() -> None:
    svc = fx.service(min_replicas=0, idle_timeout_s=60, scale_down_stabilization_s=0)
    state = model.PlannerState(last_replicas={svc.key: {"h100": 0, "l4": 1}})
    gap = dataclasses.replace(fx.observe(0.0), missing=("request rate of pod chat-l4-x",))
    for i in range(20):
        plan, state = planner.plan([svc], fx.pools(), {svc.key: gap}, state, 15.0 * i, CFG)
        assert plan.total_replicas(svc.key) == 1


def test_a_burst_that_recurs_on_the_hour_is_planned_for_before_it_returns() -> None:
    # 6 rps with 18 rps in minute 5 of hours 0 and 1 (one decision a minute); the lead is the
    # H100's 690 s.
    svc = fx.service()
    _, state = _run(svc, [(60.0 * m, 18.0 if m in (5, 65) else 6.0) for m in range(0, 110)])
    early, state = _run(svc, [(6600.0, 6.0)], state)  # the burst is 900 s away: not yet
    assert early[0].demand_rps[svc.key] < 18.0
    plans, _ = _run(svc, [(60.0 * m, 6.0) for m in range(111, 116)], state)
    assert plans[-1].demand_rps[svc.key] >= 18.0  # at 6900 s: 600 s before it is due
    assert any("in each of the last 2 periods" in r for r in plans[-1].reasons[svc.key])


def test_capacity_for_a_recurring_burst_goes_once_it_has_passed() -> None:
    # The third burst comes as expected: it is served by what was provisioned ahead of it and
    # not held afterwards (it returns in an hour); one seen for the first time is held.
    svc = fx.service()
    history = [(60.0 * m, 18.0 if m in (5, 65, 125) else 6.0) for m in range(0, 129)]
    plans, _ = _run(svc, history)
    assert plans[-1].demand_rps[svc.key] < 18.0, "three minutes after the third burst"
    first, _ = _run(svc, history[:9])
    assert first[-1].demand_rps[svc.key] >= 18.0, "three minutes after the first: held"


def test_replicas_provisioned_for_a_recurring_burst_skip_the_scale_down_window() -> None:
    # The window guards against releasing capacity on a dip in noisy demand. Replicas that the
    # hourly memory asked for are scheduled, not noise: they go once the burst's time has passed.
    svc = fx.service(scale_down_stabilization_s=300)
    history = [(60.0 * m, 18.0 if m in (5, 65, 125) else 6.0) for m in range(0, 130)]
    plans, _ = _run(svc, history)
    before = plans[110].total_replicas(svc.key)  # before the third burst was planned for
    during = plans[124].total_replicas(svc.key)
    assert during > before
    assert plans[129].total_replicas(svc.key) == before, "four minutes after the third burst"
    # A burst seen for the first time still waits out the window.
    first, _ = _run(svc, history[:10])
    assert first[9].total_replicas(svc.key) > first[4].total_replicas(svc.key)


def test_a_service_scaled_to_zero_wakes_up_before_a_burst_on_the_hour() -> None:
    svc = fx.service(min_replicas=0, idle_timeout_s=600)
    quiet = [(60.0 * m, 18.0 if m in (5, 65) else 0.0) for m in range(0, 110)]
    plans, state = _run(svc, quiet)
    assert sum(plans[-1].replicas[svc.key].values()) == 0  # idle since minute 65
    plans, _ = _run(svc, [(60.0 * m, 0.0) for m in range(110, 116)], state)
    assert sum(plans[-1].replicas[svc.key].values()) > 0  # at 6900 s: 600 s before it


def _two_gpu_classes() -> tuple[model.ServiceSpec, list[model.PoolSpec], model.PlannerState]:
    """One A10G ($1.006/h, 8 rps) running where one L4 ($0.8048/h, 6 rps, started a minute
    sooner, so the A10G does not dominate it: ``demand.dominated``) would do."""
    gpu = model.Resources(4, 16, {model.GPU: 1})
    pools = [
        model.PoolSpec("a10g", gpu, 1.006, 0, 4, 300),
        model.PoolSpec("l4", gpu, 0.8048, 0, 4, 300),
    ]
    variants = (
        model.VariantSpec("a10g", "a10g", gpu, 8.0, 120),
        model.VariantSpec("l4", "l4", gpu, 6.0, 60),
    )
    svc = model.ServiceSpec("team-a", "chat", variants, min_replicas=1, max_replicas=4)
    state = model.PlannerState(
        last_replicas={svc.key: {"a10g": 1, "l4": 0}}, last_nodes={"a10g": 1, "l4": 0}
    )
    return svc, pools, state


def _minutes_on(
    svc: model.ServiceSpec,
    pools: list[model.PoolSpec],
    state: model.PlannerState,
    rates: list[float | None],
    cfg: tuning.PlannerSettings = CFG,
) -> tuple[list[model.Plan], model.PlannerState]:
    """One decision every 15 s, each rate held for a minute."""
    plans = []
    for i in range(4 * len(rates)):
        obs = fx.observe(rates[i // 4])
        plan, state = planner.plan([svc], pools, {svc.key: obs}, state, 15.0 * i, cfg)
        plans.append(plan)
    return plans, state


def test_a_dearer_variant_is_left_once_its_excess_has_paid_for_the_move() -> None:
    # Moving costs the L4's node for its 360 s cold start ($0.080); staying costs $0.20/h more.
    # The switch cost in the objective alone would keep the A10G for good; the excess pays for
    # the move after 24 min.
    svc, pools, state = _two_gpu_classes()
    plans, _ = _minutes_on(svc, pools, state, [3.0] * 35)
    moved_at = next(i for i, p in enumerate(plans) if p.replicas[svc.key]["l4"] > 0)
    assert 4 * 23 <= moved_at <= 4 * 25
    assert any(
        "as much as moving there costs ($0.080)" in r for r in plans[moved_at].reasons[svc.key]
    )
    assert plans[moved_at].replicas[svc.key]["a10g"] == 1  # make-before-break
    never = dataclasses.replace(CFG, move_after_paid=math.inf)
    stays, _ = _minutes_on(svc, pools, state, [3.0] * 60, never)
    assert all(p.replicas[svc.key] == {"a10g": 1, "l4": 0} for p in stays)


def test_time_with_unknown_data_neither_pays_towards_a_move_nor_undoes_what_was_paid() -> None:
    svc, pools, state = _two_gpu_classes()
    plans, _ = _minutes_on(svc, pools, state, [3.0] * 20 + [None] * 20 + [3.0] * 12)
    moved_at = next(i for i, p in enumerate(plans) if p.replicas[svc.key]["l4"] > 0)
    assert 4 * 43 <= moved_at <= 4 * 45  # 24 min of known data


def _saturated(queued: float | None) -> model.Observation:
    """Two Ready L4 replicas complete 12 rps, their capacity, with ``queued`` requests waiting."""
    l4 = model.VariantObservation(ready_replicas=2, desired_replicas=2, rps=12.0, latency_s=8.0)
    return model.Observation(rps=12.0, latency_s=8.0, variants={"l4": l4}, queued=queued)


def test_a_backlog_the_spare_capacity_cannot_clear_adds_capacity_to_clear_it() -> None:
    # The rate counts completions: saturated replicas complete what they can, so the rate alone
    # says they suffice while the queue stays. 240 requests over the 690 s lead is +0.35 rps.
    svc = fx.service()
    state = model.PlannerState(last_replicas={svc.key: {"h100": 0, "l4": 2}})
    plans = {}
    for queued in (None, 0.0, 240.0):
        plans[queued], _ = planner.plan([svc], fx.pools(), {svc.key: _saturated(queued)}, state, 0)
    assert plans[240.0].demand_rps[svc.key] == pytest.approx(
        plans[None].demand_rps[svc.key] + 240.0 / 690.0
    )
    assert plans[0.0].demand_rps[svc.key] == plans[None].demand_rps[svc.key]
    assert any("240 request(s) queued" in r for r in plans[240.0].reasons[svc.key])


def test_a_backlog_the_spare_capacity_clears_within_the_lead_adds_nothing() -> None:
    svc = fx.service()
    state = model.PlannerState(last_replicas={svc.key: {"h100": 0, "l4": 4}})
    l4 = model.VariantObservation(ready_replicas=4, desired_replicas=4, rps=12.0, latency_s=0.3)
    obs = model.Observation(rps=12.0, latency_s=0.3, variants={"l4": l4}, queued=100.0)
    plan, _ = planner.plan([svc], fx.pools(), {svc.key: obs}, state, 0)
    assert not any("queued" in r for r in plan.reasons[svc.key])


def test_a_growing_queue_is_demand_the_completions_do_not_show() -> None:
    # Two saturated L4 replicas complete 12 rps; the queue grows by 600 requests in the 30 s
    # rate window, so 32 rps arrive, and the whole of it is ordered in one decision.
    svc = fx.service(scale_down_stabilization_s=0)
    l4 = model.VariantObservation(ready_replicas=2, desired_replicas=2, rps=12.0, latency_s=5.0)

    def obs(queued: float) -> model.Observation:
        return model.Observation(
            rps=12.0, latency_s=5.0, variants={"l4": l4}, queued=queued, rate_window_s=30.0
        )

    state = model.PlannerState(last_replicas={svc.key: {"h100": 0, "l4": 2}})
    _, state = planner.plan([svc], fx.pools(), {svc.key: obs(0.0)}, state, 0.0)
    plan, _ = planner.plan([svc], fx.pools(), {svc.key: obs(600.0)}, state, 30.0)
    assert plan.demand_rps[svc.key] >= 32.0
    assert any("32.00 rps arrive while 12.00 rps complete" in r for r in plan.reasons[svc.key])
    capacity = 30.0 * plan.replicas[svc.key]["h100"] + 6.0 * plan.replicas[svc.key]["l4"]
    assert capacity >= 32.0


def test_a_variant_too_slow_at_light_load_gets_no_traffic_and_says_why() -> None:
    # L4 replicas serve a third of their capacity with nothing queued, yet their p95 is over the
    # SLO at every decision for three minutes: their requests alone take too long. The plan
    # moves the traffic to the H100. One such sample is not enough: a burst's backlog that has
    # just drained looks the same.
    svc = fx.service(slo_latency_s=0.5)
    l4 = model.VariantObservation(ready_replicas=3, desired_replicas=3, rps=6.0, latency_s=0.9)
    obs = model.Observation(rps=6.0, latency_s=0.9, variants={"l4": l4}, queued=0.0)
    state = model.PlannerState(last_replicas={svc.key: {"h100": 0, "l4": 3}})
    plans = []
    for now_s in (0.0, 60.0, 120.0, 180.0):
        plan, state = planner.plan([svc], fx.pools(), {svc.key: obs}, state, now_s)
        plans.append(plan)
    assert plans[0].replicas[svc.key]["h100"] == 0
    assert not any("too slow" in r for r in plans[2].reasons[svc.key])
    assert plans[-1].replicas[svc.key]["h100"] >= 1
    assert any(
        "l4 too slow for the SLO: p95 0.90 s over 0.50 s at light load with no queue for 180 s" in r
        for r in plans[-1].reasons[svc.key]
    )
    # The same latency with a queue in front is the queue's doing: it starts no span.
    queued = dataclasses.replace(obs, queued=50.0)
    _, fresh = planner.plan([svc], fx.pools(), {svc.key: queued}, model.PlannerState(), 0.0)
    assert svc.key not in fresh.too_slow


def test_every_variant_slow_is_the_traffic_not_a_variant() -> None:
    svc = fx.service(slo_latency_s=0.5)
    slow = model.VariantObservation(ready_replicas=2, desired_replicas=2, rps=4.0, latency_s=0.9)
    obs = model.Observation(rps=8.0, latency_s=0.9, variants={"l4": slow, "h100": slow}, queued=0.0)
    state = model.PlannerState(last_replicas={svc.key: {"h100": 2, "l4": 2}})
    for now_s in (0.0, 60.0, 120.0, 180.0, 240.0):
        plan, state = planner.plan([svc], fx.pools(), {svc.key: obs}, state, now_s)
    assert not any("too slow" in r for r in plan.reasons[svc.key])
    assert sum(plan.replicas[svc.key].values()) >= 1


def test_small_moves_of_the_demand_keep_the_replicas() -> None:
    svc = fx.service()
    state = model.PlannerState(last_replicas={svc.key: {"h100": 0, "l4": 5}})
    l4 = model.VariantObservation(ready_replicas=5, desired_replicas=5, rps=31.0, latency_s=0.2)
    obs = model.Observation(rps=31.0, latency_s=0.2, variants={"l4": l4}, queued=0.0)
    cfg = tuning.PlannerSettings(margin_sigmas=0.0)
    plan, _ = planner.plan([svc], fx.pools(), {svc.key: obs}, state, 0.0, cfg)
    assert plan.replicas[svc.key] == {"h100": 0, "l4": 5}  # 30 rps is within 10 % of 31
    assert any("within 10% of the demand" in r for r in plan.reasons[svc.key])
    strict = dataclasses.replace(cfg, tolerance=0.0)
    plan, _ = planner.plan([svc], fx.pools(), {svc.key: obs}, state, 0.0, strict)
    assert plan.replicas[svc.key] != {"h100": 0, "l4": 5}


def test_missing_the_slo_with_a_queue_bridges_with_the_variant_ready_first() -> None:
    # L4 is the cheaper cover for 60 rps, but its nodes take 15 min here; while the service
    # misses its SLO with a queue, H100 replicas (on nodes up in 60 s) bridge the gap.
    svc = fx.service()
    pools = [
        dataclasses.replace(p, provisioning_s=900 if p.name == "l4" else 60) for p in fx.pools()
    ]
    l4 = model.VariantObservation(ready_replicas=2, desired_replicas=2, rps=12.0, latency_s=4.0)
    state = model.PlannerState(last_replicas={svc.key: {"h100": 0, "l4": 2}})
    cfg = tuning.PlannerSettings(margin_sigmas=0.0)

    def plan_for(attainment: float, queued: float) -> model.Plan:
        obs = model.Observation(
            rps=60.0, latency_s=4.0, variants={"l4": l4}, queued=queued, slo_attainment=attainment
        )
        plan, _ = planner.plan([svc], pools, {svc.key: obs}, state, 0.0, cfg)
        return plan

    calm = plan_for(0.99, 100.0)
    missing = plan_for(0.60, 100.0)
    assert calm.replicas[svc.key]["h100"] == 0
    assert missing.replicas[svc.key]["h100"] >= 1
    assert missing.replicas[svc.key]["l4"] == calm.replicas[svc.key]["l4"]
    assert any("h100 replica(s), the fastest to Ready" in r for r in missing.reasons[svc.key])
    # Without a queue the misses are slow requests, which more replicas do not speed up.
    assert plan_for(0.60, 0.0).replicas[svc.key] == plan_for(0.99, 0.0).replicas[svc.key]


def test_the_bridge_costs_at_most_what_the_plan_does() -> None:
    # The same miss, with bridges bounded at a fraction of the planned replicas' $/h: fewer
    # H100s (at least one), and the reason says what bounded them.
    svc = fx.service()
    pools = [
        dataclasses.replace(p, provisioning_s=900 if p.name == "l4" else 60) for p in fx.pools()
    ]
    l4 = model.VariantObservation(ready_replicas=2, desired_replicas=2, rps=12.0, latency_s=4.0)
    obs = model.Observation(
        rps=60.0, latency_s=4.0, variants={"l4": l4}, queued=100.0, slo_attainment=0.6
    )
    state = model.PlannerState(last_replicas={svc.key: {"h100": 0, "l4": 2}})

    def bridged(ratio: float) -> tuple[int, tuple[str, ...]]:
        cfg = tuning.PlannerSettings(margin_sigmas=0.0, bridge_max_cost_ratio=ratio)
        plan, _ = planner.plan([svc], pools, {svc.key: obs}, state, 0.0, cfg)
        return plan.replicas[svc.key]["h100"], plan.reasons[svc.key]

    free, free_reasons = bridged(math.inf)
    assert free >= 2
    assert not any("the plan's cost per hour" in r for r in free_reasons)
    tight, tight_reasons = bridged(1e-6)
    assert tight == 1  # a bridge is at least one replica
    assert any("the plan's cost per hour" in r for r in tight_reasons)


def test_a_held_peak_keeps_capacity_but_buys_none_for_a_burst_that_has_passed() -> None:
    # One L4 (6 rps) runs; a 40 rps spike was seen 30 s ago (with the cap at one replica), the
    # rate is back at 2 rps. Buying for the spike now would bring capacity after it has gone.
    svc = fx.service(max_replicas=40)
    spike = model.ForecastState(level_rps=2.0, last_s=15.0, peaks=((0.0, 40.0), (15.0, 2.0)))
    state = model.PlannerState(
        last_replicas={svc.key: {"h100": 0, "l4": 1}}, forecasts={svc.key: spike}
    )
    ready = model.Observation(
        rps=2.0,
        latency_s=fx.HEALTHY_LATENCY_S,
        variants={"l4": model.VariantObservation(ready_replicas=1)},
    )
    plan, _ = planner.plan([svc], fx.pools(), {svc.key: ready}, state, 30.0)
    assert plan.demand_rps[svc.key] == pytest.approx(6.0)
    assert plan.replicas[svc.key] == {"h100": 0, "l4": 1}
    assert any("no new capacity for a burst that has passed" in r for r in plan.reasons[svc.key])
    buying = tuning.PlannerSettings(hold_keeps_only=False)
    plan, _ = planner.plan([svc], fx.pools(), {svc.key: ready}, state, 30.0, buying)
    assert plan.demand_rps[svc.key] >= 40.0


def test_a_slow_sample_after_a_gap_extends_a_confirmed_too_slow_finding() -> None:
    # The l4 was confirmed too slow (180 s of slow samples), then ran no traffic for ten minutes.
    # A slow sample now adds to that finding; it used to start a new, unconfirmed span, and the
    # variant came back into the plan the next cycle (gpu-classes at p99: l4 -> t4 -> l4).
    svc = fx.service(slo_latency_s=0.5)
    cfg = tuning.PlannerSettings()
    l4 = model.VariantObservation(ready_replicas=1, desired_replicas=1, rps=1.0, latency_s=0.9)
    obs = model.Observation(rps=1.0, latency_s=0.9, variants={"l4": l4}, queued=0.0)
    confirmed = {"l4": (0.9, 0.0, cfg.too_slow_confirm_s)}
    later = cfg.too_slow_confirm_s + 600.0
    kept = evidence.too_slow(svc, obs, {}, confirmed, later, cfg, in_backlog=False)
    assert kept["l4"] == (0.9, 0.0, later)
    assert "l4" in evidence.excluded(svc, kept, cfg)
    # An unconfirmed span that broke off (a gap over TOO_SLOW_GAP_S) still starts anew.
    short = {"l4": (0.9, 0.0, 30.0)}
    kept = evidence.too_slow(svc, obs, {}, short, 30.0 + 2 * evidence.TOO_SLOW_GAP_S, cfg, False)
    assert kept["l4"][1] == 30.0 + 2 * evidence.TOO_SLOW_GAP_S


def test_an_slo_miss_says_whether_it_came_in_a_first_burst() -> None:
    # The memory holds 60 rps at minute 10 and 50 at minute 20; the L4 is the fastest path to a
    # new replica (300 s for a node, 120 s to start), so at 3000 s everything it held was seen
    # more than a lead ago. A miss at 105 rps is a first burst; one at 40 rps is not.
    svc = fx.service(slo_latency_s=0.5)
    memory = model.ForecastState(level_rps=50.0, last_s=2985.0, minutes=((10, 60.0), (20, 50.0)))
    state = model.PlannerState(forecasts={svc.key: memory}, last_replicas={svc.key: {"l4": 9}})

    def reasons(rps: float, forecasts: model.ForecastState = memory) -> list[str]:
        obs = fx.observe(rps, latency_s=2.0)
        start = dataclasses.replace(state, forecasts={svc.key: forecasts})
        plan, _ = planner.plan([svc], fx.pools(), {svc.key: obs}, start, 3000.0)
        return [r for r in plan.reasons[svc.key] if r.startswith("SLO missed at")]

    assert reasons(105.0) == [
        "SLO missed at 105.00 rps, above the 60.00 rps the service showed until 420 s ago (its "
        "fastest path to a new replica): a first burst, which only capacity held before it serves"
    ]
    assert reasons(40.0) == [
        "SLO missed at 40.00 rps, within the 60.00 rps the service showed 420 s ago or earlier: "
        "not a first burst"
    ]
    assert reasons(105.0, model.ForecastState(level_rps=50.0, last_s=2985.0)) == []  # no memory
