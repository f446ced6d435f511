"""The clusterapi provider's arithmetic against an in-memory MachineDeployment: mark before
lowering replicas, never decrement twice, never buy twice while machines provision."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from kubernetes import client

from infscale.adapters import pools_clusterapi as capi
from infscale.api import v1alpha1
from infscale.ports import errors

SPEC = v1alpha1.InferenceNodePoolSpec.model_validate(
    {
        "provider": {"clusterapi": {"machineDeployment": {"namespace": "capi", "name": "md"}}},
        "node": {"capacity": {"cpu": "8", "memory": "32Gi"}, "labels": {"pool": "p"}},
        "usdPerHour": 1.0,
        "maxNodes": 6,
    }
)


@dataclasses.dataclass
class Response:
    data: bytes


@dataclasses.dataclass
class FakeCustomObjects:
    """A MachineDeployment's scale and its Machines, with optimistic concurrency on the scale."""

    replicas: int = 0
    version: int = 1
    machines: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    writes: list[str] = dataclasses.field(default_factory=list)

    def add(self, name: str, node: str | None, **annotations: str) -> None:
        self.machines[name] = {
            "metadata": {"name": name, "annotations": annotations},
            "status": {"nodeRef": {"name": node}} if node else {},
        }

    def get_namespaced_custom_object_scale(self, *args: Any, **_: Any) -> Response:
        scale = {
            "metadata": {"resourceVersion": str(self.version)},
            "spec": {"replicas": self.replicas},
            "status": {"replicas": len(self.machines), "selector": "md=md"},
        }
        return Response(json.dumps(scale).encode())

    def list_namespaced_custom_object(self, *args: Any, label_selector: str, **_: Any) -> Response:
        assert label_selector == "md=md"
        return Response(json.dumps({"items": list(self.machines.values())}).encode())

    def patch_namespaced_custom_object_scale(self, *args: Any) -> None:
        body = args[-1]
        if body["metadata"]["resourceVersion"] != str(self.version):
            raise client.ApiException(status=409, reason="Conflict")
        self.replicas = body["spec"]["replicas"]
        self.version += 1
        self.writes.append(f"replicas {self.replicas}")

    def patch_namespaced_custom_object(self, *args: Any) -> None:
        name, body = args[-2], args[-1]
        self.machines[name]["metadata"]["annotations"].update(body["metadata"]["annotations"])
        self.writes.append(f"mark {name}")


def provider(fake: FakeCustomObjects) -> capi.ClusterApiPools:
    pools = capi.ClusterApiPools(client.ApiClient())
    pools._custom = fake  # type: ignore[assignment]
    return pools


def three_nodes() -> FakeCustomObjects:
    fake = FakeCustomObjects(replicas=3)
    for i in range(3):
        fake.add(f"m{i}", f"n{i}")
    return fake


def test_the_empty_nodes_machine_is_marked_before_replicas_drop_once() -> None:
    fake = three_nodes()
    pools = provider(fake)
    pools.delete_node("p", SPEC, "n1")
    assert fake.writes == ["mark m1", "replicas 2"]
    marked = fake.machines["m1"]["metadata"]["annotations"]
    assert marked == {capi.DELETE_MACHINE_ANNOTATION: capi.MARK}
    # Asked again (the node is still there until Cluster API removes it): nothing more.
    pools.delete_node("p", SPEC, "n1")
    assert fake.writes == ["mark m1", "replicas 2"]


def test_a_restart_between_mark_and_decrement_decrements_once() -> None:
    fake = three_nodes()
    fake.add("m1", "n1", **{capi.DELETE_MACHINE_ANNOTATION: capi.MARK})
    pools = provider(fake)
    pools.delete_node("p", SPEC, "n1")
    pools.delete_node("p", SPEC, "n1")
    assert fake.writes == ["replicas 2"]


def test_a_machine_cluster_api_is_deleting_needs_nothing() -> None:
    fake = three_nodes()
    fake.replicas = 2
    fake.machines["m1"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    provider(fake).delete_node("p", SPEC, "n1")
    assert fake.writes == []


def test_a_machine_marked_by_someone_else_stops_the_decrement() -> None:
    fake = three_nodes()
    fake.add("m2", "n2", **{capi.DELETE_MACHINE_ANNOTATION: "yes"})
    with pytest.raises(errors.ClusterError, match="marked for deletion by someone else"):
        provider(fake).delete_node("p", SPEC, "n1")
    assert fake.writes == ["mark m1"]
    assert fake.replicas == 3


def test_a_concurrent_change_of_the_scale_is_a_conflict_not_a_lost_update() -> None:
    fake = three_nodes()
    original = fake.get_namespaced_custom_object_scale

    def stale(*args: Any, **kwargs: Any) -> Response:
        response = original(*args, **kwargs)
        fake.version += 1  # someone writes the MachineDeployment right after the read
        return response

    fake.get_namespaced_custom_object_scale = stale  # type: ignore[method-assign]
    with pytest.raises(errors.ClusterError) as conflict:
        provider(fake).create_nodes("p", SPEC, 1)
    assert conflict.value.status == 409
    assert fake.replicas == 3


def test_a_node_without_a_machine_is_an_error() -> None:
    with pytest.raises(errors.ClusterError, match="not a Machine"):
        provider(three_nodes()).delete_node("p", SPEC, "elsewhere")


def test_machines_without_a_listed_node_are_pending() -> None:
    fake = three_nodes()
    pools = provider(fake)
    listed = {"n0", "n1", "n2"}
    assert pools.pending_nodes("p", SPEC, listed) == 0
    assert pools.create_nodes("p", SPEC, 2) == ["capi/md#4", "capi/md#5"]
    assert fake.replicas == 5
    # Not yet created by the MachineSet, then created without a node, then registered.
    assert pools.pending_nodes("p", SPEC, listed) == 2
    fake.add("m3", None)
    fake.add("m4", None)
    assert pools.pending_nodes("p", SPEC, listed) == 2
    fake.add("m3", "n3")
    # A node that registered after the caller listed the pool's nodes is pending to it still.
    assert pools.pending_nodes("p", SPEC, listed) == 2
    assert pools.pending_nodes("p", SPEC, listed | {"n3"}) == 1
    # A machine Cluster API is deleting is neither registered nor pending.
    fake.replicas = 4
    fake.machines["m0"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert pools.pending_nodes("p", SPEC, listed | {"n3"}) == 1


def test_scale_up_is_capped_by_max_nodes() -> None:
    fake = three_nodes()
    assert len(provider(fake).create_nodes("p", SPEC, 4)) == 3
    assert fake.replicas == 6


def test_scale_up_waits_until_cluster_api_starts_a_released_removal() -> None:
    fake = three_nodes()
    pools = provider(fake)
    pools.delete_node("p", SPEC, "n1")
    assert pools.create_nodes("p", SPEC, 1) == []
    assert fake.replicas == 2
    fake.machines["m1"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert len(pools.create_nodes("p", SPEC, 1)) == 1
    assert fake.replicas == 3
