"""The clusterapi node-pool provider on the real cluster, with a stand-in machine controller.

infscale resizes a MachineDeployment through its scale subresource and, before lowering
replicas, marks the empty node's Machine with `cluster.x-k8s.io/delete-machine`. Cluster API
itself does not run here: `clusterapi_standin.StandInMachineController` (test code) plays it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration import clusterapi_standin as capi
from tests.integration import manifests, waiting
from tests.integration.manifests import ready_pods
from tests.integration.operator_process import OperatorProcess

pytestmark = pytest.mark.integration

GROUP, VERSION = "infscale.dev", "v1alpha1"
MD_NAME = "gpu-workers"


def pool(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceNodePool",
        "metadata": {"name": name},
        "spec": {
            "provider": {
                "clusterapi": {"machineDeployment": {"namespace": namespace, "name": MD_NAME}}
            },
            "node": node_shape(name),
            "usdPerHour": 0.8,
            "maxNodes": 4,
            "provisioningSeconds": 2,
        },
    }


def node_shape(pool_name: str) -> dict[str, Any]:
    return {
        "capacity": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
        "labels": {"infscale.dev/pool": pool_name},
        "taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}],
    }


@pytest.fixture(scope="session")
def capi_crds(api_client: client.ApiClient) -> None:
    capi.install_crds(api_client)


@pytest.fixture
def machines(
    api_client: client.ApiClient,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    capi_crds: None,
    namespace: str,
    unique_name: str,
) -> Iterator[capi.StandInMachineController]:
    """A MachineDeployment, its pool, and the stand-in controller; all removed afterwards."""
    pool_name = f"capi-{unique_name}"
    custom.create_namespaced_custom_object(
        capi.GROUP, capi.VERSION, namespace, "machinedeployments",
        capi.machine_deployment(namespace, MD_NAME),
    )  # fmt: skip
    custom.create_cluster_custom_object(
        GROUP, VERSION, "inferencenodepools", pool(pool_name, namespace)
    )
    controller = capi.StandInMachineController(
        api_client, namespace, MD_NAME, node_shape(pool_name), provisioning_s=2.0
    )
    controller.start()
    try:
        yield controller
    finally:
        try:
            controller.stop()
        finally:
            custom.delete_cluster_custom_object(GROUP, VERSION, "inferencenodepools", pool_name)
            for node in core.list_node(label_selector=f"infscale.dev/pool={pool_name}").items:
                core.delete_node(node.metadata.name)


def pool_nodes(core: client.CoreV1Api, controller: capi.StandInMachineController) -> set[str]:
    selector = f"infscale.dev/pool={controller.node['labels']['infscale.dev/pool']}"
    return {str(n.metadata.name) for n in core.list_node(label_selector=selector).items}


def test_machine_deployment_follows_replicas_and_only_the_empty_nodes_machines_go(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    machines: capi.StandInMachineController,
    tmp_path: Path,
) -> None:
    pool_name = machines.node["labels"]["infscale.dev/pool"]

    def md() -> dict[str, Any]:
        body = custom.get_namespaced_custom_object(
            capi.GROUP, capi.VERSION, namespace, "machinedeployments", MD_NAME
        )
        assert isinstance(body, dict)
        return body

    operator = OperatorProcess(
        tmp_path / "operator.log", 1.0, "--node-cooldown", "3",
        namespaces=[namespace], pools=[pool_name],
    )  # fmt: skip
    operator.start()
    try:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "inferenceservices", manifests.fixed_service(pool_name, 3)
        )
        # Demand rises: three one-GPU replicas need three machines; the machines take 2 s to
        # get a node, and the cycles meanwhile must not buy more.
        waiting.until(lambda: len(ready_pods(core, namespace)) == 3, timeout_s=90, what="3 ready")
        body = md()
        assert body["spec"]["replicas"] == 3
        assert len(machines.created) == 3, "no machine bought twice while provisioning"
        scale_writes = [
            f for f in body["metadata"]["managedFields"] if f.get("subresource") == "scale"
        ]
        assert scale_writes, "replicas are written through the scale subresource"
        by_node = {
            m["status"]["nodeRef"]["name"]: m["metadata"]["name"] for m in machines.machines()
        }
        assert {p.spec.node_name for p in ready_pods(core, namespace)} == set(by_node)

        def pool_provider() -> Any:
            body = custom.get_cluster_custom_object(GROUP, VERSION, "inferencenodepools", pool_name)
            return (body.get("status") or {}).get("provider")  # type: ignore[attr-defined]

        assert waiting.until(pool_provider, timeout_s=10, what="pool status") == "clusterapi"

        # A pod infscale does not own lands on one node: that node's machine is never marked.
        foreign_node = ready_pods(core, namespace)[0].spec.node_name
        core.create_namespaced_pod(namespace, manifests.foreign_pod(foreign_node))
        # Demand falls to one replica.
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "inferenceservices", "chat",
            {"spec": {"replicas": {"fixed": 1}}},
        )  # fmt: skip
        serving = waiting.until(
            lambda: (pods := ready_pods(core, namespace)) and len(pods) == 1 and pods,
            timeout_s=30, what="one replica left",
        )  # fmt: skip
        keep = {foreign_node, serving[0].spec.node_name}
        waiting.until(
            lambda: pool_nodes(core, machines) == keep, timeout_s=60, what=f"only {keep} left"
        )
        waiting.until(lambda: md()["spec"]["replicas"] == len(keep), timeout_s=10, what="replicas")

        # Cluster API removed only machines infscale marked, each the machine of an empty node.
        # The stand-in records a removal after deleting the Node and then the Machine: the Nodes
        # can be gone a moment before their removals are recorded.
        def recorded() -> list[capi.Removal] | None:
            removals = list(machines.removed)
            return removals if len(removals) >= 3 - len(keep) else None

        removed = waiting.until(recorded, timeout_s=10, what="the stand-in's removals recorded")
        assert len(removed) == 3 - len(keep)
        assert all(r.mark == "infscale" for r in removed), removed
        assert not {r.node for r in removed} & keep
        # No duplicate decrement: a few more cycles change nothing.
        time.sleep(4)
        assert md()["spec"]["replicas"] == len(keep)
        assert pool_nodes(core, machines) == keep
        assert len(machines.removed) == len(removed)
        for machine in machines.machines():
            assert capi.DELETE_MACHINE not in (machine["metadata"].get("annotations") or {})
        assert "Traceback" not in operator.log()
    finally:
        operator.stop()
        print(operator.log()[-4000:])
