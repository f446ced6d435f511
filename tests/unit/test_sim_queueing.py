"""The simulator's queue model against queueing theory, and the trace readers."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from infscale.sim import engine, policies, queueing, scenario, servers, traces

FUNCTIONS_DAY = (
    pathlib.Path(__file__).resolve().parents[1]
    / "data"
    / "azure-functions-2019-total-per-minute.csv"
)


def _mmc_scenario(service_s: float) -> scenario.Scenario:
    return scenario.Scenario.model_validate(
        {
            "name": "mmc",
            "slo": {"latency_s": 1.0, "percentile": 95},
            "pools": [{"name": "p", "node": {"cpu": 1}, "usd_per_hour": 1.0, "max_nodes": 50}],
            "variants": [
                {
                    "name": "v",
                    "pool": "p",
                    "resources": {"cpu": 1},
                    "capacity_rps": 1.0,
                    "perf": {"slots": 1, "service_s": service_s, "cv": 1.0},
                }
            ],
        }
    )


def test_erlang_c_known_values() -> None:
    assert queueing.erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert queueing.erlang_c(2, 1.0) == pytest.approx(1.0 / 3.0)
    assert queueing.mm_c_mean_wait_s(0.5, 1.0, 1) == pytest.approx(1.0)


@pytest.mark.parametrize(("servers", "rho"), [(1, 0.6), (4, 0.75)])
def test_fixed_replicas_match_erlang_c(servers: int, rho: float) -> None:
    service_s = 0.5
    rate = rho * servers / service_s
    trace = traces.poisson(rate, 4000.0, seed=7)
    scen = _mmc_scenario(service_s)
    policy = policies.Static("v", servers, {"p": servers})
    sim = engine.Simulator(
        trace,
        scen,
        policy,
        seed=3,
        drain_s=60.0,
        initial={"v": servers},
        initial_nodes={"p": servers},
    )
    result = sim.run()
    latency = np.asarray(sim.latencies_s)
    assert latency.size == trace.arrivals_s.size  # all served within the drain period
    mean_wait = float(np.mean(latency)) - service_s  # sojourn minus the mean service time
    expected = queueing.mm_c_mean_wait_s(rate, service_s, servers)
    assert result.requests == trace.arrivals_s.size
    assert mean_wait == pytest.approx(expected, rel=0.15, abs=0.02)
    # Cost: the nodes for the whole trace, billed per second (the drain is not billed).
    assert result.cost_usd == pytest.approx(servers * 4000.0 / 3600.0, rel=0.01)


def test_synthetic_is_seeded_and_has_idle_gaps() -> None:
    a = traces.synthetic(seed=1, duration_s=1800.0)
    b = traces.synthetic(seed=1, duration_s=1800.0)
    assert np.array_equal(a.arrivals_s, b.arrivals_s)
    rates = a.rate_per_bin(60.0)
    assert rates.min() < 0.5 * rates.mean() < rates.max()


def test_readers_on_each_public_format(tmp_path: pathlib.Path) -> None:
    code = tmp_path / "azure-llm.csv"
    code.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:50.9951690,396,109\n"
        "2023-11-16 18:16:01.0000000,879,25\n"
    )
    llm = traces.read_azure_llm(code)
    assert llm.arrivals_s.tolist() == pytest.approx([0.68059, 4.995169, 15.0])
    moon = tmp_path / "mooncake.jsonl"
    moon.write_text("".join(f'{{"timestamp": {t}, "input_length": 10}}\n' for t in (0, 0, 3000)))
    spread = traces.read_mooncake(moon)
    assert spread.arrivals_s.size == 3
    assert np.all(np.diff(spread.arrivals_s) >= 0)
    func = traces.read_azure_functions(FUNCTIONS_DAY, mean_rps=2.0, minutes=30)
    assert func.duration_s == 1800
    assert func.arrivals_s.size / func.duration_s == pytest.approx(2.0, rel=0.1)


def test_a_plain_service_gives_every_ready_pod_the_same_share_fast_or_slow() -> None:
    fast, slow = servers.Perf(slots=8, service_s=0.05, cv=0.5), servers.Perf(1, 0.5, 0.5)
    spread = servers.router(["fast", "slow"], seed=5, routing="spread")
    spread.set_replicas({"f-0": ("fast", fast), "s-0": ("slow", slow), "s-1": ("slow", slow)})
    spread.weights = {"fast": 100}  # a plain Service has no weights: ignored
    done = []
    for i in range(3000):
        done += spread.arrive(i * 0.2)
    done += spread.advance(1000.0)
    assert len(done) == 3000
    assert sum(c.variant == "slow" for c in done) / 3000 == pytest.approx(2 / 3, abs=0.03)


def test_a_weighted_route_splits_requests_by_its_weights_and_holds_a_variant_without_replicas() -> (
    None
):
    fast = servers.Perf(slots=8, service_s=0.05, cv=0.5)
    route = servers.WeightedQueues(["a", "b"], seed=3)
    route.set_replicas({"a-0": ("a", fast), "b-0": ("b", fast)})
    route.weights = {"a": 75, "b": 25}
    done = []
    for i in range(4000):
        done += route.arrive(i * 0.01)
    done += route.advance(100.0)
    share_a = sum(c.variant == "a" for c in done) / len(done)
    assert len(done) == 4000
    assert share_a == pytest.approx(0.75, abs=0.03)
    # Weight on a variant with no Ready replica: its requests wait (a shared queue would have
    # sent them to the other variant's free slots).
    route.set_replicas({"a-0": ("a", fast)})
    route.weights = {"a": 50, "b": 50}
    for i in range(200):
        route.arrive(200.0 + i * 0.01)
    route.advance(300.0)
    assert route.waiting > 50
    route.set_replicas({"a-0": ("a", fast), "b-1": ("b", fast)})
    assert len(route.advance(400.0)) > 50
    assert route.waiting == 0
    # No weights yet: by Ready throughput.
    route.weights = {}
    route.set_replicas({"a-0": ("a", fast), "b-2": ("b", servers.Perf(24, 0.05, 0.5))})
    later = []
    for i in range(4000):
        later += route.arrive(500.0 + i * 0.01)
    later += route.advance(600.0)
    assert sum(c.variant == "b" for c in later) / len(later) == pytest.approx(0.75, abs=0.03)


def test_requests_to_a_plain_service_without_pods_wait_for_whichever_variant_comes() -> None:
    # Nothing Ready: the gateway holds the requests; the first pods to be Ready, of the second
    # variant, serve them all (none is left in a queue of a variant that never runs).
    perf = servers.Perf(slots=4, service_s=0.1, cv=0.5)
    spread = servers.router(["a", "b"], seed=2, routing="spread")
    for i in range(20):
        spread.arrive(i * 0.1)
    assert spread.waiting == 20
    spread.advance(5.0)
    spread.set_replicas({"b-0": ("b", perf)})
    done = spread.advance(30.0)
    assert (len(done), spread.waiting) == (20, 0)
    assert {c.variant for c in done} == {"b"}
    assert min(c.latency_s for c in done) >= 3.0  # they waited for the pod
