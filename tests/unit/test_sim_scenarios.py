"""Bundled scenario files: valid, cited, and the three-pool one really has three pool kinds."""

from __future__ import annotations

import pytest

from infscale.domain import model
from infscale.sim import bench, scenario

# AWS on-demand us-east-1 prices quoted in BASELINES.md (reference figures).
CITED_USD_PER_HOUR = {
    "p5.48xlarge": 55.04,
    "g6.xlarge": 0.8048,
    "g4dn.xlarge": 0.526,
    "g5.xlarge": 1.006,
    "m7g.large": 0.0816,
}


@pytest.mark.parametrize("name", ["three-pool", "gpu-classes"])
def test_scenarios_load_with_cited_prices(name: str) -> None:
    scen = scenario.load(name)
    assert scen.sources
    for pool in scen.pools:
        assert pool.usd_per_hour == CITED_USD_PER_HOUR[pool.instance]
    service = scen.domain_service()
    pools = {p.name: p for p in scen.domain_pools()}
    for variant in service.variants:
        assert variant.resources.fits_per_node(pools[variant.pool].node) >= 1


@pytest.mark.parametrize(
    ("name", "variant"),
    [(s, v.name) for s in ("three-pool", "gpu-classes") for v in scenario.load(s).variants],
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


def test_three_pool_has_a_large_gpu_a_small_gpu_and_cpu() -> None:
    pools = scenario.load("three-pool").domain_pools()
    gpus = sorted(p.node.extended.get(model.GPU, 0) for p in pools)
    assert gpus == [0, 1, 8]


def test_planning_time_helper_runs_on_a_small_fleet() -> None:
    timing = bench.planning_time(services_n=5, variants_n=2, pools_n=3)
    assert set(timing) == {"cold_s", "steady_median_s"}
