"""Spot capacity in the simulator: nodes reclaimed at their pool's rate, and the scenario."""

from __future__ import annotations

from infscale.sim import engine, policies, scenario, traces


def test_spot_nodes_are_reclaimed_at_their_rate_and_billing_stops() -> None:
    spot = scenario.load("spot")
    assert {p.name for p in spot.without_spot().pools} == {"l4", "cpu"}
    assert {v.name for v in spot.without_spot().variants} == {"l4", "cpu"}
    assert policies.cheapest_variant(spot.domain_service(), spot.domain_pools(), 30.0) != "l4-spot"
    often = spot.model_copy(
        update={"pools": [p.model_copy(update={"interruptions_per_hour": 30.0}) if p.spot else p
                          for p in spot.pools]}
    )  # fmt: skip
    trace = traces.poisson(5.0, 600.0, seed=2)
    start = ({"l4-spot": 2}, {"l4-spot": 2})

    def replay(scen: scenario.Scenario) -> engine.Result:
        policy = policies.Static("l4-spot", 2, {"l4-spot": 2})
        return engine.Simulator(trace, scen, policy, initial=start[0], initial_nodes=start[1]).run()

    calm, stormy = replay(spot), replay(often)
    # 30 an hour on each of two nodes: both go within the ten minutes (more than 99.9 % likely),
    # and the static policy never buys them back: the replays differ only by that.
    assert stormy.interruptions == 2
    assert stormy.cost_usd < calm.cost_usd
    assert stormy.slo_attainment < calm.slo_attainment
