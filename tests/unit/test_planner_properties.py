"""Property tests (hypothesis) of planner invariants over random services and observations."""

from __future__ import annotations

import dataclasses
import math

from hypothesis import example, given, settings
from hypothesis import strategies as st

from infscale.domain import model, planner, pricing
from infscale.domain import tuning as planner_settings
from tests.unit import planner_fixtures as fx

CFG = planner_settings.PlannerSettings(solver_time_limit_s=2.0)
rates = st.one_of(st.none(), st.floats(min_value=0.0, max_value=200.0))


def _services(n: int, min_replicas: int) -> list[model.ServiceSpec]:
    return [fx.service(f"s{i}", min_replicas=min_replicas, max_replicas=30) for i in range(n)]


@settings(max_examples=25, deadline=None)
@given(
    rps=st.lists(st.floats(min_value=0.0, max_value=150.0), min_size=1, max_size=3),
    max_nodes=st.integers(min_value=1, max_value=30),
    min_replicas=st.integers(min_value=0, max_value=2),
)
@example(rps=[7.0, 67.0, 132.015625], max_nodes=16, min_replicas=0)  # found by CI
@example(rps=[0.0, 91.0, 91.0], max_nodes=1, min_replicas=2)  # an idle service's minimum
def test_capacity_covers_demand_whenever_pools_allow(
    rps: list[float], max_nodes: int, min_replicas: int
) -> None:
    pools = fx.pools(max_nodes)
    services = _services(len(rps), min_replicas)
    obs = {s.key: fx.observe(r) for s, r in zip(services, rps, strict=True)}
    plan, _ = planner.plan(services, pools, obs, model.PlannerState(), 0.0, CFG)
    pool_map = {p.name: p for p in pools}
    needed = pricing.pool_nodes_needed(plan.replicas, services, pool_map)
    for pool in pools:  # bounds respected and every replica packs
        assert pool.min_nodes <= plan.nodes[pool.name] <= pool.max_nodes
        assert needed[pool.name] <= plan.nodes[pool.name]
    # Covering is surely possible when every service fits on H100 replicas alone.
    h100 = services[0].variant("h100")
    gpus_per_node = h100.resources.fits_per_node(pool_map["h100"].node)
    per_replica = h100.capacity_rps * CFG.target_utilization
    # (each service's min replicas take room too, wherever they are placed)
    per_service = [
        max(math.ceil(plan.demand_rps[s.key] / per_replica), s.min_replicas) for s in services
    ]
    feasible = sum(per_service) <= gpus_per_node * max_nodes and all(
        n <= s.max_replicas for n, s in zip(per_service, services, strict=True)
    )
    for svc in services:
        total = plan.total_replicas(svc.key)
        assert min(svc.min_replicas, svc.max_replicas) <= total <= svc.max_replicas
        capacity = sum(
            svc.variant(v).capacity_rps * CFG.target_utilization * n
            for v, n in plan.replicas[svc.key].items()
        )
        if feasible:  # up to the sliver the optimiser's linear penalty tolerates (< 0.1 rps)
            assert capacity >= plan.demand_rps[svc.key] - 0.1


@settings(max_examples=25, deadline=None)
@given(
    first=st.floats(min_value=0.0, max_value=150.0), later=st.lists(rates, min_size=1, max_size=6)
)
def test_never_scales_down_on_unknown_data(first: float, later: list[float | None]) -> None:
    svc = fx.service(min_replicas=0)
    plan, state = planner.plan(
        [svc], fx.pools(), {svc.key: fx.observe(first)}, model.PlannerState(), 0.0, CFG
    )
    previous = plan
    for i, rps in enumerate(later, start=1):
        plan, state = planner.plan(
            [svc], fx.pools(), {svc.key: fx.observe(rps)}, state, 15.0 * i, CFG
        )
        if rps is None:
            for variant, count in previous.replicas[svc.key].items():
                assert plan.replicas[svc.key][variant] >= count
            for pool, count in previous.nodes.items():
                assert plan.nodes[pool] >= count
        previous = plan


@settings(max_examples=15, deadline=None)
@given(steps=st.lists(rates, min_size=1, max_size=4), final=rates)
def test_idempotent_for_equal_inputs(steps: list[float | None], final: float | None) -> None:
    svc = fx.service()
    state = model.PlannerState()
    for i, rps in enumerate(steps):
        _, state = planner.plan([svc], fx.pools(), {svc.key: fx.observe(rps)}, state, 15.0 * i, CFG)
    now_s = 15.0 * len(steps)
    a = planner.plan([svc], fx.pools(), {svc.key: fx.observe(final)}, state, now_s, CFG)
    b = planner.plan([svc], fx.pools(), {svc.key: fx.observe(final)}, state, now_s, CFG)
    assert a == b


def _observation(rps: float | None, gap: int, l4_ready: int) -> model.Observation:
    """``gap``: 0 complete, 1 the L4 series missing, 2 a pod reported missing, 3 no latency."""
    l4 = model.VariantObservation(
        ready_replicas=l4_ready,
        desired_replicas=l4_ready,
        rps=None if gap == 1 else (rps or 0.0) * 0.5,
        latency_s=0.2,
    )
    obs = model.Observation(
        rps=rps,
        latency_s=None if gap == 3 else 0.2,
        variants={"h100": model.VariantObservation(), "l4": l4},
    )
    if gap == 2:
        obs = dataclasses.replace(obs, missing=("request rate of pod chat-l4-0",))
    return obs


@settings(max_examples=40, deadline=None)
@given(
    first=st.floats(min_value=0.0, max_value=150.0),
    later=st.lists(
        st.tuples(
            st.one_of(st.none(), st.floats(min_value=0.0, max_value=200.0)),
            st.integers(min_value=0, max_value=3),
            st.integers(min_value=1, max_value=8),
        ),
        min_size=1,
        max_size=8,
    ),
    min_replicas=st.integers(min_value=0, max_value=2),
)
def test_never_scales_down_on_unknown_or_partial_data(
    first: float, later: list[tuple[float | None, int, int]], min_replicas: int
) -> None:
    svc = fx.service(min_replicas=min_replicas, scale_down_stabilization_s=0, idle_timeout_s=30)
    pools = fx.pools()
    plan, state = planner.plan(
        [svc], pools, {svc.key: _observation(first, 0, 1)}, model.PlannerState(), 0.0, CFG
    )
    for i, (rps, gap, ready) in enumerate(later, start=1):
        previous = plan
        obs = _observation(rps, gap, ready)
        plan, state = planner.plan([svc], pools, {svc.key: obs}, state, 60.0 * i, CFG)
        partial = rps is None or (gap != 0 and not (gap == 3 and not rps))
        if partial:
            for variant, count in previous.replicas[svc.key].items():
                assert plan.replicas[svc.key][variant] >= count
            for pool, count in previous.nodes.items():
                assert plan.nodes[pool] >= count
            assert any("unknown" in r or "missing" in r for r in plan.reasons[svc.key])
