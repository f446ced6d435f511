"""After an SLO miss, one replica of the variant with the most capacity per dollar stands by."""

from __future__ import annotations

import dataclasses

from infscale.domain import model, planner, tuning

GPU = model.GPU
# A small node: cheaper and sooner Ready (2 min), but 3 rps for $0.526 (0.175 $/h an rps); an
# L4-like one: 10 rps for $0.8048 (0.080 $/h an rps), in 5 min. (Were the small one no sooner
# Ready, the big one would dominate it and it would never serve: ``demand.dominated``.)
POOLS = [
    model.PoolSpec("small", model.Resources(4, 16, {GPU: 1}), 0.526, 0, 10, 120),
    model.PoolSpec("big", model.Resources(4, 16, {GPU: 1}), 0.8048, 0, 10, 300),
]
SERVICE = model.ServiceSpec(
    "team-a",
    "chat",
    (
        model.VariantSpec("small", "small", model.Resources(3, 12, {GPU: 1}), 3.0, 60),
        model.VariantSpec("big", "big", model.Resources(3, 12, {GPU: 1}), 10.0, 60),
    ),
    slo_latency_s=1.0,
    min_replicas=1,
    max_replicas=10,
)
NOW_S = 10_000.0
CFG = tuning.PlannerSettings(margin_sigmas=0.0)


def _plan(
    missed_ago_s: float | None,
    svc: model.ServiceSpec = SERVICE,
    cfg: tuning.PlannerSettings = CFG,
    running: dict[str, int] | None = None,
) -> model.Plan:
    """A trickle of 2 rps, which one small replica serves; the last miss ``missed_ago_s`` ago;
    ``running``: the replicas that run (none by default: the plan applies as it is)."""
    missed = {} if missed_ago_s is None else {svc.key: NOW_S - missed_ago_s}
    state = model.PlannerState(
        last_replicas={} if running is None else {svc.key: running},
        forecasts={svc.key: model.ForecastState(level_rps=2.0, last_s=NOW_S - 15)},
        missed_slo_s=missed,
    )
    obs = model.Observation(rps=2.0, latency_s=0.3, slo_attainment=1.0)
    plan, _ = planner.plan([svc], POOLS, {svc.key: obs}, state, NOW_S, cfg)
    return plan


def test_without_a_miss_the_cheapest_replica_serves_alone() -> None:
    assert _plan(None).replicas[SERVICE.key] == {"small": 1, "big": 0}


def test_after_a_miss_one_replica_of_the_most_capacity_per_dollar_stands_by() -> None:
    plan = _plan(missed_ago_s=600)
    assert plan.replicas[SERVICE.key] == {"small": 1, "big": 1}
    assert any(
        "SLO missed 600 s ago: one big replica, the most capacity per dollar" in r
        for r in plan.reasons[SERVICE.key]
    )
    assert plan.nodes["big"] == 1


def test_like_any_plan_it_waits_for_a_move_beyond_the_tolerance() -> None:
    # One small replica runs and covers the demand: the tolerance keeps it, and says so.
    plan = _plan(missed_ago_s=600, running={"small": 1, "big": 0})
    assert plan.replicas[SERVICE.key] == {"small": 1, "big": 0}
    reasons = plan.reasons[SERVICE.key]
    assert any("keep {'small': 1, 'big': 0}" in r for r in reasons)
    assert not any("stands by" in r for r in reasons)


def test_it_stands_by_for_the_miss_memory_only_and_can_be_turned_off() -> None:
    assert _plan(missed_ago_s=CFG.miss_memory_s + 60).replicas[SERVICE.key]["big"] == 0
    off = dataclasses.replace(CFG, miss_standby=False)
    assert _plan(missed_ago_s=600, cfg=off).replicas[SERVICE.key]["big"] == 0


def test_no_standby_on_a_variant_that_may_not_serve_or_beyond_max_replicas() -> None:
    # A quality floor the big variant is under bars it; a service at its maximum gets none.
    floored = dataclasses.replace(
        SERVICE,
        variants=(
            dataclasses.replace(SERVICE.variants[0], quality=0.9),
            dataclasses.replace(SERVICE.variants[1], quality=0.5),
        ),
        quality_floor=0.8,
    )
    assert _plan(missed_ago_s=600, svc=floored).replicas[floored.key]["big"] == 0
    capped = dataclasses.replace(SERVICE, max_replicas=1)
    assert _plan(missed_ago_s=600, svc=capped).replicas[capped.key] == {"small": 1, "big": 0}
