"""Bundled scenario files: valid, cited, and the three-pool one really needs a mix of pools."""

from __future__ import annotations

import numpy as np
import pytest

from infscale.domain import model
from infscale.sim import bench, oracle, scenario, traces

# AWS on-demand us-east-1 prices quoted in BASELINES.md (reference figures); "/8" is one GPU of
# an 8-GPU node at its per-GPU rate.
CITED_USD_PER_HOUR = {
    "p5.48xlarge/8": 55.04 / 8,
    "g6.xlarge": 0.8048,
    "g4dn.xlarge": 0.526,
    "g5.xlarge": 1.006,
    "m7g.large": 0.0816,
}


@pytest.mark.parametrize("name", ["three-pool", "gpu-classes", "model-variants"])
def test_scenarios_load_with_cited_prices(name: str) -> None:
    scen = scenario.load(name)
    assert scen.sources
    for pool in scen.pools:
        assert pool.usd_per_hour == pytest.approx(CITED_USD_PER_HOUR[pool.instance], abs=0.005)
    service = scen.domain_service()
    pools = {p.name: p for p in scen.domain_pools()}
    for variant in service.variants:
        assert variant.resources.fits_per_node(pools[variant.pool].node) >= 1


@pytest.mark.parametrize(
    ("name", "variant"),
    [
        (s, v.name)
        for s in ("three-pool", "gpu-classes", "model-variants")
        for v in scenario.load(s).variants
    ],
)
def test_spec_capacity_is_a_cautious_share_of_what_the_replica_sustains(
    name: str, variant: str
) -> None:
    # Every variant's capacity_rps is 70-100 % of the rate its simulated replicas sustain at
    # the 0.99 attainment bar, so no variant is favoured by a kinder spec than the others.
    scen = scenario.load(name)
    spec_rps = scen.domain_service().variant(variant).capacity_rps
    assert bench.replica_attainment(scen, variant, spec_rps) >= bench.ATTAINMENT_BAR
    assert bench.replica_attainment(scen, variant, spec_rps / 0.7) < bench.ATTAINMENT_BAR


def test_three_pool_has_a_large_gpu_a_small_gpu_and_cpu_and_its_best_mix_is_not_one_pool() -> None:
    scen = scenario.load("three-pool")
    pools = {p.name: p for p in scen.domain_pools()}
    service = scen.domain_service()
    gpus = {v.name: pools[v.pool].node.extended.get(model.GPU, 0) for v in service.variants}
    largest = max(service.variants, key=lambda v: v.capacity_rps)
    assert gpus[largest.name] >= 1  # a large GPU
    assert min(gpus.values()) == 0  # CPU
    assert sum(1 for g in gpus.values() if g) == 2  # and a small GPU
    # The oracle, which knows the trace, pays at least 10 % more on any single variant.
    workload = scen.workload(traces.synthetic(seed=1, duration_s=1200.0), seed=1)
    mix = oracle.solve(workload, scen).cost_usd
    for variant in scen.variants:
        alone = scen.model_copy(update={"variants": [variant]})
        assert mix <= 0.9 * oracle.solve(workload, alone).cost_usd, variant.name


def test_tenants_keep_the_curve_and_scale_the_volume() -> None:
    trace = traces.synthetic(seed=3, duration_s=1800.0)
    scaled = traces.superpose(trace, 20, shift_s=60.0, seed=1)
    assert scaled.arrivals_s.size == 20 * trace.arrivals_s.size
    assert scaled.duration_s == trace.duration_s
    per_minute = trace.rate_per_bin(300.0) * 20
    assert abs(scaled.rate_per_bin(300.0) - per_minute).max() <= 0.3 * per_minute.max()
    # One-second bursts of different tenants do not line up: 40 requests in one second stay a
    # burst of one tenant, not 800 at once.
    calm = traces.poisson(4.0, 1800.0, seed=1).arrivals_s
    spike = traces.Trace("spike", np.sort(np.r_[calm, np.full(40, 600.5)]), 1800.0)
    assert traces.superpose(spike, 20, seed=1).rate_per_bin(1.0).max() < 0.25 * 20 * 40
    assert traces.superpose(trace, 1) is trace


def test_planning_time_helper_runs_on_a_small_fleet() -> None:
    timing = bench.planning_time(services_n=5, variants_n=2, pools_n=3)
    assert set(timing) == {"cold_s", "steady_median_s", "services_short"}
    assert timing["cold_s"] > 0
    assert 0 <= timing["services_short"] <= 5


def test_the_reachable_bound_misses_only_what_comes_before_capacity_can_arrive() -> None:
    # 1 rps, and 400 requests in second 60: no capacity ordered at t=0 is Ready by then, so the
    # warm L4 alone meets it. The same burst at minute 20 is met by what was ordered at t=0.
    scen = scenario.load("gpu-classes")
    service, pools = scen.domain_service(), scen.domain_pools()
    steady = np.arange(0.0, 1800.0, 1.0)

    def attainment(burst_s: float) -> float:
        burst = np.linspace(burst_s, burst_s + 1.0, 400)
        trace = traces.Trace("burst", np.sort(np.append(steady, burst)), 1800.0)
        bound = bench.reachable(trace, service, pools, ({"l4": 1}, {"l4": 1}))
        return bench._run(trace, scen, bound, ({"l4": 1}, {"l4": 1}), False, 1).slo_attainment

    early, late = attainment(60.0), attainment(1200.0)
    assert early < 0.9
    assert late == 1.0
