"""Batch services (spec.slo.class: Batch): the queue is the demand, drained before the deadline,
on spot if it is cheaper, at zero when nothing waits, and never before interactive work."""

from __future__ import annotations

import dataclasses
import pathlib

import yaml

from infscale.api import v1alpha1
from infscale.controller import convert
from infscale.domain import model, optimize, planner, tuning

GPU = model.GPU
ONE_GPU = model.Resources(1, 1, {GPU: 1})
SHAPE = model.Resources(4, 16, {GPU: 1})


def _pools(on_demand_max: int = 10) -> list[model.PoolSpec]:
    """One-GPU nodes on demand ($0.80/h) and on spot ($0.30/h), 60 s to provision."""
    return [
        model.PoolSpec("od", SHAPE, 0.80, 0, on_demand_max, 60),
        model.PoolSpec("spot", SHAPE, 0.30, 0, 10, 60, spot=True),
    ]


def _service(name: str, deadline_s: float | None, pools: tuple[str, ...]) -> model.ServiceSpec:
    """6 rps a replica on each pool, starting in 30 s; batch when it has a deadline."""
    variants = tuple(model.VariantSpec(p, p, ONE_GPU, 6.0, 30) for p in pools)
    return model.ServiceSpec(
        "ns",
        name,
        variants,
        min_replicas=0,
        slo_latency_s=deadline_s or 0.5,
        deadline_s=deadline_s,
        spot_max_share=1.0 if deadline_s else 0.5,
    )


def _observe(rps: float, queued: float) -> model.Observation:
    return model.Observation(rps=rps, latency_s=1.0 if rps else None, queued=queued)


