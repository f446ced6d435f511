"""Standby nodes: nodes a pool keeps Ready ahead of need, sized by the planner; empty, or
running warm replicas of the services they stand by for."""

from __future__ import annotations

import dataclasses
import math

from infscale.domain import demand, forecast, model, planner, standby, tuning
from tests.unit import planner_fixtures as fx

CFG = tuning.PlannerSettings()


def _pools(standby_max: int, warm: bool = False) -> list[model.PoolSpec]:
    return [
        dataclasses.replace(p, standby_max_nodes=standby_max, standby_warm=warm)
        if p.name == "l4"
        else p
        for p in fx.pools()
    ]


def _l4_only() -> model.ServiceSpec:
    svc = fx.service()
    return dataclasses.replace(svc, variants=tuple(v for v in svc.variants if v.name == "l4"))


def _run(
    rates: list[float], standby_max: int = 3, step_s: float = 15.0, warm: bool = False
) -> tuple[model.Plan, model.PlannerState]:
    svc, pools = _l4_only(), _pools(standby_max, warm)
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


def test_a_service_whose_rate_becomes_unknown_gets_the_most_standby_allows() -> None:
    plan, state = _run([5.0] * 40)  # steady: no standby
    assert plan.standby["l4"][0] == 0
    svc, pools = _l4_only(), _pools(3)
    lost, _ = planner.plan([svc], pools, {svc.key: fx.observe(None)}, state, 40 * 15.0)
    nodes, why = lost.standby["l4"]
    assert nodes == 3  # a metrics outage may hide a rise: the pool keeps all it may
    assert "team-a/chat: request rate unknown now, so how fast it rises is unknown" in why
    assert lost.replicas["team-a/chat"] == plan.replicas["team-a/chat"]  # and nothing shrinks
    back, _ = planner.plan([svc], pools, {svc.key: fx.observe(5.0)}, state, 40 * 15.0)
    assert back.standby["l4"][0] == 0


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


def test_warm_standby_nodes_run_replicas_beyond_the_demand() -> None:
    empty, empty_state = _run([5.0] * 4)
    plan, state = _run([5.0] * 4, warm=True)
    demand_replicas = empty.replicas["team-a/chat"]["l4"]
    assert plan.standby["l4"][0] == 3
    assert plan.nodes == empty.nodes  # the same nodes, the same price
    assert plan.warm == {"team-a/chat": {"l4": 3}}  # one L4 replica fills one g6.xlarge
    assert plan.replicas["team-a/chat"]["l4"] == demand_replicas + 3
    assert any(r.startswith("warm standby: +3 l4 started") for r in plan.reasons["team-a/chat"])
    assert "warm: 3 l4 of team-a/chat" in plan.standby["l4"][1]
    # The demand's memory counts only the planned replicas: no feedback into the next cycle.
    assert state.last_replicas == empty_state.last_replicas
    assert state.history == empty_state.history


def test_warm_replicas_stay_within_the_service_maximum() -> None:
    svc, pools = _l4_only(), _pools(3, warm=True)
    svc = dataclasses.replace(svc, max_replicas=2)
    plan, _ = planner.plan([svc], pools, {svc.key: fx.observe(5.0)}, model.PlannerState(), 0)
    assert plan.standby["l4"][0] == 3  # the nodes still stand by, for whatever else fits
    assert plan.replicas[svc.key]["l4"] == 2  # one for 5 rps, one warm: the maximum
    assert plan.warm[svc.key] == {"l4": 1}


def test_noisy_traffic_warms_the_replicas_its_rise_needs() -> None:
    rates = [2.0, 14.0] * 20
    empty, _ = _run(rates, standby_max=10)
    plan, _ = _run(rates, standby_max=10, warm=True)
    nodes = plan.standby["l4"][0]
    assert nodes == empty.standby["l4"][0] > 0
    assert plan.warm["team-a/chat"]["l4"] == nodes  # one replica per node of this shape


def test_a_warm_pool_is_not_free_for_new_replicas() -> None:
    def lead(warm: bool) -> str:
        svc, pools = _l4_only(), _pools(3, warm)
        observed = {svc.key: fx.observe(5.0)}
        _, state = planner.plan([svc], pools, observed, model.PlannerState(), 0)
        plan, _ = planner.plan([svc], pools, observed, state, 15.0)
        return next(r for r in plan.reasons[svc.key] if r.startswith("demand "))

    assert "over a 120 s lead" in lead(warm=False)  # an empty standby node: start-up only
    assert "over a 420 s lead" in lead(warm=True)  # its nodes run warm replicas: a node too


def test_nodes_a_warm_pool_keeps_after_a_fall_run_replicas_too() -> None:
    plan, _ = _run([30.0] * 30 + [5.0] * 50, warm=True)  # 450 s at 30 rps, then 750 s at 5
    planned = plan.replicas["team-a/chat"]["l4"] - plan.warm["team-a/chat"]["l4"]
    kept, why = plan.standby["l4"]
    assert kept == plan.nodes["l4"] - planned  # all beyond the demand count as standby
    assert "more kept beyond the demand, not yet released" in why
    assert plan.warm["team-a/chat"]["l4"] == kept  # and each runs a replica


def test_a_service_in_recommend_mode_buys_no_standby() -> None:
    svc, pools = dataclasses.replace(_l4_only(), acting=False), _pools(3)
    plan, _ = planner.plan([svc], pools, {svc.key: fx.observe(5.0)}, model.PlannerState(), 0.0)
    assert plan.standby["l4"][0] == 0  # new to traffic: were it acting, the pool would keep 3
    assert plan.replicas["team-a/chat"]["l4"] >= 1  # its plan is still made, for the report
