"""One cost model: status.usdPerHour and the baseline variant come from the planner's own costs."""

from __future__ import annotations

import copy
import math
import weakref
from typing import Any

import pytest

from infscale.api import quantity, v1alpha1
from infscale.controller import convert, decisions, service_reconciler
from infscale.domain import model, planner, pricing
from tests import examples, fakes

NOW = "2026-11-22T06:00:00Z"
# Requests nothing: the old status code counted one per node (the cheapest per rps here), the
# planner's model says it fits no node.
BARE = {"name": "bare", "nodePool": "cpu", "capacityRps": 100}


def _embed(*variants: dict[str, Any], fixed: int | None = None) -> dict[str, Any]:
    """The example embed service (cpu and l4 variants) with ``variants`` added."""
    services = examples.documents("InferenceService")
    body = copy.deepcopy(next(d for d in services if d["metadata"]["name"] == "embed"))
    body["metadata"].update(uid="uid-1", generation=1)
    body["spec"]["variants"] += list(variants)
    if fixed is not None:
        body["spec"]["replicas"]["fixed"] = fixed
    return body


def _status(body: dict[str, Any], plan: dict[str, int] | None = None) -> dict[str, Any]:
    """The status the reconciler computes for ``plan`` (None: its baseline)."""
    cluster = fakes.FakeCluster()
    ports = service_reconciler.Ports(workloads=cluster, status=cluster, events=cluster)
    decision = None
    if plan is not None:
        decision = decisions.ServiceDecision(replicas=plan, reason="test", recommended=plan)
    outcome = service_reconciler.reconcile_service(
        body, examples.pools(), [], ports, NOW, decision=decision
    )
    return outcome.status


def _planner_usd(body: dict[str, Any], replicas: dict[str, int]) -> float:
    spec = v1alpha1.InferenceService.model_validate(body).spec
    service = convert.service_spec("team-b", "embed", spec, 0)
    return pricing.share_usd_per_hour(replicas, service, convert.pool_specs(examples.pools()))


def test_status_cost_is_the_planners_cost_for_the_planners_plan() -> None:
    body = _embed(BARE)
    spec = v1alpha1.InferenceService.model_validate(body).spec
    service = convert.service_spec("team-b", "embed", spec, 0)
    pools = list(convert.pool_specs(examples.pools()).values())
    seen = {service.key: model.Observation(rps=150.0, latency_s=0.05)}
    plan, _ = planner.plan([service], pools, seen, model.PlannerState(), 0.0)
    replicas = dict(plan.replicas[service.key])
    assert replicas["bare"] == 0  # never placed: it fits no node
    assert sum(replicas.values()) > 0
    usd = _planner_usd(body, replicas)
    assert _status(body, replicas)["usdPerHour"] == round(usd, 4) > 0


@pytest.mark.parametrize(
    "plan",
    [
        {"cpu": 3, "l4": 1, "bare": 0},
        {"cpu": 0, "l4": 2, "bare": 0},
        {"cpu": 1, "l4": 0, "bare": 2},  # the planner's cost is inf: no number in status
        {"cpu": 0, "l4": 0, "bare": 0},
    ],
)
def test_status_cost_equals_the_planners_cost_or_is_absent(plan: dict[str, int]) -> None:
    body = _embed(BARE)
    usd = _planner_usd(body, plan)
    expected = round(usd, 4) if math.isfinite(usd) else None
    assert _status(body, plan)["usdPerHour"] == expected


def test_baseline_skips_a_variant_that_requests_nothing() -> None:
    # Counted one per node, "bare" would serve a request/s for $0.0008/h, the cheapest; by the
    # planner's model it fits no node, so the baseline goes to l4 ($0.8048/h for 200 rps).
    body = _embed(BARE, fixed=2)
    status = _status(body)
    desired = {v["name"]: v["desiredReplicas"] for v in status["variants"]}
    assert desired == {"cpu": 0, "l4": 2, "bare": 0}
    assert status["usdPerHour"] == round(_planner_usd(body, desired), 4) == 1.6096


def test_baseline_on_a_variant_that_requests_nothing_when_nothing_else_runs() -> None:
    body = _embed(BARE, fixed=2)
    body["spec"]["variants"] = [BARE]
    status = _status(body)
    assert [(v["name"], v["desiredReplicas"]) for v in status["variants"]] == [("bare", 2)]
    assert status["usdPerHour"] is None  # the model gives it no finite cost


def test_a_node_fills_up_by_pod_count_before_by_cpu() -> None:
    # 1,000 replicas of 0.1 core fit 64-core nodes 640 a node by CPU, but a node takes 250 pods:
    # four nodes, not two (two left 500 replicas Pending in the scale benchmark).
    node = quantity.node_resources({"cpu": "64", "memory": "256Gi", "pods": "250"})
    replica = quantity.pod_resources({"cpu": "100m", "memory": "256Mi"})
    assert replica.fits_per_node(node) == 250
    assert pricing.nodes_needed([(replica, 1000)], node) == 4
    assert quantity.node_resources({"cpu": "64"}).extended["pods"] == quantity.MAX_PODS_DEFAULT


def test_the_fits_memo_keeps_one_entry_per_shape_and_no_spec_object_alive() -> None:
    # Each cycle parses every spec anew: a memo keyed by identity kept each cycle's objects
    # alive (tens of MiB at 1,000 services), one keyed by shape holds a handful of numbers.
    node = quantity.node_resources({"cpu": "64", "memory": "256Gi", "pods": "250"})
    first = quantity.pod_resources({"cpu": "100m", "memory": "256Mi"})
    alive = weakref.ref(first)
    assert first.fits_per_node(node) == 250
    entries = len(model._FITS)
    del first
    for _ in range(1000):  # a thousand cycles' worth of the same spec, parsed again
        assert quantity.pod_resources({"cpu": "100m", "memory": "256Mi"}).fits_per_node(node) == 250
    assert alive() is None
    assert len(model._FITS) == entries
