"""Energy: replicas' draw at their load, per-million-request figures, and unknown kept unknown."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest

from infscale.api import v1alpha1
from infscale.controller import convert, power_figures
from infscale.domain import energy, model
from infscale.sim import engine, policies, scenario, traces

L4_NODE = model.Resources(cpu=4, memory_gib=16, extended={"nvidia.com/gpu": 1})
L4_POWER = model.Power(idle_w=24.0, max_w=92.0, usd_per_kwh=0.10, g_co2_per_kwh=400.0)
POOLS = {
    "l4": model.PoolSpec("l4", L4_NODE, 0.8048, max_nodes=10, power=L4_POWER),
    "cpu": model.PoolSpec("cpu", model.Resources(cpu=2, memory_gib=8), 0.0816, max_nodes=10),
}
SERVICE = model.ServiceSpec(
    namespace="team-a",
    name="chat",
    slo_latency_s=0.5,
    variants=(
        model.VariantSpec("l4", "l4", model.Resources(cpu=3, memory_gib=12,
                          extended={"nvidia.com/gpu": 1}), capacity_rps=6.0),
        model.VariantSpec("cpu", "cpu", model.Resources(cpu=1, memory_gib=2), capacity_rps=1.0),
    ),
)  # fmt: skip


def test_a_replica_draws_its_share_of_a_node_linearly_in_load() -> None:
    l4 = SERVICE.variants[0]
    assert energy.replica_watts(l4, POOLS["l4"], 0.0) == pytest.approx(24.0)
    assert energy.replica_watts(l4, POOLS["l4"], 0.5) == pytest.approx(58.0)
    assert energy.replica_watts(l4, POOLS["l4"], 3.0) == pytest.approx(92.0)  # capped at full


def test_figures_per_million_requests() -> None:
    # Two L4 replicas serving 6 rps: load 0.5 each, 58 W each.
    drawn = energy.service_energy(SERVICE, POOLS, {"l4": 2}, {"l4": 6.0}, 6.0, 1.6096)
    assert drawn.watts == pytest.approx(116.0)
    hours = 1e6 / 6.0 / 3600.0  # a million requests at 6 rps
    assert drawn.kwh_per_million == pytest.approx(0.116 * hours)
    assert drawn.g_co2_per_million == pytest.approx(0.116 * 400.0 * hours)
    assert drawn.usd_per_million == pytest.approx((1.6096 + 0.116 * 0.10) * hours)


def test_unknown_stays_unknown_and_nothing_ready_draws_nothing() -> None:
    unmeasured = energy.service_energy(SERVICE, POOLS, {"l4": 2}, {"l4": None}, None, 1.6)
    assert unmeasured.watts is None
    assert unmeasured.kwh_per_million is None
    assert unmeasured.usd_per_million is None
    idle = energy.service_energy(SERVICE, POOLS, {}, {}, 0.0, 0.0)
    assert idle.watts == 0.0
    assert idle.kwh_per_million is None  # no requests: nothing per request
    # A pool without a carbon intensity: energy is known, emissions are not.
    cpu_pool = {**POOLS, "cpu": model.PoolSpec(
        "cpu", model.Resources(cpu=2, memory_gib=8), 0.0816, max_nodes=10,
        power=energy.cpu_node_power(2, 8))}  # fmt: skip
    mixed = energy.service_energy(
        SERVICE, cpu_pool, {"l4": 1, "cpu": 1}, {"l4": 3.0, "cpu": 0.5}, 3.5, 0.85
    )
    assert mixed.watts is not None
    assert mixed.kwh_per_million is not None
    assert mixed.g_co2_per_million is None


def test_a_pool_draws_idle_power_where_no_replica_runs() -> None:
    l4 = SERVICE.variants[0]
    assert energy.pool_watts(POOLS["l4"], 3, [(l4, 2, 116.0)]) == pytest.approx(116.0 + 24.0)
    assert energy.pool_watts(POOLS["cpu"], 3, []) is None  # power unknown


def test_node_power_defaults_cpu_from_cloud_carbon_footprint_and_gpu_unknown() -> None:
    cpu = energy.cpu_node_power(2, 8)
    assert (cpu.idle_w, cpu.max_w) == pytest.approx((2 * 0.74 + 8 * 0.392, 2 * 3.5 + 8 * 0.392))
    shape = {"cpu": "4", "memory": "16Gi"}
    plain = v1alpha1.InferenceNodePoolSpec.model_validate(
        {"provider": {"kwok": {}}, "node": {"capacity": shape}, "usdPerHour": 1, "maxNodes": 2}
    )
    gpu = plain.model_copy(
        update={"node": v1alpha1.NodeShape(capacity={**shape, "nvidia.com/gpu": "1"})}
    )
    declared = gpu.model_copy(
        update={"power": v1alpha1.NodePower(idle_watts=24, max_watts=92, grams_co2_per_kwh=380)}
    )
    assert convert.pool_spec("cpu", plain).power == energy.cpu_node_power(4, 16)
    assert convert.pool_spec("gpu", gpu).power is None
    assert convert.pool_spec("gpu", declared).power == model.Power(24, 92, 0.0, 380)
    assert math.isclose(energy.cpu_node_power(4, 16).max_w, 4 * 3.5 + 16 * 0.392)


def test_the_simulator_integrates_idle_nodes_and_busy_slots() -> None:
    # One 1-GPU node (100 W idle, 200 W full) holding one single-slot replica, busy half the time
    # (1 rps of 0.5 s requests) for 20 minutes: about 100 W + 0.5 x 100 W.
    scen = scenario.Scenario.model_validate(
        {
            "name": "energy",
            "pools": [{"name": "gpu", "node": {"cpu": 4, "memory_gib": 16,
                                                "extended": {"nvidia.com/gpu": 1}},
                       "usd_per_hour": 1.0, "power": {"idle_w": 100, "max_w": 200,
                                                      "g_co2_per_kwh": 400}}],
            "variants": [{"name": "v", "pool": "gpu", "capacity_rps": 1.5,
                          "resources": {"extended": {"nvidia.com/gpu": 1}},
                          "perf": {"slots": 1, "service_s": 0.5, "cv": 0.1}}],
        }
    )  # fmt: skip
    trace = traces.poisson(1.0, 1200.0, seed=4)
    result = engine.Simulator(
        trace, scen, policies.Static("v", 1, {"gpu": 1}), initial={"v": 1},
        initial_nodes={"gpu": 1},
    ).run()  # fmt: skip
    busy = trace.arrivals_s.size * 0.5 / 1200.0  # the share of the time the slot serves
    assert result.energy_kwh is not None
    assert result.energy_kwh == pytest.approx((100 + 100 * busy) * 1200 / 3.6e6, rel=0.05)
    assert result.co2_g == pytest.approx(result.energy_kwh * 400)
    unknown = scen.model_copy(update={"pools": [scen.pools[0].model_copy(update={"power": None})]})
    blind = engine.Simulator(
        trace, unknown, policies.Static("v", 1, {"gpu": 1}), initial={"v": 1},
        initial_nodes={"gpu": 1},
    ).run()  # fmt: skip
    assert blind.energy_kwh is None  # a GPU pool without power: unknown, not zero


def test_a_power_schedule_sets_the_price_and_carbon_of_each_hour() -> None:
    # A night tariff from 22:00 to 06:00 UTC and a sunnier grid from 10:00 to 16:00.
    power = v1alpha1.NodePower.model_validate(
        {
            "idleWatts": 24, "maxWatts": 92, "usdPerKwh": 0.30, "gramsCo2PerKwh": 400,
            "schedule": [
                {"fromHour": 6, "usdPerKwh": 0.30},
                {"fromHour": 10, "gramsCo2PerKwh": 150},
                {"fromHour": 16, "gramsCo2PerKwh": 400},
                {"fromHour": 22, "usdPerKwh": 0.12},
            ],
        }
    )  # fmt: skip
    assert power.at_hour(None) == (0.30, 400)
    assert power.at_hour(3) == (0.12, 400)  # since 22:00 the day before
    assert power.at_hour(6) == (0.30, 400)
    assert power.at_hour(12) == (0.30, 150)
    assert power.at_hour(23) == (0.12, 400)
    spec = v1alpha1.InferenceNodePoolSpec.model_validate(
        {"provider": {"kwok": {}}, "node": {"capacity": {"cpu": "4", "memory": "16Gi",
         "nvidia.com/gpu": "1"}}, "usdPerHour": 0.8048, "maxNodes": 4,
         "power": power.model_dump(by_alias=True)}
    )  # fmt: skip
    noon = convert.pool_spec("l4", spec, convert.hour_utc("2026-12-05T12:30:00Z"))
    night = convert.pool_spec("l4", spec, convert.hour_utc(3 * 3600.0 + 86400.0 * 20000))
    assert noon.power is not None
    assert night.power is not None
    assert (noon.power.usd_per_kwh, noon.power.g_co2_per_kwh) == (0.30, 150)
    assert (night.power.usd_per_kwh, night.power.g_co2_per_kwh) == (0.12, 400)


class _Grid:
    """A metrics source that answers the grid's expressions (the power.*Query fields)."""

    def __init__(self, answers: dict[str, tuple[float | None, str | None]]) -> None:
        self.answers = answers
        self.asked: list[list[str]] = []

    def values(self, expressions: Sequence[str]) -> dict[str, tuple[float | None, str | None]]:
        self.asked.append(list(expressions))
        return {e: self.answers.get(e, (None, "query returned no series")) for e in expressions}


