"""Standby nodes: empty nodes a pool keeps Ready ahead of need, sized by the planner."""

from __future__ import annotations

import dataclasses
import math

from infscale.domain import demand, forecast, model, planner, standby, tuning
from tests.unit import planner_fixtures as fx

CFG = tuning.PlannerSettings()


def _pools(standby_max: int) -> list[model.PoolSpec]:
    return [
        dataclasses.replace(p, standby_max_nodes=standby_max) if p.name == "l4" else p
        for p in fx.pools()
    ]


def _l4_only() -> model.ServiceSpec:
    svc = fx.service()
    return dataclasses.replace(svc, variants=tuple(v for v in svc.variants if v.name == "l4"))


def _run(
    rates: list[float], standby_max: int = 3, step_s: float = 15.0
) -> tuple[model.Plan, model.PlannerState]:
    svc, pools = _l4_only(), _pools(standby_max)
    state = model.PlannerState()
    plan = None
    for i, rps in enumerate(rates):
        plan, state = planner.plan([svc], pools, {svc.key: fx.observe(rps)}, state, i * step_s)
    assert plan is not None
    return plan, state


def test_a_pool_without_standby_keeps_none() -> None:
    plan, _ = _run([5.0] * 40, standby_max=0)
    assert plan.standby == {}
    assert plan.nodes["l4"] == plan.replicas["team-a/chat"]["l4"]


def test_a_service_new_to_traffic_gets_the_most_standby_allows() -> None:
    plan, _ = _run([5.0] * 4)  # 45 s of traffic, the pool provisions in 300 s
    nodes, why = plan.standby["l4"]
    assert nodes == 3
    assert "how fast it rises is unknown" in why
    assert plan.nodes["l4"] == plan.replicas["team-a/chat"]["l4"] + 3
    assert any(r.startswith("standby 3 node(s) at $2.41/h") for r in plan.reasons["pool:l4"])


def test_steady_traffic_needs_no_standby() -> None:
    plan, _ = _run([5.0] * 40)  # 600 s of one rate: no under-forecast, no trend
    assert plan.standby["l4"][0] == 0
    assert plan.nodes["l4"] == plan.replicas["team-a/chat"]["l4"]


def test_noisy_traffic_keeps_the_nodes_its_rise_within_provisioning_needs() -> None:
    rates = [2.0, 14.0] * 20  # one-step under-forecasts of about 12 rps, every other decision
    plan, state = _run(rates, standby_max=10)
    fstate = state.forecasts["team-a/chat"]
    rise = standby.rise_rps(fstate, 300.0, 39 * 15.0, CFG)
    assert rise is not None
    assert rise > 0
    planned_rps = 6.0 * plan.replicas["team-a/chat"]["l4"]
    short = forecast.smooth_rps(fstate, CFG) + rise - planned_rps
    assert short > 0  # the test's own premise: the rise outruns what is planned
    nodes, why = plan.standby["l4"]
    assert nodes == math.ceil(short / 6.0)
    assert f"team-a/chat may rise {rise:.2f} rps within 300 s" in why
    capped, capped_why = _run(rates, standby_max=1)[0].standby["l4"]
    assert capped == 1
    assert "(capped at 1)" in capped_why


def test_a_standby_node_makes_the_pool_free_for_the_next_decision() -> None:
    svc, pools = _l4_only(), _pools(3)
    plan, state = planner.plan([svc], pools, {svc.key: fx.observe(5.0)}, model.PlannerState(), 0)
    assert plan.standby["l4"][0] == 3
    cycle = demand.Cycle({p.name: p for p in pools}, frozenset({"l4"}), state, 15.0, CFG)
    assert cycle.cold_start_s(svc.variants[0]) == 120  # start-up only, no node to wait for


def test_the_forecaster_remembers_its_first_traffic() -> None:
    state = model.ForecastState()
    for now_s, rps in [(0.0, 0.0), (10.0, 0.0), (20.0, 2.0), (50.0, 2.0)]:
        state = forecast.update(state, rps, now_s, CFG)
    assert state.active_since_s == 20.0
    assert standby.rise_rps(state, 300.0, 50.0, CFG) is None  # 30 s of traffic: unknown
    assert standby.rise_rps(state, 300.0, 320.0, CFG) is not None
    again = model.state_from_json(model.state_to_json(model.PlannerState(forecasts={"s": state})))
    assert again.forecasts["s"] == state
