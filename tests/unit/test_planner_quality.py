"""Variants that are different models: a quality floor per request or on average, kept by the
optimiser on every path, reported with what it costs; each variant's own model server."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from infscale.api import v1alpha1
from infscale.controller import convert, desired
from infscale.domain import model, optimize, planner, pricing, traffic, tuning
from tests.unit import planner_fixtures as fx

GPU = model.GPU
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "model-variants" / "assistant.yaml"


def assistant(floor: float | None = None, average: bool = False) -> model.ServiceSpec:
    """FP16 on an H100 GPU (quality 1.0), AWQ on an L4 (0.97), a smaller model on an L4 (0.90),
    a small model on CPU (0.80): the cheaper per rps, the lower the quality."""
    variants = (
        model.VariantSpec("fp16", "h100", model.Resources(16, 128, {GPU: 1}), 30.0, 90, 1.0),
        model.VariantSpec("awq", "l4", model.Resources(3, 12, {GPU: 1}), 8.0, 90, 0.97),
        model.VariantSpec("small", "l4", model.Resources(3, 12, {GPU: 1}), 14.0, 60, 0.90),
        model.VariantSpec("cpu", "cpu", model.Resources(1.5, 6), 0.9, 30, 0.80),
    )
    return model.ServiceSpec(
        "team-a",
        "assistant",
        variants,
        max_replicas=400,
        quality_floor=floor,
        quality_average=average,
    )


POOLS = {p.name: p for p in fx.pools(max_nodes=400)}


def demand(svc: model.ServiceSpec, rps: float) -> optimize.Demand:
    caps = {v.name: v.capacity_rps for v in svc.variants}
    return optimize.Demand(svc, rps, caps, 1, svc.max_replicas)


def cost(svc: model.ServiceSpec, replicas: dict[str, int]) -> float:
    return pricing.share_usd_per_hour(replicas, svc, POOLS)


def test_an_average_floor_mixes_cheaper_models_in_and_a_per_request_floor_keeps_them_out() -> None:
    cfg = tuning.PlannerSettings()
    plans = {}
    for name, svc in {
        "none": assistant(),
        "average": assistant(0.95, average=True),
        "per-request": assistant(0.95),
    }.items():
        svc_demand = demand(svc, 100.0)
        if name == "per-request":  # the planner's stage one bars them; the optimiser sees zeros
            barred = {v.name: 0.0 for v in svc.variants if svc.below_floor(v)}
            svc_demand = dataclasses.replace(
                svc_demand, capacity_rps={**svc_demand.capacity_rps, **barred}
            )
        alloc = optimize.optimize([svc_demand], POOLS, cfg)
        assert alloc.method == "milp"
        plans[name] = (svc, alloc.replicas[svc.key], svc_demand.capacity_rps)
    none, average, per_request = (plans[k] for k in ("none", "average", "per-request"))
    quality = {name: traffic.mix_quality(*plan) for name, plan in plans.items()}
    assert (quality["none"] or 1.0) < 0.95  # left alone, the cheap models take it all
    assert (quality["average"] or 0.0) >= 0.95 - 1e-9
    assert any(n and average[0].below_floor(average[0].variant(v)) for v, n in average[1].items())
    assert all(n == 0 or v in ("fp16", "awq") for v, n in per_request[1].items())
    for _, replicas, caps in plans.values():
        assert sum(n * caps[v] for v, n in replicas.items()) >= 100.0 - 1e-6
    assert cost(*none[:2]) < cost(*average[:2]) < cost(*per_request[:2])


@pytest.mark.parametrize(
    "cfg",
    [
        tuning.PlannerSettings(solver_max_pairs=0),  # the LP relaxation rounded, topped up
        tuning.PlannerSettings(use_solver=False),  # the greedy allocator alone
    ],
    ids=["lp-rounded", "greedy"],
)
def test_every_path_of_the_optimiser_keeps_an_average_floor(cfg: tuning.PlannerSettings) -> None:
    services = [dataclasses.replace(assistant(0.95, average=True), name=f"a{i}") for i in range(6)]
    demands = [demand(s, 20.0 + 37.0 * i) for i, s in enumerate(services)]
    alloc = optimize.optimize(demands, POOLS, cfg)
    assert alloc.method.startswith(("lp-rounded", "greedy"))
    for d in demands:
        replicas = alloc.replicas[d.service.key]
        assert sum(n * d.capacity_rps[v] for v, n in replicas.items()) >= d.demand_rps - 1e-6
        quality = traffic.mix_quality(d.service, replicas, d.capacity_rps)
        assert quality is not None
        assert quality >= 0.95 - 1e-9


def test_the_plan_reports_the_mix_quality_and_what_the_floor_costs() -> None:
    svc = assistant(0.95, average=True)
    plan, _ = planner.plan(
        [svc], list(POOLS.values()), {svc.key: fx.observe(100.0)}, model.PlannerState(), 0.0
    )
    assert plan.quality[svc.key] >= 0.95 - 1e-9
    assert plan.floor_usd_per_hour[svc.key] > 0  # the cheap models alone would cost less
    assert any("quality" in r and "without the floor" in r for r in plan.reasons[svc.key])


def test_a_raised_floor_moves_the_traffic_at_the_next_decision() -> None:
    low, high = assistant(0.85, average=True), assistant(0.97, average=True)
    obs = {low.key: fx.observe(100.0)}
    plan, state = planner.plan([low], list(POOLS.values()), obs, model.PlannerState(), 0.0)
    assert plan.quality[low.key] < 0.97
    before = plan.replicas[low.key]
    plan, state = planner.plan([high], list(POOLS.values()), obs, state, 15.0)
    assert plan.quality[high.key] >= 0.97 - 1e-9
    # The better models are ordered now; the window lets the others go once they are Ready.
    after = plan.replicas[high.key]
    assert after["fp16"] + after["awq"] > before["fp16"] + before["awq"]
    # A per-request floor takes the barred variants out and says why.
    strict = assistant(0.95)
    plan, _ = planner.plan([strict], list(POOLS.values()), obs, state, 30.0)
    assert plan.quality[strict.key] >= 0.97 - 1e-9  # fp16 and awq only
    assert any("per request" in r and "small 0.9" in r for r in plan.reasons[strict.key])
    # Its barred replicas go in the same cycle, not after the scale-down window: behind a
    # plain Service they would keep serving their share until then.
    running = state.last_replicas[low.key]
    assert running.get("small", 0) + running.get("cpu", 0) > 0
    assert plan.replicas[strict.key]["small"] == plan.replicas[strict.key]["cpu"] == 0
    assert any("under the per-request floor" in r for r in plan.reasons[strict.key])


def test_without_a_route_one_variant_serves_and_the_mix_goes_once_the_move_pays() -> None:
    # An average floor mixes cheap and good models when a route splits the traffic by weight;
    # behind a plain Service every pod gets the same share, so the plan keeps one model that
    # meets the floor alone, and says why.
    mixed = assistant(0.95, average=True)
    plain = dataclasses.replace(mixed, name="plain", routing="spread")
    obs = {s.key: fx.observe(100.0) for s in (mixed, plain)}
    plan, _ = planner.plan([mixed, plain], list(POOLS.values()), obs, model.PlannerState(), 0.0)
    assert sum(n > 0 for n in plan.replicas[mixed.key].values()) > 1
    serving = [v for v, n in plan.replicas[plain.key].items() if n > 0]
    assert len(serving) == 1
    assert not plain.below_floor(plain.variant(serving[0]))
    assert plan.replicas[plain.key][serving[0]] * 30.0 >= 100.0 or serving[0] != "fp16"
    assert any("plain Service spreads requests evenly" in r for r in plan.reasons[plain.key])
    # A plain Service running a dearer model keeps it until moving to the cheaper one has paid
    # for itself, then moves: never two models chosen at once.
    state = model.PlannerState(last_replicas={plain.key: {"fp16": 4, "awq": 0, "small": 0}})
    chosen = []
    for step in range(40):
        plan, state = planner.plan(
            [plain], list(POOLS.values()), {plain.key: fx.observe(100.0)}, state, 15.0 * step
        )
        reason = next(r for r in plan.reasons[plain.key] if "plain Service" in r)
        chosen.append(reason.split("(")[1].split(")")[0])
    assert chosen[0] == "fp16"
    assert chosen[-1] == "awq"  # 13 AWQ replicas on L4s cost less than 4 H100s
    assert chosen == sorted(chosen, key=lambda v: v != "fp16")  # one move, never back


def test_each_variant_runs_its_own_model_server() -> None:
    body = yaml.safe_load(EXAMPLE.read_text())
    spec = v1alpha1.InferenceService.model_validate(body).spec
    pool = v1alpha1.InferenceNodePoolSpec.model_validate(
        {
            "provider": {"kwok": {}},
            "node": {"capacity": {"cpu": "2", "memory": "8Gi"}},
            "usdPerHour": 0.08,
            "maxNodes": 5,
        }
    )
    by_name = {v.name: v for v in spec.variants}
    fp16 = desired.pod_template(spec, "assistant", by_name["fp16-h100"], pool)
    cpu = desired.pod_template(spec, "assistant", by_name["small-cpu"], pool)
    awq = desired.pod_template(spec, "assistant", by_name["awq-l4"], pool)
    server = spec.template.spec.containers[0].model_dump(by_alias=True, exclude_none=True)
    assert fp16["spec"]["containers"][0]["image"] == server["image"]
    assert fp16["spec"]["containers"][0]["args"] == server["args"]
    assert awq["spec"]["containers"][0]["image"] == server["image"]  # only the args change
    assert "--quantization" in awq["spec"]["containers"][0]["args"]
    container = cpu["spec"]["containers"][0]
    assert container["name"] == "server"
    assert container["ports"] == server["ports"]
    assert "cpu-release" in container["image"]
    assert {"name": "VLLM_CPU_KVCACHE_SPACE", "value": "2"} in container["env"]
    # The planner reads the scores and the floor from the same manifest.
    svc = convert.service_spec("team-a", "assistant", spec, 0)
    assert svc.quality_floor == 0.95
    assert svc.routing == "weighted"  # its route mixes the models; without it, one serves
    plain = convert.service_spec(
        "team-a", "assistant", spec.model_copy(update={"routing": None}), 0
    )
    assert plain.routing == "spread"
    assert svc.quality_average
    assert [v.quality for v in svc.variants] == [1.0, 0.97, 0.90, 0.80]


def test_route_weights_follow_the_ready_planned_capacity_and_keep_the_floor() -> None:
    svc = assistant()
    caps = {v.name: v.capacity_rps for v in svc.variants}
    # Ready replicas of the plan carry the traffic, in proportion to their capacity.
    assert traffic.weights(svc, {"fp16": 2, "small": 1}, {"fp16": 2, "small": 1}, caps) == {
        "fp16": 81,
        "awq": 0,
        "small": 19,
        "cpu": 0,
    }
    # A replica not Ready yet takes nothing; one the plan no longer has takes nothing either.
    weights = traffic.weights(svc, {"fp16": 2, "small": 1}, {"fp16": 1, "small": 1, "awq": 3}, caps)
    assert weights == {"fp16": 68, "awq": 0, "small": 32, "cpu": 0}
    # Nothing of the plan Ready: whatever may serve and is Ready; nothing Ready: the plan.
    assert traffic.weights(svc, {"fp16": 1}, {"awq": 2}, caps)["awq"] == 100
    assert traffic.weights(svc, {"fp16": 1}, {}, caps)["fp16"] == 100
    assert sum(traffic.weights(svc, {}, {}, caps).values()) == 0


def test_route_weights_never_fall_under_a_quality_floor() -> None:
    average = assistant(0.95, average=True)
    caps = {v.name: v.capacity_rps for v in average.variants}
    # The H100 replica is not Ready yet: the small model's share shrinks to hold the average.
    weights = traffic.weights(average, {"fp16": 2, "small": 4}, {"fp16": 1, "small": 4}, caps)
    assert weights == {"fp16": 50, "awq": 0, "small": 50, "cpu": 0}
    shares = {v: float(w) for v, w in weights.items()}
    assert traffic.mix_quality(average, {v: 1 for v in shares}, shares) == pytest.approx(0.95)
    # A per-request floor's barred variants have no usable capacity: never any weight.
    strict = assistant(0.95)
    barred = {**caps, "small": 0.0, "cpu": 0.0}
    weights = traffic.weights(strict, {"fp16": 1, "small": 4}, {"fp16": 1, "small": 4}, barred)
    assert weights == {"fp16": 100, "awq": 0, "small": 0, "cpu": 0}
    assert (
        traffic.weights(strict, {"fp16": 1, "small": 4}, {"fp16": 1, "small": 4}, caps) == weights
    )


def test_whole_percent_weights_keep_an_average_floor_through_rounding() -> None:
    # Shares at the floor exactly round to whole percents that may land under it: points move
    # from the lowest-quality variant to the highest until the mix is back at the floor.
    checked = 0
    for floor in (0.85, 0.9, 0.93, 0.95, 0.97):
        svc = assistant(floor, average=True)
        caps = {v.name: v.capacity_rps for v in svc.variants}
        for fp16 in range(1, 6):
            for small in range(0, 12, 3):
                for cpu in range(0, 40, 7):
                    ready = {"fp16": fp16, "awq": 1, "small": small, "cpu": cpu}
                    weights = traffic.weights(svc, ready, ready, caps)
                    shares = {v: float(w) for v, w in weights.items()}
                    mix = traffic.mix_quality(svc, {v: 1 for v in shares}, shares)
                    assert sum(weights.values()) == 100
                    assert mix is not None
                    assert mix >= floor - 1e-12, (floor, ready, weights)
                    checked += 1
    assert checked == 5 * 5 * 4 * 6


def test_the_plan_gives_routed_services_their_weights() -> None:
    routed = dataclasses.replace(assistant(0.95, average=True), routing="weighted")
    plain = dataclasses.replace(assistant(), name="plain")
    obs = {s.key: fx.observe(100.0) for s in (routed, plain)}
    plan, _ = planner.plan([routed, plain], list(POOLS.values()), obs, model.PlannerState(), 0.0)
    assert plain.key not in plan.weights
    # Nothing is Ready yet: the weights are where the capacity will be.
    weights = plan.weights[routed.key]
    assert sum(weights.values()) == 100
    assert all(weights[v] > 0 for v, n in plan.replicas[routed.key].items() if n)