def _pool(power: dict[str, Any] | None) -> v1alpha1.InferenceNodePoolSpec:
    body: dict[str, Any] = {
        "provider": {"kwok": {}},
        "node": {"capacity": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}},
        "usdPerHour": 0.8048,
        "maxNodes": 4,
    }
    if power is not None:
        body["power"] = power
    return v1alpha1.InferenceNodePoolSpec.model_validate(body)


def test_a_query_sets_the_figures_and_a_silent_one_falls_back_to_the_schedule() -> None:
    pools = {
        "spot-tariff": _pool(
            {"idleWatts": 24, "maxWatts": 92, "usdPerKwh": 0.30, "gramsCo2PerKwh": 400,
             "usdPerKwhQuery": "grid_usd_per_kwh", "gramsCo2PerKwhQuery": "grid_g_co2",
             "schedule": [{"fromHour": 0, "gramsCo2PerKwh": 150}]}
        ),
        "cloud": _pool(None),
    }  # fmt: skip
    grid = _Grid({"grid_usd_per_kwh": (0.07, None)})
    resolved, figures = power_figures.resolve(pools, grid, hour_utc=12)
    assert grid.asked == [["grid_usd_per_kwh", "grid_g_co2"]], "one request for every pool"
    tariff = figures["spot-tariff"]
    assert (tariff.usd_per_kwh, tariff.grams_co2_per_kwh) == (0.07, 150)
    assert "usdPerKwh from its query" in tariff.source
    assert "gramsCo2PerKwhQuery: query returned no series; the schedule figure applies" in (
        tariff.source
    )
    # Every reader after the cycle's start sees the figures as constants: the planner too.
    spec = convert.pool_spec("spot-tariff", resolved["spot-tariff"], 3)
    assert spec.power is not None
    assert (spec.power.usd_per_kwh, spec.power.g_co2_per_kwh) == (0.07, 150)
    # The hours ahead (what batch work may wait for): the query's answer holds all day, the
    # schedule's other figure stays.
    assert set(spec.power.by_hour) == {(0.07, 150)}
    assert "cloud" not in figures
    assert resolved["cloud"] is pools["cloud"]
    # Without Prometheus nothing is asked, and the status says why the query is not used.
    _, alone = power_figures.resolve(pools, None, hour_utc=12)
    assert alone["spot-tariff"].usd_per_kwh == 0.30
    assert "no Prometheus to ask" in alone["spot-tariff"].source


def test_a_price_query_that_fails_keeps_its_last_answer_not_a_free_constant() -> None:
    # No usdPerKwh declared (0: included in the node price): a failing feed must not make
    # electricity free from one cycle to the next.
    pools = {"tariff": _pool({"idleWatts": 24, "maxWatts": 92, "usdPerKwhQuery": "grid_usd"})}
    answered: power_figures.Answered = {}
    _, first = power_figures.resolve(pools, _Grid({"grid_usd": (0.45, None)}), 12, answered)
    assert first["tariff"].usd_per_kwh == 0.45
    resolved, down = power_figures.resolve(pools, _Grid({}), 13, answered)
    assert down["tariff"].usd_per_kwh == 0.45
    assert "usdPerKwhQuery: query returned no series; its last answer 0.45 holds" in (
        down["tariff"].source
    )
    spec = convert.pool_spec("tariff", resolved["tariff"], 3)
    assert spec.power is not None
    assert spec.power.usd_per_kwh == 0.45
    # Before any answer, the declared figure applies, and the status says so.
    _, never = power_figures.resolve(pools, _Grid({}), 13, {})
    assert "the constant figure applies" in never["tariff"].source
