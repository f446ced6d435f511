"""The allocator: packing onto node shapes, the MILP's choices and the greedy fallback."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from infscale.domain import model, optimize, pricing, tuning
from infscale.sim import bench
from tests.unit import planner_fixtures as fx

GPU = model.GPU


def _demand(svc: model.ServiceSpec, rps: float, min_total: int = 0) -> optimize.Demand:
    caps = {v.name: v.capacity_rps for v in svc.variants}
    return optimize.Demand(svc, rps, caps, min_total, svc.max_replicas)


def test_nodes_needed_homogeneous_and_mixed() -> None:
    node = model.Resources(8, 32, {GPU: 2})
    one_gpu = model.Resources(3, 8, {GPU: 1})
    assert pricing.nodes_needed([(one_gpu, 5)], node) == 3
    # cpu binds: 3 + 3 + 2 = 8 cpu on one node, but only 2 GPUs per node.
    small_cpu = model.Resources(2, 4)
    assert pricing.nodes_needed([(one_gpu, 2), (small_cpu, 1)], node) == 1
    assert pricing.nodes_needed([(one_gpu, 2), (small_cpu, 2)], node) == 2
    assert pricing.nodes_needed([], node) == 0
    assert pricing.nodes_needed([(model.Resources(16, 1), 1)], node) >= 10**9


def test_fluid_packing_is_repaired_by_first_fit() -> None:
    # 3-cpu replicas on 8-cpu nodes: the fluid bound says 5 fit on 2 nodes, reality needs 3.
    pool = model.PoolSpec("c", model.Resources(8, 64), 1.0, 0, 10, 60)
    svc = model.ServiceSpec(
        "ns", "s", (model.VariantSpec("v", "c", model.Resources(3, 1), 1.0, 10),), min_replicas=0
    )
    alloc = optimize.optimize([_demand(svc, 5.0)], {"c": pool}, tuning.PlannerSettings())
    assert alloc.replicas[svc.key]["v"] == 5
    assert alloc.nodes["c"] == 3


def test_milp_counts_whole_replicas_per_node() -> None:
    # 3-cpu replicas take a whole 4-cpu node: four of them cost 4 nodes ($4), not the fluid 3
    # ($3), so two 2-rps replicas on $1.60 nodes ($3.20) are the cheaper cover of 4 rps.
    pools = {
        "cpu": model.PoolSpec("cpu", model.Resources(4, 64), 1.0, 0, 10, 60),
        "gpu": model.PoolSpec("gpu", model.Resources(4, 64, {GPU: 1}), 1.6, 0, 10, 60),
    }
    svc = model.ServiceSpec(
        "ns",
        "s",
        (
            model.VariantSpec("cpu", "cpu", model.Resources(3, 1), 1.0, 10),
            model.VariantSpec("gpu", "gpu", model.Resources(1, 1, {GPU: 1}), 2.0, 10),
        ),
        min_replicas=0,
    )
    alloc = optimize.optimize([_demand(svc, 4.0)], pools, tuning.PlannerSettings())
    assert alloc.replicas[svc.key] == {"cpu": 0, "gpu": 2}
    assert alloc.nodes == {"cpu": 0, "gpu": 2}


def test_milp_prefers_the_cheapest_cover() -> None:
    pools = {p.name: p for p in fx.pools()}
    svc = fx.service()
    # 10 rps: two L4 replicas ($1.61/h) beat one H100 node ($55/h).
    alloc = optimize.optimize([_demand(svc, 10.0, 1)], pools, tuning.PlannerSettings())
    assert alloc.method == "milp"
    assert alloc.replicas[svc.key] == {"h100": 0, "l4": 2}
    assert alloc.nodes == {"cpu": 0, "h100": 0, "l4": 2}


def test_mix_when_the_cheap_pool_is_full() -> None:
    pools = {p.name: p for p in fx.pools(max_nodes=3)}
    svc = fx.service()
    alloc = optimize.optimize([_demand(svc, 40.0, 1)], pools, tuning.PlannerSettings())
    reps = alloc.replicas[svc.key]
    assert reps["l4"] <= 3
    assert reps["h100"] >= 1
    assert reps["l4"] * 6 + reps["h100"] * 30 >= 40
    assert alloc.shortfall_rps[svc.key] == 0


def test_shortfall_is_reported_when_pools_cannot_cover() -> None:
    pools = {p.name: p for p in fx.pools(max_nodes=1)}
    svc = fx.service()
    alloc = optimize.optimize([_demand(svc, 1000.0)], pools, tuning.PlannerSettings())
    assert alloc.shortfall_rps[svc.key] > 0
    assert alloc.nodes["h100"] <= 1
    assert alloc.nodes["l4"] <= 1


def test_greedy_fallback_covers_demand() -> None:
    pools = {p.name: p for p in fx.pools()}
    svc = fx.service()
    cfg = tuning.PlannerSettings(use_solver=False)
    alloc = optimize.optimize([_demand(svc, 17.0, 1)], pools, cfg)
    assert alloc.method.startswith("greedy")
    assert alloc.replicas[svc.key]["l4"] == 3
    assert alloc.nodes["l4"] == 3


def test_shared_nodes_across_services() -> None:
    # Two services with one H100 replica each share one 8-GPU node.
    pools = {p.name: p for p in fx.pools()}
    only_h100 = [
        model.ServiceSpec("ns", f"s{i}", (fx.service().variant("h100"),), min_replicas=1)
        for i in range(2)
    ]
    alloc = optimize.optimize(
        [_demand(s, 20.0, 1) for s in only_h100], pools, tuning.PlannerSettings()
    )
    assert alloc.nodes["h100"] == 1


def test_cheapest_cover_by_node_share_and_the_cost_of_moving_to_it() -> None:
    pools = {p.name: p for p in fx.pools()}
    svc = fx.service()
    cold = {"h100": 690.0, "l4": 420.0}
    # 10 rps: two L4 replicas ($1.61/h) beat an H100 replica's eighth of a node ($6.88/h).
    dem = optimize.Demand(svc, 10.0, {"h100": 30.0, "l4": 6.0}, 1, 40, {"l4": 1}, cold)
    cover = optimize.cheapest_cover(dem, pools)
    assert cover is not None
    assert (cover.variant, cover.replicas) == ("l4", 2)
    assert abs(cover.usd_per_hour - 2 * 0.8048) < 1e-9
    assert abs(cover.move_usd - 0.8048 * 420.0 / 3600.0) < 1e-9  # one new replica, cold
    at_most_one = optimize.cheapest_cover(dataclasses.replace(dem, max_total=1), pools)
    assert at_most_one is not None
    assert at_most_one.variant == "h100"
    assert abs(at_most_one.move_usd - 55.04 / 8 * 690.0 / 3600.0) < 1e-9
    at_least_three = optimize.cheapest_cover(dataclasses.replace(dem, min_total=3), pools)
    assert at_least_three is not None
    assert at_least_three.replicas == 3
    share = pricing.share_usd_per_hour({"h100": 1, "l4": 2}, svc, pools)
    assert abs(share - (55.04 / 8 + 2 * 0.8048)) < 1e-9


def test_greedy_picks_a_variant_that_covers_demand_within_the_replica_cap() -> None:
    # L4 is cheaper per rps, but three L4 replicas carry 18 of the 60 rps; two H100s carry all.
    pools = {p.name: p for p in fx.pools()}
    svc = fx.service(max_replicas=3)
    cfg = tuning.PlannerSettings(use_solver=False)
    alloc = optimize.optimize([_demand(svc, 60.0)], pools, cfg)
    assert alloc.shortfall_rps[svc.key] == 0.0
    assert alloc.replicas[svc.key] == {"h100": 2, "l4": 0}


def _node_usd(alloc: optimize.Allocation, pools: list[model.PoolSpec]) -> float:
    return sum(p.usd_per_hour * alloc.nodes[p.name] for p in pools)


def test_a_fleet_too_large_for_the_milp_time_limit_still_gets_a_near_optimal_plan() -> None:
    # Whatever HiGHS has found when its time runs out (nothing, or a plan leaving hundreds of
    # rps uncovered), the plan covers what the optimum covers, at close to its node cost.
    services, pools = bench.fleet(services_n=300, seed=3)
    rng = np.random.default_rng(4)
    demands = [_demand(s, float(rng.uniform(0, 200))) for s in services]
    pool_map = {p.name: p for p in pools}
    unbounded = 10**6
    exact = tuning.PlannerSettings(solver_time_limit_s=30, solver_max_pairs=unbounded)
    optimum = optimize.optimize(demands, pool_map, exact)
    assert optimum.method == "milp"
    # Cut short by its time limit, or (the default at 1,200 pairs) not tried at all.
    for limit_s, max_pairs in ((0.01, unbounded), (0.1, unbounded), (0.3, 1000)):
        cfg = tuning.PlannerSettings(solver_time_limit_s=limit_s, solver_max_pairs=max_pairs)
        hurried = optimize.optimize(demands, pool_map, cfg)
        assert hurried.method != "milp"
        assert sum(hurried.shortfall_rps.values()) <= sum(optimum.shortfall_rps.values()) + 1e-6
        assert _node_usd(hurried, pools) <= 1.05 * _node_usd(optimum, pools)


def _one_gpu_service(*pools: str) -> model.ServiceSpec:
    """A service with a one-GPU variant of 6 rps on each pool, named after it."""
    one_gpu = model.Resources(1, 1, {GPU: 1})
    variants = tuple(model.VariantSpec(pool, pool, one_gpu, 6.0, 10) for pool in pools)
    return model.ServiceSpec("ns", "s", variants, min_replicas=0)


def test_billed_electricity_and_a_carbon_price_enter_the_cost() -> None:
    # Two one-GPU pools: "grid" $0.80/h on a coal-heavy grid, "clean" $0.81/h on a clean one.
    def pool(name: str, usd: float, grams: float, usd_per_kwh: float = 0.0) -> model.PoolSpec:
        power = model.Power(idle_w=24, max_w=92, usd_per_kwh=usd_per_kwh, g_co2_per_kwh=grams)
        return model.PoolSpec(name, model.Resources(4, 16, {GPU: 1}), usd, 0, 10, 60, power)

    def cheapest(svc: model.ServiceSpec, pools: dict[str, model.PoolSpec]) -> str:
        alloc = optimize.optimize([_demand(svc, 12.0)], pools, tuning.PlannerSettings())
        return next(v for v, n in alloc.replicas[svc.key].items() if n)

    svc = _one_gpu_service("grid", "clean")
    pools = {"grid": pool("grid", 0.80, 900.0), "clean": pool("clean", 0.81, 50.0)}
    assert cheapest(svc, pools) == "grid"  # dollars only, by default
    # 92 W at 900 g/kWh is 83 g/h: at $200/t, $0.017/h more than the clean pool's 5 g/h.
    priced = dataclasses.replace(svc, carbon_usd_per_tonne=200.0)
    assert cheapest(priced, pools) == "clean"
    # Electricity billed beyond the node price (on premises) is paid, whatever the objective.
    billed = {**pools, "grid": pool("grid", 0.80, 900.0, usd_per_kwh=0.15)}
    assert pricing.energy_usd_per_hour(billed["grid"]) == 0.15 * 0.092
    assert cheapest(svc, billed) == "clean"


def _spot_pools() -> dict[str, model.PoolSpec]:
    """L4 nodes on demand at $0.80/h and on spot at $0.30/h."""
    shape = model.Resources(4, 16, {GPU: 1})
    return {
        "od": model.PoolSpec("od", shape, 0.80, 0, 10, 60),
        "spot": model.PoolSpec("spot", shape, 0.30, 0, 10, 60, spot=True),
    }


def test_spot_carries_a_bounded_share_and_never_what_arrives_now() -> None:
    # L4 on demand at $0.80/h and on spot at $0.30/h, 6 rps a replica; 30 rps to plan for.
    pools = _spot_pools()
    svc = _one_gpu_service("od", "spot")
    cfg = tuning.PlannerSettings()

    def plan(dem: optimize.Demand, settings: tuning.PlannerSettings = cfg) -> dict[str, int]:
        alloc = optimize.optimize([dem], pools, settings)
        assert optimize.spot_holds(dem, alloc.replicas[svc.key], pools)
        return dict(alloc.replicas[svc.key])

    # Half the capacity at most on spot: 3 on demand, 2 spot (12 of 30 rps).
    assert plan(_demand(svc, 30.0)) == {"od": 3, "spot": 2}
    # 20 rps arriving now must survive the spot pool's loss: 4 on demand, 1 spot.
    carried = dataclasses.replace(_demand(svc, 30.0), loss_floor_rps=20.0)
    assert plan(carried) == {"od": 4, "spot": 1}
    # All of it may go to spot when the service allows it and nothing must survive a loss.
    free = dataclasses.replace(svc, spot_max_share=1.0)
    assert plan(_demand(free, 30.0)) == {"od": 0, "spot": 5}
    # The greedy fallback cannot keep the rows: it plans on demand only.
    greedy = dataclasses.replace(cfg, use_solver=False)
    assert plan(carried, greedy) == {"od": 5, "spot": 0}
    # Reclaimed twice a node-hour with 20 minutes to a replacement: each node-hour pays 1 h 40
    # min ($0.30 -> $0.50), still cheaper; six times (3 h at $0.90) it is dearer than on demand.
    often = {**pools, "spot": dataclasses.replace(pools["spot"], provisioning_s=1200.0)}
    for rate, spot in ((2.0, 5), (6.0, 0)):
        reclaimed = {
            **often,
            "spot": dataclasses.replace(often["spot"], interruptions_per_hour=rate),
        }
        assert pricing.planned_usd_per_hour(reclaimed["spot"]) == pytest.approx(
            0.3 * (1 + rate / 3)
        )
        alloc = optimize.optimize([_demand(free, 30.0)], reclaimed, cfg)
        assert alloc.replicas[svc.key]["spot"] == spot


def test_a_service_only_on_spot_is_planned_and_leaves_the_others_the_milp() -> None:
    # Its share of capacity on spot cannot hold (it has nothing else): the row is left out, not
    # made infeasible for the whole fleet (every service would fall back to the greedy plan).
    pools = _spot_pools()
    mixed = _one_gpu_service("od", "spot")
    only_spot = dataclasses.replace(_one_gpu_service("spot"), name="only-spot")
    demands = [_demand(mixed, 30.0), _demand(only_spot, 6.0, min_total=1)]  # at least one
    alloc = optimize.optimize(demands, pools, tuning.PlannerSettings())
    assert alloc.method == "milp"
    assert alloc.replicas[mixed.key] == {"od": 3, "spot": 2}
    assert alloc.replicas[only_spot.key] == {"spot": 1}
    assert optimize.spot_holds(demands[1], alloc.replicas[only_spot.key], pools)
