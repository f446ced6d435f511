"""The simulator's queue model against queueing theory, and the trace readers."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

from infscale.sim import engine, policies, queueing, scenario, traces

TRACES = pathlib.Path(__file__).resolve().parents[3] / "shared" / "traces"


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


def test_readers_on_the_shared_traces() -> None:
    if not TRACES.exists():
        # CI always has ../shared beside the clone: there a missing trace is a failure.
        if os.environ.get("CI"):
            pytest.fail(f"shared traces missing at {TRACES}")
        pytest.skip(f"shared traces not present at {TRACES}")
    code = traces.read_azure_llm(TRACES / "azure-llm-2023" / "AzureLLMInferenceTrace_code.csv")
    assert code.arrivals_s.size == 8819
    assert 3400 < code.duration_s < 3500
    moon = traces.read_mooncake(TRACES / "mooncake-fast25" / "conversation_trace.jsonl", max_s=600)
    assert moon.arrivals_s.size > 1000
    assert np.all(np.diff(moon.arrivals_s) >= 0)
    func = traces.read_azure_functions(
        TRACES / "azure-functions-2019-sample" / "1000_inv.csv", mean_rps=2.0, minutes=30
    )
    assert func.duration_s == 1800
    assert func.arrivals_s.size / func.duration_s == pytest.approx(2.0, rel=0.1)
