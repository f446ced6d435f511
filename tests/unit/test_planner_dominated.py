"""A variant another one dominates (dearer per rps, Ready no sooner, smaller per replica) serves
only where that one cannot be had: ``demand.dominated``."""

from __future__ import annotations

import dataclasses

from infscale.domain import model, planner, tuning

GPU = model.GPU
NODE = model.Resources(4, 16, {GPU: 1})
# A T4-like node: $0.526/h for 3 rps ($0.175/h an rps); an L4-like one: $0.8048/h for 10 rps
# ($0.080/h an rps). Both come in 5 min and start in a minute.
T4 = model.PoolSpec("t4", NODE, 0.526, 0, 10, 300)
L4 = model.PoolSpec("l4", NODE, 0.8048, 0, 10, 300)
SERVICE = model.ServiceSpec(
    "team-a",
    "chat",
    (
        model.VariantSpec("t4", "t4", model.Resources(3, 12, {GPU: 1}), 3.0, 60),
        model.VariantSpec("l4", "l4", model.Resources(3, 12, {GPU: 1}), 10.0, 60),
    ),
    slo_latency_s=1.0,
    min_replicas=1,
    max_replicas=20,
)
CFG = tuning.PlannerSettings(margin_sigmas=0.0)


def _plan(
    rps: float,
    svc: model.ServiceSpec = SERVICE,
    pools: tuple[model.PoolSpec, ...] = (T4, L4),
    cfg: tuning.PlannerSettings = CFG,
) -> model.Plan:
    """One decision for a steady ``rps``, nothing running."""
    state = model.PlannerState(
        forecasts={svc.key: model.ForecastState(level_rps=rps, last_s=9_985.0)}
    )
    obs = model.Observation(rps=rps, latency_s=0.3, slo_attainment=1.0)
    plan, _ = planner.plan([svc], list(pools), {svc.key: obs}, state, 10_000.0, cfg)
    return plan


def _with(svc: model.ServiceSpec, name: str, **changes: object) -> model.ServiceSpec:
    variants = tuple(
        dataclasses.replace(v, **changes) if v.name == name else v for v in svc.variants
    )
    return dataclasses.replace(svc, variants=variants)


def test_a_trickle_gets_the_bigger_cheaper_per_rps_replica_and_the_reason_says_why() -> None:
    plan = _plan(2.0)
    assert plan.replicas[SERVICE.key] == {"t4": 0, "l4": 1}
    assert any(
        r == "t4 only where l4 cannot be had: l4 serves an rps for less ($0.080/h against "
        "$0.175/h), as soon (360 s against 360 s), with as much per replica (10.00 against "
        "3.00 rps)"
        for r in plan.reasons[SERVICE.key]
    )


def test_without_the_rule_the_smaller_step_is_cheapest() -> None:
    plan = _plan(2.0, cfg=dataclasses.replace(CFG, skip_dominated=False))
    assert plan.replicas[SERVICE.key] == {"t4": 1, "l4": 0}


def test_a_variant_ready_sooner_is_not_dominated() -> None:
    sooner = dataclasses.replace(T4, provisioning_s=120)  # a CPU-like pool: a bridge
    plan = _plan(2.0, pools=(sooner, L4))
    assert plan.replicas[SERVICE.key] == {"t4": 1, "l4": 0}


def test_nor_by_a_spot_pool_nor_by_a_lower_quality() -> None:
    spot = dataclasses.replace(L4, spot=True)
    assert _plan(2.0, pools=(T4, spot)).replicas[SERVICE.key]["t4"] == 1
    scored = _with(_with(SERVICE, "t4", quality=0.95), "l4", quality=0.9)
    assert _plan(2.0, svc=scored).replicas[SERVICE.key] == {"t4": 1, "l4": 0}


def test_the_dominated_variant_serves_where_the_other_cannot_cover_the_demand() -> None:
    # Two L4 nodes at most carry 20 rps; 24 rps need two T4s beside them.
    small_l4 = dataclasses.replace(L4, max_nodes=2)
    plan = _plan(24.0, pools=(T4, small_l4))
    assert plan.replicas[SERVICE.key] == {"t4": 2, "l4": 2}
    assert not any("cannot cover" in r for r in plan.reasons[SERVICE.key])


def test_so_does_the_greedy_allocator() -> None:
    greedy = dataclasses.replace(CFG, use_solver=False)
    assert _plan(2.0, cfg=greedy).replicas[SERVICE.key] == {"t4": 0, "l4": 1}
    small_l4 = dataclasses.replace(L4, max_nodes=2)
    assert _plan(24.0, pools=(T4, small_l4), cfg=greedy).replicas[SERVICE.key] == {
        "t4": 2,
        "l4": 2,
    }


def test_a_batch_service_keeps_the_smaller_step() -> None:
    # 60 requests queued with an hour to spare: one T4 drains them for less; nothing rises.
    batch = dataclasses.replace(SERVICE, min_replicas=0, deadline_s=3600.0)
    state = model.PlannerState()
    obs = model.Observation(rps=0.0, latency_s=None, queued=60.0)
    plan, _ = planner.plan([batch], [T4, L4], {batch.key: obs}, state, 10_000.0, CFG)
    assert plan.replicas[batch.key] == {"t4": 1, "l4": 0}
    assert not any("cannot be had" in r for r in plan.reasons[batch.key])
