"""One reconcile pass over in-memory ports: each service read once, held or invalid as it says."""

from __future__ import annotations

from typing import Any

from infscale.controller import (
    cycle,
    decide,
    pool_reconciler,
    runtime,
    service_reconciler,
    service_view,
    telemetry,
    wiring,
)
from infscale.controller.settings import OperatorSettings
from infscale.labels import PAUSED_ANNOTATION
from tests import fakes
from tests.unit.test_reconciler import chat


class NoNodes:
    def pods(self) -> list[dict[str, Any]]:
        return []

    def nodes(self) -> list[dict[str, Any]]:
        return []


class NoDeployments:
    def list_owned(self) -> list[dict[str, Any]]:
        return []


def run(settings: OperatorSettings, *bodies: dict[str, Any]) -> fakes.FakeCluster:
    cluster = fakes.FakeCluster()
    adapters: Any = wiring.Adapters(
        deployments=NoDeployments(),
        service_ports=service_reconciler.Ports(workloads=cluster, status=cluster, events=cluster),
        nodes=NoNodes(),
        pool_ports=pool_reconciler.PoolPorts(
            nodes=NoNodes(), providers={}, status=cluster, events=cluster
        ),
        decider=decide.Decider(None),
    )
    cycle.Cycle(settings, adapters).run(list(bodies), {})
    return cluster


def test_a_paused_service_and_an_invalid_one_are_each_reported() -> None:
    paused = chat()
    paused["metadata"].setdefault("annotations", {})[PAUSED_ANNOTATION] = "true"
    invalid = chat()
    invalid["metadata"]["name"] = "broken"
    invalid["spec"]["variants"] = "not a list"
    statuses = run(OperatorSettings(), paused, invalid).statuses
    held = statuses[("team-a", "chat")]
    assert (
        held["lastDecision"]["reason"] == f"paused by annotation {PAUSED_ANNOTATION}; replicas held"
    )
    assert held["recommendation"]
    assert [c["reason"] for c in statuses[("team-a", "broken")]["conditions"]] == ["InvalidSpec"]


def test_status_writes_are_counted_by_the_field_that_made_them() -> None:
    def written(field: str) -> float:
        value = telemetry.REGISTRY.get_sample_value(
            "infscale_status_writes_total", {"field": field}
        )
        return value or 0.0

    before = {field: written(field) for field in ("conditions/Ready", "variants")}
    invalid = chat()
    invalid["spec"]["variants"] = "not a list"
    run(OperatorSettings(), chat(), invalid)
    assert written("conditions/Ready") == before["conditions/Ready"] + 2  # a first status each
    assert written("variants") == before["variants"] + 1  # the valid one lists its variants


def test_services_outside_the_managed_namespaces_are_left_alone() -> None:
    assert run(OperatorSettings(namespaces=("elsewhere",)), chat()).statuses == {}


def test_the_hold_reason_is_worked_out_once() -> None:
    body = chat()
    view = service_view.read(body)
    assert isinstance(view, service_view.ServiceView)
    assert view.hold is None
    assert not view.held
    body["metadata"].setdefault("annotations", {})[PAUSED_ANNOTATION] = "true"
    paused = service_view.read(body)
    assert isinstance(paused, service_view.ServiceView)
    assert paused.held


def test_the_indexes_hold_detached_copies_without_managed_fields() -> None:
    body = {"metadata": {"name": "chat", "managedFields": [{"manager": "infscale"}]}, "spec": [1]}
    copied = runtime.plain(body)
    assert copied["metadata"] == {"name": "chat"}
    copied["spec"].append(2)
    assert body["spec"] == [1]
    assert body["metadata"]["managedFields"] == [{"manager": "infscale"}]


def test_another_writer_of_replicas_is_read_from_the_managed_fields() -> None:
    def owned(*entries: dict[str, Any]) -> str | None:
        metadata = {"name": "chat-l4", "labels": {}, "managedFields": list(entries)}
        return cycle._owned({"metadata": metadata, "spec": {"replicas": 4}}).replicas_set_by

    ours = {"manager": "infscale", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
    status = {"manager": "kube-controller-manager", "subresource": "status",
              "fieldsV1": {"f:status": {"f:replicas": {}}}}  # fmt: skip
    hpa = {"manager": "kube-controller-manager", "subresource": "scale",
           "fieldsV1": {"f:spec": {"f:replicas": {}}}}  # fmt: skip
    assert owned(ours, status) is None
    assert owned(status, hpa) == "kube-controller-manager through /scale"