def test_the_queue_drains_within_half_the_deadline_on_spot_and_the_rate_holds() -> None:
    batch = _service("docs", 1200.0, ("od", "spot"))
    cfg = tuning.PlannerSettings()
    usable = 6.0 * cfg.target_utilization
    # Nothing queued or arriving: zero replicas.
    plan, state = planner.plan(
        [batch], _pools(), {batch.key: _observe(0.0, 0.0)}, model.PlannerState(), 0.0, cfg
    )
    assert plan.replicas[batch.key] == {"od": 0, "spot": 0}
    # 15 minutes on, 1,800 requests queued (nothing served yet: no replica), a 1,200 s deadline,
    # a 90 s lead: drained within 510 s. Waiting work is not an idle service.
    plan, state = planner.plan(
        [batch], _pools(), {batch.key: _observe(0.0, 1800.0)}, state, 900.0, cfg
    )
    want = -(-1800.0 / 510.0 // usable)  # ceil
    assert plan.replicas[batch.key] == {"od": 0, "spot": want}
    assert any("batch: 1800 request(s) queued, drained within 510 s" in r
               for r in plan.reasons[batch.key])  # fmt: skip
    # Half the queue is left: the rate it chose is kept while requests wait (a drain sized anew
    # would slow as the queue shrinks and never finish).
    plan, state = planner.plan(
        [batch], _pools(), {batch.key: _observe(5.0, 900.0)}, state, 1200.0, cfg
    )
    assert plan.replicas[batch.key] == {"od": 0, "spot": want}
    # Nothing queued or arriving: zero at once, without the idle timeout or the scale-down window.
    plan, _ = planner.plan([batch], _pools(), {batch.key: _observe(0.0, 0.0)}, state, 1230.0, cfg)
    assert plan.replicas[batch.key] == {"od": 0, "spot": 0}
    assert any("scale to zero" in r for r in plan.reasons[batch.key])


def test_a_batch_service_at_zero_wakes_on_arrivals_when_no_server_reports_a_queue() -> None:
    # At zero replicas no server exports the queue gauge; a gateway's count says 5 rps arrive.
    batch = _service("docs", 1200.0, ("od", "spot"))
    asleep = model.PlannerState(last_replicas={batch.key: {"od": 0, "spot": 0}})
    woken = model.Observation(rps=5.0, queued=None)
    plan, _ = planner.plan([batch], _pools(), {batch.key: woken}, asleep, 60.0)
    assert plan.replicas[batch.key]["spot"] >= 1
    assert any("queue unknown" in r for r in plan.reasons[batch.key])


def _contended(
    interactive: model.ServiceSpec, batch: model.ServiceSpec, batch_rps: float, per_replica: float
) -> tuple[dict[str, model.PoolSpec], list[optimize.Demand]]:
    """Three on-demand nodes; the interactive service needs two (12 rps at 6 a replica), the
    batch one ``batch_rps`` at ``per_replica``."""
    pools = {p.name: p for p in _pools(on_demand_max=3) if p.name == "od"}
    return pools, [
        optimize.Demand(interactive, 12.0, {"od": 6.0}, 0, 100),
        optimize.Demand(batch, batch_rps, {"od": per_replica}, 0, 100),
    ]


def test_batch_work_yields_the_pool_to_interactive_work() -> None:
    # Three on-demand nodes and no spot: an interactive service needing two of them and a batch
    # queue wanting all three. The interactive service is covered; batch takes what is left.
    interactive = _service("chat", None, ("od",))
    batch = _service("docs", 1200.0, ("od",))
    pools, demands = _contended(interactive, batch, 18.0, 6.0)
    alloc = optimize.optimize(demands, pools, tuning.PlannerSettings())
    assert alloc.replicas[interactive.key] == {"od": 2}
    assert alloc.replicas[batch.key] == {"od": 1}
    assert alloc.shortfall_rps[interactive.key] == 0.0
    assert alloc.shortfall_rps[batch.key] == 12.0
    # Without the priority either could have yielded (the same penalty per rps): the greedy
    # fallback serves interactive services first too.
    greedy = optimize.optimize(demands, pools, tuning.PlannerSettings(use_solver=False))
    assert greedy.replicas[interactive.key] == {"od": 2}


def test_dense_batch_work_yields_the_pool_too() -> None:
    # An embedding batch at 1,000 rps a replica beside chat at 6: a node's worth of batch rps is
    # many interactive ones, yet the interactive service is covered first.
    interactive = _service("chat", None, ("od",))
    embed = dataclasses.replace(
        _service("embed", 1200.0, ("od",)),
        variants=(model.VariantSpec("od", "od", ONE_GPU, 1000.0, 30),),
    )
    pools, demands = _contended(interactive, embed, 5000.0, 1000.0)
    alloc = optimize.optimize(demands, pools, tuning.PlannerSettings())
    assert alloc.replicas[interactive.key] == {"od": 2}
    assert alloc.replicas[embed.key] == {"od": 1}


def test_batch_replicas_leave_at_once_when_interactive_work_needs_their_nodes() -> None:
    # Three nodes, all running batch; chat's load comes: the batch replicas go in the same
    # cycle (no scale-down window: batch waits), so the plan fits the pool.
    interactive = _service("chat", None, ("od",))
    batch = _service("docs", 3600.0, ("od",))
    pools = [p for p in _pools(on_demand_max=3) if p.name == "od"]
    state = model.PlannerState()
    observed = {interactive.key: _observe(0.0, 0.0), batch.key: _observe(15.0, 50_000.0)}
    plan, state = planner.plan([interactive, batch], pools, observed, state, 0.0)
    assert plan.replicas[batch.key]["od"] >= 2
    assert plan.replicas[interactive.key]["od"] + plan.replicas[batch.key]["od"] == 3
    observed[interactive.key] = _observe(10.0, 0.0)
    plan, state = planner.plan([interactive, batch], pools, observed, state, 30.0)
    assert plan.replicas[interactive.key]["od"] + plan.replicas[batch.key]["od"] <= 3
    assert plan.replicas[interactive.key]["od"] >= 2
    assert any("batch work waits" in r for r in plan.reasons[batch.key])


def test_the_batch_example_converts_to_a_deadline_and_all_of_it_may_run_on_spot() -> None:
    path = pathlib.Path(__file__).parents[2] / "examples/spot-batch/index-documents.yaml"
    body = next(d for d in yaml.safe_load_all(path.read_text()) if d["kind"] == "InferenceService")
    spec = v1alpha1.InferenceServiceSpec.model_validate(body["spec"])
    svc = convert.service_spec("team-c", "index-documents", spec, 0)
    assert (svc.batch, svc.deadline_s, svc.slo_latency_s) == (True, 3600.0, 3600.0)
    assert (svc.spot_max_share, svc.slo_percentile) == (1.0, 99.9)
    interactive = spec.model_copy(update={"slo": v1alpha1.Slo(threshold_seconds=0.5)})
    chat = convert.service_spec("team-c", "chat", interactive, 0)
    assert (chat.batch, chat.spot_max_share) == (False, 0.5)


def test_batch_work_fills_room_already_paid_for_before_a_cheaper_node() -> None:
    # Two-GPU on-demand nodes: the interactive service needs one GPU, so a node is bought and
    # one GPU is idle. One batch replica goes there for nothing, not on a new spot node.
    two_gpu = model.Resources(8, 32, {GPU: 2})
    pools = {
        "od": model.PoolSpec("od", two_gpu, 1.60, 0, 10, 60),
        "spot": model.PoolSpec("spot", SHAPE, 0.30, 0, 10, 60, spot=True),
    }
    interactive = _service("chat", None, ("od",))
    batch = _service("docs", 1200.0, ("od", "spot"))
    demands = [
        optimize.Demand(interactive, 6.0, {"od": 6.0}, 0, 100),
        optimize.Demand(batch, 6.0, {"od": 6.0, "spot": 6.0}, 0, 100),
    ]
    alloc = optimize.optimize(demands, pools, tuning.PlannerSettings())
    assert alloc.replicas[batch.key] == {"od": 1, "spot": 0}
    assert alloc.nodes == {"od": 1, "spot": 0}


def _on_premises(night_usd_per_kwh: float) -> list[model.PoolSpec]:
    """One-GPU nodes at $0.80/h drawing 400 W at full power, electricity billed beyond: $0.40
    per kWh, and ``night_usd_per_kwh`` from 02:00 to 06:00 UTC (a power.schedule)."""
    by_hour = tuple((night_usd_per_kwh if 2 <= h < 6 else 0.40, None) for h in range(24))
    power = model.Power(100.0, 400.0, 0.40, None, by_hour)
    return [model.PoolSpec("od", SHAPE, 0.80, 0, 10, 60, power=power)]


def test_batch_work_waits_for_a_cheaper_hour_only_while_its_deadline_allows() -> None:
    cfg = tuning.PlannerSettings()
    midnight = 86400.0 * 20000  # 00:00 UTC
    six_hours = _service("docs", 6 * 3600.0, ("od",))
    # At midnight 12,000 requests wait; from 02:00 a node's electricity costs $0.02/h, not $0.16:
    # 15 % less per request. Started then, the oldest still has its lead and its usual drain
    # (half the deadline) before its 6 h deadline: it waits, at zero replicas.
    plan, state = planner.plan(
        [six_hours], _on_premises(0.05), {six_hours.key: _observe(0.0, 12000.0)},
        model.PlannerState(), midnight, cfg,
    )  # fmt: skip
    assert plan.replicas[six_hours.key] == {"od": 0}
    assert any("held for 02:00 UTC" in r for r in plan.reasons[six_hours.key])
    assert state.queued_since_s[six_hours.key] == midnight
    # An hour on, the queue unknown (no server runs): still waiting since midnight.
    plan, state = planner.plan(
        [six_hours], _on_premises(0.05), {six_hours.key: model.Observation(rps=0.0)}, state,
        midnight + 3600, cfg,
    )  # fmt: skip
    assert state.queued_since_s[six_hours.key] == midnight
    # At 02:00 no hour ahead is cheaper: the queue drains.
    plan, state = planner.plan(
        [six_hours], _on_premises(0.05), {six_hours.key: _observe(0.0, 12000.0)}, state,
        midnight + 7200, cfg,
    )  # fmt: skip
    assert plan.replicas[six_hours.key]["od"] > 0
    assert not any("held for" in r for r in plan.reasons[six_hours.key])
    # A one-hour deadline cannot wait two hours; a night 4 % cheaper is not worth waiting for.
    for service, night in ((_service("docs", 3600.0, ("od",)), 0.05), (six_hours, 0.32)):
        plan, _ = planner.plan(
            [service], _on_premises(night), {service.key: _observe(0.0, 12000.0)},
            model.PlannerState(), midnight, cfg,
        )  # fmt: skip
        assert plan.replicas[service.key]["od"] > 0, (service.deadline_s, night)
