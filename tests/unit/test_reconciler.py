"""The reconciler against in-memory ports: Deployments, status, Events and no-op cycles."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infscale.api import v1alpha1
from infscale.controller import decisions, desired, service_reconciler, service_status
from infscale.labels import PAUSED_ANNOTATION, SPEC_HASH_ANNOTATION, VARIANT_LABEL
from infscale.ports import errors
from infscale.ports.metrics import ServiceMetrics, Signals
from tests import fakes
from tests.examples import documents, pools

NOW = "2026-11-22T06:00:00Z"


def chat() -> dict[str, Any]:
    body = copy.deepcopy(documents("InferenceService")[0])
    body["metadata"].update(uid="uid-1", generation=1)
    return body


def owned_from(cluster: fakes.FakeCluster, ready: bool = True) -> list[decisions.OwnedDeployment]:
    return [
        decisions.OwnedDeployment(
            name=d["metadata"]["name"],
            variant=d["metadata"]["labels"][VARIANT_LABEL],
            replicas=d["spec"]["replicas"],
            ready_replicas=d["spec"]["replicas"] if ready else 0,
            spec_hash=d["metadata"]["annotations"][SPEC_HASH_ANNOTATION],
        )
        for d in cluster.deployments.values()
    ]


def run(
    body: dict[str, Any],
    cluster: fakes.FakeCluster,
    pool_specs: dict[str, v1alpha1.InferenceNodePoolSpec] | None = None,
) -> service_reconciler.Outcome:
    ports = service_reconciler.Ports(workloads=cluster, status=cluster, events=cluster)
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    body = {**body, "status": cluster.statuses.get(key)}
    return service_reconciler.reconcile_service(
        body, pools() if pool_specs is None else pool_specs, owned_from(cluster), ports, NOW
    )


def test_creates_one_deployment_per_variant_pinned_to_its_pool() -> None:
    cluster = fakes.FakeCluster()
    run(chat(), cluster)
    h100 = cluster.deployments[("team-a", "chat-h100")]
    l4 = cluster.deployments[("team-a", "chat-l4")]
    # min=1 goes to the variant with the lowest cost per request/s: an H100 node holds 8 replicas
    # of 30 rps for $55.04/h (0.23 $/h per rps) against 6 rps for $0.80/h (0.13 $/h per rps).
    assert (h100["spec"]["replicas"], l4["spec"]["replicas"]) == (0, 1)
    pod = l4["spec"]["template"]
    assert pod["spec"]["nodeSelector"] == {"infscale.dev/pool": "gpu-l4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["spec"][
        "tolerations"
    ]
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["requests"] == resources["limits"]
    assert resources["limits"]["nvidia.com/gpu"] == "1"
    assert pod["metadata"]["labels"] == {
        "infscale.dev/service": "chat",
        "infscale.dev/variant": "l4",
    }
    owner = l4["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("InferenceService", "uid-1", True)
    assert ("Normal", "Scaled") in [(t, r) for t, r, _ in cluster.events]


def test_a_second_reconcile_with_nothing_changed_writes_nothing() -> None:
    cluster = fakes.FakeCluster()
    run(chat(), cluster)
    second = run(chat(), cluster)
    assert (second.applied, second.events, second.status_written) == ([], [], True)
    assert run(chat(), cluster).writes == 0


def test_status_explains_the_decision() -> None:
    cluster = fakes.FakeCluster()
    run(chat(), cluster)
    status = cluster.statuses[("team-a", "chat")]
    assert status["replicas"] == 1
    # One L4 replica fills a whole g6.xlarge node.
    assert status["usdPerHour"] == 0.8048
    assert status["selector"] == "infscale.dev/service=chat"
    assert status["observedGeneration"] == 1
    assert "replicas.min=1 on variant l4" in status["lastDecision"]["reason"]
    kinds = {c["type"]: c["status"] for c in status["conditions"]}
    assert kinds == {
        "Ready": "False",
        "MetricsAvailable": "Unknown",
        "SLOMet": "Unknown",
        "CapacityAvailable": "True",
    }
    run(chat(), cluster)  # the Deployments report ready now
    ready = next(
        c for c in cluster.statuses[("team-a", "chat")]["conditions"] if c["type"] == "Ready"
    )
    assert ready["status"] == "True"


def test_template_change_updates_every_deployment() -> None:
    cluster = fakes.FakeCluster()
    run(chat(), cluster)
    changed = chat()
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "vllm/vllm-openai:v0.12.0"
    outcome = run(changed, cluster)
    assert sorted(outcome.applied) == ["chat-h100", "chat-l4"]
    image = cluster.deployments[("team-a", "chat-l4")]["spec"]["template"]["spec"]["containers"][0]
    assert image["image"] == "vllm/vllm-openai:v0.12.0"


def test_removed_variant_loses_its_deployment() -> None:
    cluster = fakes.FakeCluster()
    run(chat(), cluster)
    changed = chat()
    changed["spec"]["variants"] = [v for v in changed["spec"]["variants"] if v["name"] != "h100"]
    outcome = run(changed, cluster)
    assert outcome.deleted == ["chat-h100"]
    assert ("team-a", "chat-h100") not in cluster.deployments


def test_scale_subresource_sets_the_total() -> None:
    cluster = fakes.FakeCluster()
    run(chat(), cluster)
    scaled = chat()
    scaled["spec"]["replicas"]["fixed"] = 3
    run(scaled, cluster)
    assert cluster.deployments[("team-a", "chat-l4")]["spec"]["replicas"] == 3
    assert cluster.statuses[("team-a", "chat")]["replicas"] == 3


@pytest.mark.parametrize("hold", ["recommend", "paused"])
def test_recommend_mode_and_pause_never_change_replicas(hold: str) -> None:
    cluster = fakes.FakeCluster()
    run(chat(), cluster)
    held = chat()
    if hold == "recommend":
        held["spec"]["mode"] = "Recommend"
    else:
        held["metadata"]["annotations"] = {PAUSED_ANNOTATION: "true"}
    held["spec"]["replicas"]["fixed"] = 5
    run(held, cluster)
    assert cluster.deployments[("team-a", "chat-l4")]["spec"]["replicas"] == 1
    status = cluster.statuses[("team-a", "chat")]
    assert "l4=5" in status["recommendation"]
    assert "held" in status["lastDecision"]["reason"]


def test_missing_node_pool_is_a_condition_not_a_crash() -> None:
    cluster = fakes.FakeCluster()
    only_h100 = {k: v for k, v in pools().items() if k == "gpu-h100"}
    run(chat(), cluster, only_h100)
    assert ("team-a", "chat-l4") not in cluster.deployments
    assert cluster.deployments[("team-a", "chat-h100")]["spec"]["replicas"] == 1
    capacity = next(
        c
        for c in cluster.statuses[("team-a", "chat")]["conditions"]
        if c["type"] == "CapacityAvailable"
    )
    assert (capacity["status"], capacity["reason"]) == ("False", "NodePoolNotFound")
    assert "gpu-l4" in capacity["message"]
    assert [r for t, r, _ in cluster.events if t == "Warning"] == ["NodePoolNotFound"]
    run(chat(), cluster, only_h100)
    assert [r for t, r, _ in cluster.events if t == "Warning"] == ["NodePoolNotFound"], "repeated"


def test_pods_the_scheduler_refuses_beyond_provisioning_time_are_reported() -> None:
    cluster = fakes.FakeCluster()
    ports = service_reconciler.Ports(workloads=cluster, status=cluster, events=cluster)
    provisioning = pools()["gpu-l4"].provisioning_seconds
    taint = "0/3 nodes are available: 3 node(s) had untolerated taint {x: }"

    def capacity(waited_s: float) -> dict[str, Any]:
        body = {**chat(), "status": cluster.statuses.get(("team-a", "chat"))}
        stuck = [decisions.StuckPod("l4", waited_s, taint)]
        service_reconciler.reconcile_service(
            body, pools(), owned_from(cluster), ports, NOW, None, stuck
        )
        conditions = cluster.statuses[("team-a", "chat")]["conditions"]
        return next(c for c in conditions if c["type"] == "CapacityAvailable")

    assert capacity(provisioning)["status"] == "True", "a node may still be on its way"
    assert capacity(2 * provisioning)["status"] == "True", "or behind the per-cycle limit"
    late = capacity(2 * provisioning + 31)
    assert (late["status"], late["reason"]) == ("False", "PodsUnschedulable")
    assert "variant l4" in late["message"]
    assert taint in late["message"]
    assert [r for t, r, _ in cluster.events if t == "Warning"] == ["PodsUnschedulable"]


class RejectingCluster(fakes.FakeCluster):
    """An API server that refuses the Deployment of one variant."""

    def apply_deployment(self, manifest: dict[str, Any]) -> None:
        if manifest["metadata"]["name"] == "chat-h100":
            raise errors.ClusterError("applying Deployment team-a/chat-h100: quota exceeded")
        super().apply_deployment(manifest)


def test_a_rejected_deployment_is_reported_and_the_other_variants_proceed() -> None:
    cluster = RejectingCluster()
    run(chat(), cluster)
    assert cluster.deployments[("team-a", "chat-l4")]["spec"]["replicas"] == 1
    ready = next(
        c for c in cluster.statuses[("team-a", "chat")]["conditions"] if c["type"] == "Ready"
    )
    assert (ready["status"], ready["reason"]) == ("False", "DeploymentRejected")
    assert "quota exceeded" in ready["message"]
    assert [r for t, r, _ in cluster.events if t == "Warning"] == ["DeploymentRejected"]
    run(chat(), cluster)
    assert [r for t, r, _ in cluster.events if t == "Warning"] == ["DeploymentRejected"], "repeated"


@pytest.mark.parametrize("asleep", [True, False])
def test_a_sleeping_service_says_so_instead_of_metrics_lost(asleep: bool) -> None:
    # At zero replicas no server reports: for a service without an arrival-rate query that is
    # sleep (the planner reads 0), not a metrics outage.
    body = copy.deepcopy(
        next(d for d in documents("InferenceService") if d["spec"]["replicas"]["min"] == 0)
    )
    body["metadata"].update(uid="uid-2", generation=1)
    cluster = fakes.FakeCluster()
    nothing = ServiceMetrics(Signals(), {}, {}, {}, unknown=("no series of requests_total",))
    zero = {v["name"]: 0 for v in body["spec"]["variants"]}
    decision = decisions.ServiceDecision(
        replicas=zero, reason="idle", recommended=zero, metrics=nothing, asleep=asleep
    )
    ports = service_reconciler.Ports(workloads=cluster, status=cluster, events=cluster)
    service_reconciler.reconcile_service(body, pools(), [], ports, NOW, decision=decision)
    status = cluster.statuses[(body["metadata"]["namespace"], body["metadata"]["name"])]
    metrics = next(c for c in status["conditions"] if c["type"] == "MetricsAvailable")
    if asleep:
        assert (metrics["status"], metrics["reason"]) == ("True", "Asleep")
        assert metrics["message"] == service_status.ASLEEP_METRICS
    else:
        assert (metrics["status"], metrics["reason"]) == ("False", "MetricsUnknown")
        assert metrics["message"] == "no series of requests_total"


def test_a_steady_service_writes_no_status_until_a_measurement_moves() -> None:
    # Measurements wander from cycle to cycle; the status is rewritten only when one moves
    # materially (or anything else changes), so a steady fleet costs no API write per cycle.
    cluster = fakes.FakeCluster()
    ports = service_reconciler.Ports(workloads=cluster, status=cluster, events=cluster)
    key = ("team-a", "chat")

    def cycle(rps: float, latency_s: float, reason: str) -> service_reconciler.Outcome:
        seen = ServiceMetrics(Signals(rps=rps, latency_s=latency_s, slo_attainment=1.0), {}, {}, {})
        decision = decisions.ServiceDecision(
            replicas={"h100": 0, "l4": 2}, reason=reason, recommended={"h100": 0, "l4": 2},
            metrics=seen,
        )  # fmt: skip
        body = {**chat(), "status": cluster.statuses.get(key)}
        return service_reconciler.reconcile_service(
            body, pools(), owned_from(cluster), ports, NOW, decision=decision
        )

    cycle(8.0, 0.20, "demand 8.00 rps")
    cycle(8.0, 0.20, "demand 8.00 rps")  # the Deployments turned Ready: a real change
    wandered = [cycle(8.0 + d, 0.20 + d / 100, f"demand {8 + d:.2f} rps") for d in (0.5, -0.4, 0.7)]
    assert [o.writes for o in wandered] == [0, 0, 0]
    assert cluster.statuses[key]["observedRps"] == 8.0
    assert cluster.statuses[key]["lastDecision"]["reason"] == "demand 8.00 rps"
    moved = cycle(12.0, 0.20, "demand 12.00 rps")
    assert moved.status_written
    assert "observedRps" in moved.status_changes  # what made the write, for the metric
    assert "conditions/SLOMet" not in moved.status_changes
    assert cluster.statuses[key]["observedRps"] == 12.0
    assert cluster.statuses[key]["lastDecision"]["reason"] == "demand 12.00 rps"
    slow = cycle(12.0, 0.9, "demand 12.00 rps")  # over the 0.5 s SLO: SLOMet turns False
    assert slow.status_written
    assert "conditions/SLOMet" in slow.status_changes
    assert slow.summary() == f"status ({', '.join(slow.status_changes)})"
    assert (
        next(c for c in cluster.statuses[key]["conditions"] if c["type"] == "SLOMet")["status"]
        == "False"
    )


def test_rates_are_rewritten_only_beyond_their_counting_noise() -> None:
    # A quiet service (0.2 requests/s: a dozen in a 60 s window) reads 0.07-0.33 from one cycle
    # to the next, its p95 and attainment wander too: none of that is worth a write.
    def settled(old: dict[str, Any], **new: float) -> dict[str, Any]:
        live = ("observedRps", "observedLatencySeconds", "sloAttainment")
        result = service_status.settled(old, {**old, **new}, 60.0)
        return {k: result[k] for k in live if k in result}

    old = {"observedRps": 0.2, "observedLatencySeconds": 0.14, "sloAttainment": 1.0}
    for rps, latency, attainment in [(0.07, 0.3, 0.917), (0.33, 0.12, 1.0)]:
        moved = {"observedRps": rps, "observedLatencySeconds": latency, "sloAttainment": attainment}
        assert settled(old, **moved) == old
    # Two readings a cycle apart are both noisy: 0.1 (six requests) then 0.35 (21) is no move.
    assert settled({"observedRps": 0.1}, observedRps=0.35) == {"observedRps": 0.1}
    assert settled(old, observedRps=1.5)["observedRps"] == 1.5
    busy = {"observedRps": 100.0}
    assert settled(busy, observedRps=110.0) == busy
    assert settled(busy, observedRps=140.0) == {"observedRps": 140.0}


def test_energy_figures_are_refreshed_with_the_rest_not_written_each_cycle() -> None:
    # What replicas draw moves with their load every cycle; alone it is worth no write.
    old = {
        "powerWatts": 116.0, "usdPerMillionRequests": 74.5, "kwhPerMillionRequests": 5.37,
        "gramsCo2PerMillionRequests": 2035.0,
        "variants": [{"name": "l4", "desiredReplicas": 2, "powerWatts": 116.0}],
    }  # fmt: skip
    moved = {
        "powerWatts": 121.0, "usdPerMillionRequests": 70.1, "kwhPerMillionRequests": 5.5,
        "gramsCo2PerMillionRequests": 2084.5,
        "variants": [{"name": "l4", "desiredReplicas": 2, "powerWatts": 121.0}],
    }  # fmt: skip
    assert service_status.settled(old, moved, 60.0) == {
        **old,
        "conditions": [],
        "recommendation": None,
    }
    unknown = {**moved, "powerWatts": None}
    assert service_status.settled(old, unknown, 60.0)["powerWatts"] is None  # became unknown
    scaled = {**moved, "variants": [{"name": "l4", "desiredReplicas": 3, "powerWatts": 121.0}]}
    assert service_status.settled(old, scaled, 60.0)["variants"] != old["variants"]
    # A tariff's evening hour: the cost per million requests falls by more than a quarter; that
    # alone is written, the figures that only wandered are not.
    cheaper = {**moved, "usdPerMillionRequests": 52.0}
    kept = service_status.settled(old, cheaper, 60.0)
    assert kept["usdPerMillionRequests"] == 52.0
    assert kept["powerWatts"] == old["powerWatts"]


def test_a_routed_service_gets_weighted_backends_and_an_event_when_the_weights_move() -> None:
    cluster = fakes.FakeCluster()
    body = chat()
    body["spec"]["routing"] = {"httpRoute": {"parentRefs": [{"name": "gw"}]}}
    ports = service_reconciler.Ports(
        workloads=cluster, status=cluster, events=cluster, routes=cluster
    )

    def reconcile(body: dict[str, Any], weights: dict[str, int]) -> None:
        decision = decisions.ServiceDecision(
            replicas={"h100": 1, "l4": 2},
            reason="the planner's why",
            recommended={},
            weights=weights,
        )
        with_status = {**body, "status": cluster.statuses.get(("team-a", "chat"))}
        service_reconciler.reconcile_service(
            with_status, pools(), owned_from(cluster), ports, NOW, decision
        )

    def backends() -> dict[str, int]:
        route = cluster.routes[("HTTPRoute", "chat")]
        return {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}

    reconcile(body, {"h100": 0, "l4": 100})
    assert backends() == {"chat-h100": 0, "chat-l4": 100}
    assert {("Service", "chat-h100"), ("Service", "chat-l4")} <= set(cluster.routes)
    assert "Rerouted" not in [reason for _, reason, _ in cluster.events]
    statuses = cluster.statuses[("team-a", "chat")]["variants"]
    assert [v["weight"] for v in statuses] == [0, 100]

    reconcile(body, {"h100": 60, "l4": 40})
    assert backends() == {"chat-h100": 60, "chat-l4": 40}
    [message] = [m for _, reason, m in cluster.events if reason == "Rerouted"]
    assert message == "route weights: h100 0 -> 60 %, l4 100 -> 40 % (the planner's why)"

    del body["spec"]["routing"]
    reconcile(body, {"h100": 60, "l4": 40})
    assert not cluster.routes


def test_slo_met_turns_only_on_a_clear_crossing() -> None:
    # A quiet service: a dozen requests a window. One slow request puts their p95 over the
    # threshold and their attainment at 11 of 12: within the noise, SLOMet keeps its state (a
    # turn would be a status write each time). Half of them slow is a clear miss.
    cluster = fakes.FakeCluster()
    ports = service_reconciler.Ports(workloads=cluster, status=cluster, events=cluster)
    key = ("team-a", "chat")

    def cycle(latency_s: float, attainment: float) -> service_reconciler.Outcome:
        seen = ServiceMetrics(Signals(0.2, latency_s, slo_attainment=attainment), {}, {}, {})
        decision = decisions.ServiceDecision(
            replicas={"h100": 0, "l4": 1}, reason="demand 0.20 rps", recommended={"l4": 1},
            metrics=seen,
        )  # fmt: skip
        body = {**chat(), "status": cluster.statuses.get(key)}
        return service_reconciler.reconcile_service(
            body, pools(), owned_from(cluster), ports, NOW, decision=decision
        )

    def slo_met() -> dict[str, Any]:
        return next(c for c in cluster.statuses[key]["conditions"] if c["type"] == "SLOMet")

    cycle(0.2, 1.0)
    cycle(0.2, 1.0)  # Ready
    assert slo_met()["status"] == "True"
    noisy = cycle(0.61, 11 / 12)
    assert noisy.writes == 0
    assert slo_met()["status"] == "True"
    clear = cycle(2.0, 0.5)
    assert clear.status_written
    assert slo_met()["status"] == "False"
    assert cycle(0.3, 11 / 12).writes == 0, "back within the noise: it stays False"
    assert slo_met()["status"] == "False"


def test_a_window_without_requests_keeps_a_met_slo_met() -> None:
    # A service busy one minute and idle the next: SLOMet stays True (no write), where it
    # turned Unknown and back every other cycle. A miss does not stand for the idle minutes.
    cluster = fakes.FakeCluster()
    ports = service_reconciler.Ports(workloads=cluster, status=cluster, events=cluster)
    key = ("team-a", "chat")

    def cycle(rps: float, latency_s: float | None) -> service_reconciler.Outcome:
        attained = None if latency_s is None else float(latency_s <= 0.5)
        seen = ServiceMetrics(Signals(rps, latency_s, slo_attainment=attained), {}, {}, {})
        decision = decisions.ServiceDecision(
            replicas={"h100": 0, "l4": 1}, reason="steady", recommended={"l4": 1}, metrics=seen
        )
        body = {**chat(), "status": cluster.statuses.get(key)}
        return service_reconciler.reconcile_service(
            body, pools(), owned_from(cluster), ports, NOW, decision=decision
        )

    def slo_met() -> str:
        conditions = cluster.statuses[key]["conditions"]
        return str(next(c for c in conditions if c["type"] == "SLOMet")["status"])

    cycle(0.2, 0.2)  # a quiet service: a dozen requests a minute, or none
    cycle(0.2, 0.2)  # Ready
    assert [cycle(0.0, None).writes, cycle(0.2, 0.2).writes, cycle(0.0, None).writes] == [0, 0, 0]
    assert slo_met() == "True"
    cycle(0.2, 2.0)  # a clear miss
    assert slo_met() == "False"
    cycle(0.0, None)
    assert slo_met() == "Unknown"


def test_status_shows_the_capacity_each_variant_is_planned_with() -> None:
    cluster = fakes.FakeCluster()
    decision = decisions.ServiceDecision(
        replicas={"l4": 1, "h100": 0},
        reason="steady",
        recommended={"l4": 1, "h100": 0},
        capacity_rps={"l4": 11.3912},
    )
    ports = service_reconciler.Ports(workloads=cluster, status=cluster, events=cluster)
    service_reconciler.reconcile_service(chat(), pools(), [], ports, NOW, decision=decision)
    variants = {v["name"]: v for v in cluster.statuses[("team-a", "chat")]["variants"]}
    assert variants["l4"]["capacityRps"] == 11.0  # two significant digits: learning moves ~2 %
    assert variants["h100"]["capacityRps"] is None  # none given: unknown, not zero


class RefusingCluster(fakes.FakeCluster):
    """Every Deployment is refused, as an API server refuses a name another owner holds."""

    def apply_deployment(self, manifest: dict[str, Any]) -> None:
        name = manifest["metadata"]["name"]
        raise errors.ClusterError(f"Deployment team-a/{name} already exists and is not ours")


def test_rejections_are_warned_once_not_every_cycle() -> None:
    cluster = RefusingCluster()
    for _ in range(3):
        run(chat(), cluster)
    warned = [m for t, r, m in cluster.events if r == "DeploymentRejected"]
    assert sorted(warned) == [  # both variants refused, each said once
        "Deployment team-a/chat-h100 already exists and is not ours",
        "Deployment team-a/chat-l4 already exists and is not ours",
    ]


def _routed(floor: float | None = None) -> dict[str, Any]:
    body = chat()
    body["spec"]["routing"] = {"httpRoute": {"parentRefs": [{"name": "gw"}]}}
    if floor is not None:
        body["spec"]["quality"] = {"floor": floor, "mode": "PerRequest"}
        body["spec"]["variants"][0]["quality"] = 1.0  # h100
        body["spec"]["variants"][1]["quality"] = 0.9  # l4
    return body


def _route_ports(cluster: fakes.FakeCluster) -> service_reconciler.Ports:
    return service_reconciler.Ports(
        workloads=cluster, status=cluster, events=cluster, routes=cluster
    )


def _reconcile_routed(
    cluster: fakes.FakeCluster,
    body: dict[str, Any],
    decision: decisions.ServiceDecision | None = None,
    pool_specs: dict[str, v1alpha1.InferenceNodePoolSpec] | None = None,
) -> None:
    with_status = {**body, "status": cluster.statuses.get(("team-a", "chat"))}
    service_reconciler.reconcile_service(
        with_status,
        pools() if pool_specs is None else pool_specs,
        owned_from(cluster),
        _route_ports(cluster),
        NOW,
        decision,
    )


def _backends(cluster: fakes.FakeCluster) -> dict[str, int]:
    route = cluster.routes[("HTTPRoute", "chat")]
    return {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}


def test_fixed_replicas_run_a_variant_that_keeps_the_quality_floor() -> None:
    # The L4 serves a request/s more cheaply, but is under the floor: replicas.fixed (kubectl
    # scale) and the start before any metric go to the H100, and the route has a backend.
    cluster = fakes.FakeCluster()
    body = _routed(floor=0.95)
    body["spec"]["replicas"]["fixed"] = 3
    _reconcile_routed(cluster, body)
    replicas = {k[1]: d["spec"]["replicas"] for k, d in cluster.deployments.items()}
    assert replicas == {"chat-h100": 3, "chat-l4": 0}
    assert _backends(cluster) == {"chat-h100": 100, "chat-l4": 0}


def test_a_held_service_routes_by_the_replicas_it_runs() -> None:
    # Recommend mode: the planner would move everything to the H100, but the L4's two replicas
    # are what runs; the route keeps sending them the traffic.
    cluster = fakes.FakeCluster()
    body = _routed()
    body["spec"]["replicas"]["fixed"] = 2
    _reconcile_routed(cluster, body)
    assert _backends(cluster) == {"chat-h100": 0, "chat-l4": 100}
    held = _routed()
    held["spec"]["mode"] = "Recommend"
    decision = decisions.ServiceDecision(
        replicas={"h100": 1, "l4": 0}, reason="the planner's why", recommended={"h100": 1},
        weights={"h100": 100, "l4": 0},
    )  # fmt: skip
    _reconcile_routed(cluster, held, decision)
    assert cluster.deployments[("team-a", "chat-l4")]["spec"]["replicas"] == 2
    assert _backends(cluster) == {"chat-h100": 0, "chat-l4": 100}
    assert "Rerouted" not in [reason for _, reason, _ in cluster.events]


class _RouteRefused(fakes.FakeCluster):
    """An API server without the Gateway API CRDs: every HTTPRoute apply fails."""

    def apply(self, manifest: dict[str, Any]) -> None:
        if manifest["kind"] == "HTTPRoute":
            raise errors.ClusterError("applying HTTPRoute team-a/chat: 404 Not Found", status=404)
        super().apply(manifest)


def test_a_refused_route_is_no_reroute_and_its_status_keeps_the_weights_it_has() -> None:
    cluster = _RouteRefused()
    body = _routed()
    move = decisions.ServiceDecision(
        replicas={"h100": 1, "l4": 2}, reason="why", recommended={}, weights={"h100": 60, "l4": 40}
    )
    cluster.statuses[("team-a", "chat")] = {
        "variants": [{"name": "h100", "weight": 0}, {"name": "l4", "weight": 100}]
    }
    _reconcile_routed(cluster, body, move)
    reasons = [reason for _, reason, _ in cluster.events]
    assert "Rerouted" not in reasons
    assert "RouteRejected" in reasons
    status = cluster.statuses[("team-a", "chat")]
    assert [v.get("weight") for v in status["variants"]] == [0, 100]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"


def test_a_variant_that_never_ran_loses_its_service_when_it_leaves_the_spec() -> None:
    cluster = fakes.FakeCluster()
    only_l4 = {k: v for k, v in pools().items() if k == "gpu-l4"}  # no H100 pool: no Deployment
    _reconcile_routed(cluster, _routed(), pool_specs=only_l4)
    assert ("Service", "chat-h100") in cluster.routes
    assert ("team-a", "chat-h100") not in cluster.deployments
    without = _routed()
    without["spec"]["variants"] = [v for v in without["spec"]["variants"] if v["name"] != "h100"]
    _reconcile_routed(cluster, without, pool_specs=only_l4)
    assert ("Service", "chat-h100") not in cluster.routes
    assert ("Service", "chat-l4") in cluster.routes


def test_a_variants_resources_replace_the_templates() -> None:
    # A CPU variant beside a template that asks for a GPU: its pods must fit a CPU node.
    cluster = fakes.FakeCluster()
    body = chat()
    body["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "limits": {"nvidia.com/gpu": "1", "memory": "64Gi"}
    }
    body["spec"]["variants"][1]["resources"] = {"cpu": "1500m", "memory": "6Gi"}
    run(body, cluster)
    pod = cluster.deployments[("team-a", "chat-l4")]["spec"]["template"]["spec"]
    resources = pod["containers"][0]["resources"]
    assert resources == {
        "requests": {"cpu": "1500m", "memory": "6Gi"},
        "limits": {"cpu": "1500m", "memory": "6Gi"},
    }


def test_fixed_replicas_of_an_interactive_service_stay_off_spot() -> None:
    # A spot L4 at a third of the price serves a request/s most cheaply; kubectl scale to 4 puts
    # the interactive service's replicas on demand (one reclaim would take all of them), a batch
    # service's on spot.
    spot = pools()["gpu-l4"].model_copy(
        update={"capacity_type": v1alpha1.CapacityType.SPOT, "usd_per_hour": 0.28}
    )
    with_spot = {**pools(), "gpu-l4-spot": spot}

    def placed(slo: dict[str, Any]) -> dict[str, int]:
        body = chat()
        body["spec"]["slo"] = slo
        body["spec"]["replicas"]["fixed"] = 4
        l4 = next(v for v in body["spec"]["variants"] if v["name"] == "l4")
        body["spec"]["variants"].append({**l4, "name": "l4-spot", "nodePool": "gpu-l4-spot"})
        spec = v1alpha1.InferenceService.model_validate(body).spec
        split, _ = service_reconciler.baseline_replicas(spec, with_spot)
        return {k: v for k, v in split.items() if v}

    assert placed(chat()["spec"]["slo"]) == {"l4": 4}
    batch = {"class": "Batch", "metric": "e2e", "deadlineSeconds": 3600, "percentile": 99.9}
    assert placed(batch) == {"l4-spot": 4}


def test_the_status_is_the_energy_meter_and_is_written_as_it_grows_by_a_quarter() -> None:
    # 120 W for an hour on top of 1 kWh: 1.12 kWh, worth no write alone (12 %); three hours on
    # it is 1.36 (36 %): written, and the meter goes on from there (a restart reads it back).
    old = {"powerWatts": 120.0, "energyKwh": 1.0, "energyAccruedAt": "2026-11-22T05:00:00Z"}
    hour = desired.accrued_energy(old, "2026-11-22T06:00:00Z")
    assert hour == {"energyKwh": 1.12, "energyAccruedAt": "2026-11-22T06:00:00Z"}
    assert service_status.settled(old, {**old, **hour}, 60.0) == {
        **old, "variants": [], "conditions": [], "recommendation": None,
    }  # fmt: skip
    later = desired.accrued_energy(old, "2026-11-22T08:00:00Z")
    assert service_status.settled(old, {**old, **later}, 60.0)["energyKwh"] == 1.36
    # A new meter starts at 0; an unknown draw adds nothing.
    assert desired.accrued_energy({}, NOW) == {"energyKwh": 0.0, "energyAccruedAt": NOW}
    unknown = {**old, "powerWatts": None}
    assert desired.accrued_energy(unknown, "2026-11-22T08:00:00Z")["energyKwh"] == 1.0


def test_a_variants_unknown_fields_as_the_api_server_stores_them_are_no_change() -> None:
    # The API server prunes a variant's null fields: a status read back lacks them, and the
    # one built again has them as None. That is no change (it was a write every cycle).
    stored = {"variants": [{"name": "small", "desiredReplicas": 1, "readyReplicas": 1}]}
    built = {
        "variants": [
            {"name": "small", "desiredReplicas": 1, "readyReplicas": 1, "powerWatts": None,
             "capacityRps": None}
        ]
    }  # fmt: skip
    assert service_status.changed_fields(stored, built) == ()
    moved = {"variants": [{**built["variants"][0], "readyReplicas": 0}]}
    assert service_status.changed_fields(stored, moved) == ("variants",)
