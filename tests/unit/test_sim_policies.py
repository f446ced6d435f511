"""Baselines follow their documented rules; the oracle and the planner run in the simulator."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from infscale.domain import model
from infscale.sim import autoscaler, engine, oracle, policies, scenario, traces

SCEN = scenario.load("gpu-classes")
SERVICE = SCEN.domain_service()


def _view(
    now_s: float,
    rps: float | None,
    desired: int,
    ready: int | None = None,
    waiting: int | None = 0,
    concurrency: list[float] | None = None,
) -> engine.View:
    return engine.View(
        now_s=now_s,
        observation=model.Observation(rps=rps),
        queue_waiting=waiting,
        in_flight=waiting,
        concurrency_history=concurrency or [],
        desired={"l4": desired},
        ready={"l4": desired if ready is None else ready},
        pending_pods=0,
        nodes={},
    )


def test_hpa_tolerance_scale_up_limit_and_scale_down_window() -> None:
    hpa = policies.Hpa(SERVICE, "l4", target_rps=10.0)
    assert hpa.decide(_view(0, 41.0, 4)).replicas["l4"] == 4  # ratio 1.025: within 0.1
    assert hpa.decide(_view(15, 1000.0, 2)).replicas["l4"] == 6  # max(100 %, 4 pods)
    hpa = policies.Hpa(SERVICE, "l4", target_rps=10.0)
    assert hpa.decide(_view(0, 80.0, 8)).replicas["l4"] == 8
    assert hpa.decide(_view(15, 10.0, 8)).replicas["l4"] == 8  # highest in the 300 s window
    assert hpa.decide(_view(300, 10.0, 8)).replicas["l4"] == 1
    assert hpa.decide(_view(315, None, 1)).replicas["l4"] == 1  # missing metric: no change


def test_hpa_counts_unready_pods_as_zero_on_scale_up() -> None:
    hpa = policies.Hpa(SERVICE, "l4", target_rps=10.0)
    # 2 ready of 4: per-ready usage 2x, but with the 2 starting pods at 0 it is 1.0: hold.
    assert hpa.decide(_view(0, 40.0, 4, ready=2)).replicas["l4"] == 4


def test_keda_reads_a_missing_queue_as_zero() -> None:
    keda = policies.Keda(SERVICE, "l4", threshold=2.0)
    assert keda.decide(_view(0, 5.0, 1, waiting=20)).replicas["l4"] == 5
    assert keda.decide(_view(15, None, 5, waiting=None)).replicas["l4"] == 5  # window holds
    # ignoreNullValues: the outage reads as an empty queue and scales down after the window.
    assert keda.decide(_view(315, None, 5, waiting=None)).replicas["l4"] == 1


def test_kpa_panics_and_scales_to_zero_after_grace() -> None:
    kpa = policies.Kpa(SERVICE, "l4", slots=4)  # target 2.8 concurrent per replica
    calm = [2.0] * 60
    assert kpa.decide(_view(60, 1.0, 1, concurrency=calm)).replicas["l4"] == 1
    burst = [2.0] * 54 + [30.0] * 6
    panicked = kpa.decide(_view(62, 1.0, 1, concurrency=burst)).replicas["l4"]
    assert panicked >= 10
    # In panic: no scale-down even when the burst is gone.
    quiet = [2.0] * 60
    assert kpa.decide(_view(64, 1.0, panicked, concurrency=quiet)).replicas["l4"] == panicked
    # Scale to zero where the service's minimum (its min-scale) is 0.
    to_zero = dataclasses.replace(SERVICE, min_replicas=0)
    kpa = policies.Kpa(to_zero, "l4", slots=4)
    kpa.decide(_view(0, 0.0, 1, concurrency=[1.0] * 60))
    idle = [0.0] * 60
    assert kpa.decide(_view(60, 0.0, 1, concurrency=idle)).replicas["l4"] == 1  # grace
    assert kpa.decide(_view(100, 0.0, 1, concurrency=idle)).replicas["l4"] == 0
    # The activator wakes it on the first queued request.
    assert kpa.decide(_view(110, 0.0, 0, ready=0, waiting=3, concurrency=idle)).replicas["l4"] >= 1
    # At the scenarios' minimum of 1 it keeps one replica, as the other policies do.
    kept = policies.Kpa(SERVICE, "l4", slots=4)
    kept.decide(_view(0, 0.0, 1, concurrency=[1.0] * 60))
    assert kept.decide(_view(100, 0.0, 1, concurrency=idle)).replicas["l4"] == 1
    # Its target: a share of the slots, 0.7 unless tuned.
    assert policies.Kpa(SERVICE, "l4", slots=4, utilization=1.0).target == 4.0


def test_hpa_holds_the_replicas_it_first_sees_through_its_window() -> None:
    # The controller seeds its recommendations with the replicas it finds: 14 warm replicas at
    # a load for 2 stay for the 300 s window, as a newly created HPA keeps them.
    hpa = policies.Hpa(SERVICE, "l4", target_rps=10.0)
    assert hpa.decide(_view(0, 15.0, 14)).replicas["l4"] == 14
    assert hpa.decide(_view(285, 15.0, 14)).replicas["l4"] == 14
    assert hpa.decide(_view(300, 15.0, 14)).replicas["l4"] == 2


def test_hpa_counts_starting_pods_as_full_on_scale_down_and_leaves_pending_ones_out() -> None:
    # 10 rps over 2 ready pods of 4 at a 10 rps target: the ready ones run at half.
    def hpa_at(pending: int) -> int:
        hpa = policies.Hpa(SERVICE, "l4", target_rps=10.0)
        hpa.core.history.append((-300.0, 4))  # the window's start is past
        view = dataclasses.replace(_view(0, 10.0, 4, ready=2), pending_pods=pending)
        return hpa.decide(view).replicas["l4"]

    assert hpa_at(pending=2) == 1  # waiting for nodes: left out, ceil(0.5 x 2)
    assert hpa_at(pending=0) == 3  # starting, no metric yet: 100 %, ceil((10 + 20) / 40 x 4)
    # On scale-up both count as 0 %: 40 rps over 2 ready pods of 4 -> ceil(40 / 40 x 4) is
    # within the tolerance: no change.
    hpa = policies.Hpa(SERVICE, "l4", target_rps=10.0)
    assert hpa.decide(_view(0, 40.0, 4, ready=2)).replicas["l4"] == 4


def test_cluster_autoscaler_adds_for_pending_and_removes_empty_after_ten_minutes() -> None:
    trace = traces.Trace("empty", np.array([]), 2000.0)
    sim = engine.Simulator(trace, SCEN, policies.Static("l4", 0, {}), drain_s=0.0)
    ca = autoscaler.ClusterAutoscaler()
    sim.desired["l4"] = 2
    sim._reconcile_replicas(0.0)
    ca(sim, 0.0)
    assert len(sim.live_nodes("l4")) == 2  # one replica per 1-GPU node
    sim.desired["l4"] = 0
    sim._reconcile_replicas(10.0)
    for t in range(10, 1300, 10):
        ca(sim, float(t))
        if t < 600:
            assert len(sim.live_nodes("l4")) == 2  # not within 10 min of the scale-up
    assert len(sim.live_nodes("l4")) == 0


def test_karpenter_removes_empty_nodes_a_budget_at_a_time_after_validation() -> None:
    trace = traces.Trace("empty", np.array([]), 2000.0)
    sim = engine.Simulator(trace, SCEN, policies.Static("l4", 0, {}), drain_s=0.0)
    karpenter = autoscaler.Karpenter(consolidate_after_s=120.0)  # the binary's own periods
    sim.desired["l4"] = 20
    sim._reconcile_replicas(0.0)
    karpenter(sim, 0.0)
    assert len(sim.live_nodes("l4")) == 20  # at once, one replica per 1-GPU node
    sim.desired["l4"] = 0
    sim._reconcile_replicas(400.0)  # the nodes were Ready at 300 s; empty from 400 s
    live = []
    for t in range(400, 1000):
        karpenter(sim, float(t))
        live.append(len(sim.live_nodes("l4")))
    assert live[119] == 20  # not before consolidateAfter
    # The first command: 10 % of 20 nodes, gone after 15 s of validation and 5 s of termination.
    assert (live[120 + 19], live[120 + 20]) == (20, 18)
    # The next is computed 5 s later: 2 more (10 % of 18, rounded up), one every 25 s.
    assert (live[120 + 44], live[120 + 45]) == (18, 16)
    assert live[-1] == 0


def test_hpa_scale_down_window_is_a_setting() -> None:
    assert policies.Hpa(SERVICE, "l4", 3.0).name == "hpa(target=3rps)"
    short = policies.Hpa(SERVICE, "l4", 3.0, down_window_s=60.0)
    assert short.name == "hpa(target=3rps,window=60s)"
    assert short.core.down_window_s == 60.0


def test_oracle_pays_startup_ahead_of_a_step_and_beats_static() -> None:
    arrivals = np.concatenate(
        [np.linspace(0, 600, 600, endpoint=False), np.linspace(600, 1200, 6000)]
    )
    trace = traces.Trace("step", arrivals, 1200.0)
    solution = oracle.solve(trace, SCEN, time_limit_s=10.0)
    capacity = {v.name: v.capacity_rps for v in SERVICE.variants}
    # 10 rps from minute 10: capacity is alive at least one startup (and provisioning) earlier.
    lead_slices = 5
    before = solution.replicas[10 - lead_slices]
    assert sum(capacity[v] * n for v, n in before.items()) >= 10.0
    static_usd = 2 * 0.8048 * 1200 / 3600  # two L4 for the peak, the whole time
    assert solution.cost_usd < static_usd
    assert solution.fluid_floor_usd <= solution.cost_usd


def test_oracle_burst_need_sees_a_one_second_burst_its_minute_hides() -> None:
    # 60 requests in one second of an otherwise idle minute: 1 rps over the minute, but served
    # within 0.5 s of waiting only at 60 / (1 + 0.5) = 40 rps.
    trace = traces.Trace("burst", np.concatenate([np.full(60, 30.2), [90.0]]), 120.0)
    need = oracle.burst_rps(trace, 2, 60.0, wait_s=0.5)
    assert need[0] == pytest.approx(40.0)
    # Windows reach back across the slice boundary: 31 s from the burst to second 60.
    assert need[1] == pytest.approx(60 / 31.5)
    # A steady 5 rps needs its rate (the 60 s window), not more.
    steady = traces.Trace("steady", np.arange(0, 120, 0.2), 120.0)
    assert oracle.burst_rps(steady, 2, 60.0, wait_s=0.5)[1] == pytest.approx(5.0, rel=0.05)


def test_planner_in_the_simulator_meets_the_slo_on_a_smooth_trace() -> None:
    trace = traces.synthetic(seed=3, duration_s=900.0, bursts=0, idle_gaps=0)
    policy = policies.Infscale(SERVICE, SCEN.domain_pools())
    policy.seed_state({"l4": 1}, {"l4": 1})
    sim = engine.Simulator(trace, SCEN, policy, initial={"l4": 1}, initial_nodes={"l4": 1})
    result = sim.run()
    assert result.slo_attainment >= 0.98
    assert result.cost_usd > 0
    assert len(policy.decision_s) == pytest.approx(900 / 15 + 1, abs=1)


def test_planner_adopts_the_warm_start_like_the_operator() -> None:
    # As controller.decide does after a restart: the stabilization window starts with what runs,
    # so the warm replicas are not dropped before the planner has watched a full window.
    policy = policies.Infscale(SERVICE, SCEN.domain_pools())
    policy.seed_state({"l4": 2}, {"l4": 2})
    assert policy.state.history[SERVICE.key]["l4"] == ((0.0, 2),)
    idle = model.Observation(rps=0.5, latency_s=0.1)
    view = engine.View(0.0, idle, 0, 0, [], {"l4": 2}, {"l4": 2}, 0, {"l4": 2})
    assert policy.decide(view).replicas["l4"] == 2


class _Watcher:
    """Holds one L4 replica and keeps every observed request rate."""

    name = "watcher"
    tick_s = 15.0

    def __init__(self) -> None:
        self.rates: dict[float, float | None] = {}

    def decide(self, view: engine.View) -> engine.Decision:
        self.rates[view.now_s] = view.observation.rps
        return engine.Decision({"l4": 1})


@pytest.mark.parametrize(("window_s", "served_at_150s"), [(30.0, False), (75.0, True)])
def test_rates_are_read_over_the_simulators_window(window_s: float, served_at_150s: bool) -> None:
    # 5 rps for 100 s, then nothing: 50 s later only a window longer than 50 s still sees it.
    trace = traces.Trace("step", np.linspace(0.0, 100.0, 500, endpoint=False), 300.0)
    watcher = _Watcher()
    sim = engine.Simulator(
        trace, SCEN, watcher, initial={"l4": 1}, initial_nodes={"l4": 1}, rate_window_s=window_s
    )
    sim.run()
    assert ((watcher.rates[150.0] or 0.0) > 0) is served_at_150s
    assert watcher.rates[60.0] == pytest.approx(5.0, rel=0.1)
    # A window longer than the latency's 60 s still counts all of its completions.
    assert watcher.rates[90.0] == pytest.approx(5.0, rel=0.1)


@pytest.mark.parametrize("gateway", [False, True])
def test_a_gateway_shows_the_arrivals_a_saturated_replica_cannot_complete(gateway: bool) -> None:
    # 60 rps at one L4 replica: the completions are capped by what it serves; a gateway's
    # count (the live bench's --arrival-rate-query) shows the demand.
    trace = traces.poisson(60.0, 120.0, seed=3)
    watcher = _Watcher()
    sim = engine.Simulator(
        trace, SCEN, watcher, initial={"l4": 1}, initial_nodes={"l4": 1}, gateway=gateway
    )
    sim.run()
    seen = watcher.rates[90.0] or 0.0
    assert (seen == pytest.approx(60.0, rel=0.15)) is gateway
    assert seen < 40.0 or gateway


def _routed_scenario(routing: str) -> scenario.Scenario:
    """A full model and a small one (a third of the price per rps, quality 0.8) on one CPU pool,
    under an average floor of 0.9."""
    variant = {"pool": "cpu", "capacity_rps": 5.0, "startup_s": 30}
    return scenario.Scenario.model_validate(
        {
            "name": "routed",
            "slo": {"latency_s": 1.0, "percentile": 95},
            "pools": [{"name": "cpu", "node": {"cpu": 6}, "usd_per_hour": 1.0, "max_nodes": 20,
                       "provisioning_s": 60}],
            "variants": [
                {**variant, "name": "full", "resources": {"cpu": 3}, "quality": 1.0,
                 "perf": {"slots": 2, "service_s": 0.25}},
                {**variant, "name": "small", "resources": {"cpu": 1}, "quality": 0.8,
                 "perf": {"slots": 2, "service_s": 0.25}},
            ],
            "service": {"quality_floor": 0.9, "quality_average": True, "routing": routing},
        }
    )  # fmt: skip


def test_a_weighted_route_in_the_simulator_serves_the_planned_mix_at_the_floor() -> None:
    trace = traces.poisson(20.0, 900.0, seed=2)
    served = {}
    for routing in ("weighted", "shared", "spread"):
        scen = _routed_scenario(routing)
        policy = policies.Infscale(scen.domain_service(), scen.domain_pools())
        start = {"full": 3, "small": 2}
        policy.seed_state(start, {"cpu": 2})
        sim = engine.Simulator(trace, scen, policy, initial=start, initial_nodes={"cpu": 2})
        result = sim.run()
        served[routing] = result.served
        assert result.slo_attainment >= 0.95
    weighted = served["weighted"]
    quality = (weighted["full"] * 1.0 + weighted.get("small", 0) * 0.8) / sum(weighted.values())
    assert weighted.get("small", 0) > 0  # the cheaper model takes its share
    assert quality >= 0.9 - 0.01  # and the route holds the floor (a sampled split)
    # One queue in front of both serves by free slots, not by the plan's split.
    assert served["shared"] != weighted
    # A plain Service gives each pod the same share: the two models run at one speed here, so
    # pods in the planned proportion are the planned split, and the floor holds there too.
    spread = served["spread"]
    assert spread.get("small", 0) > 0
    spread_quality = (spread["full"] + spread.get("small", 0) * 0.8) / sum(spread.values())
    assert spread_quality >= 0.9 - 0.01


def test_the_oracle_keeps_the_quality_floor_per_request_or_on_average() -> None:
    trace = traces.poisson(20.0, 600.0, seed=4)
    average = _routed_scenario("weighted")
    quality = {v.name: v.quality or 0.0 for v in average.variants}
    capacity = {v.name: v.capacity_rps for v in average.variants}
    solution = oracle.solve(trace, average, time_limit_s=10.0)
    for replicas in solution.replicas:
        total = sum(capacity[v] * n for v, n in replicas.items())
        mix = sum(capacity[v] * n * quality[v] for v, n in replicas.items()) / total
        assert mix >= 0.9 - 1e-9
    assert any(r.get("small", 0) for r in solution.replicas)  # the floor allows a share
    strict = average.model_copy(
        update={"service": average.service.model_copy(update={"quality_average": False})}
    )
    solution = oracle.solve(trace, strict, time_limit_s=10.0)
    assert all(r.get("small", 0) == 0 for r in solution.replicas)


def test_requests_that_met_the_slo_are_counted_by_the_minute_they_arrived_in() -> None:
    # One l4 replica under 3 rps for two minutes, then 30 rps: the overload's minute misses.
    rates = [3.0, 3.0, 30.0]
    times = np.concatenate([m * 60.0 + np.arange(0, 60.0, 1.0 / r) for m, r in enumerate(rates)])
    trace = traces.Trace("step", times, 180.0)
    nodes = {"l4": 1}
    sim = engine.Simulator(
        trace, SCEN, policies.Static("l4", 1, nodes), initial={"l4": 1}, initial_nodes=nodes
    )
    result = sim.run()
    met = result.met_by_minute
    assert met.shape == (3,)
    assert int(met.sum()) == round(result.slo_attainment * result.requests)
    assert met[0] == 180
    assert met[1] == 180
    assert met[2] < 0.5 * 1800
