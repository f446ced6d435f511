"""External and static pools on the real cluster: infscale never touches nodes it does not own."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kubernetes import client

from tests.integration import manifests, waiting
from tests.integration.operator_process import OperatorProcess

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("provider", ["external", "static"])
def test_an_empty_surplus_node_of_a_pool_infscale_does_not_own_stays_untouched(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    unique_name: str,
    provider: str,
    tmp_path: Path,
) -> None:
    name = f"{provider}-{unique_name}"
    body = manifests.kwok_pool(name, tainted=False)
    body["spec"]["provider"] = {provider: {}}
    node_name = f"{name}-node"
    capacity = {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1", "pods": "110"}
    with manifests.created_pools(custom, core, body):
        core.create_node(
            client.V1Node(
                metadata=client.V1ObjectMeta(
                    name=node_name,
                    labels={manifests.POOL_LABEL: name, "kubernetes.io/hostname": node_name},
                    annotations={"kwok.x-k8s.io/node": "fake"},
                ),
                status=client.V1NodeStatus(capacity=capacity, allocatable=capacity),
            )
        )
        operator = OperatorProcess(
            tmp_path / "operator.log", 1.0, "--node-cooldown", "1",
            namespaces=[namespace], pools=[name],
        )  # fmt: skip
        operator.start()
        try:

            def ready_nodes() -> object:
                pool = custom.get_cluster_custom_object(
                    manifests.GROUP, manifests.VERSION, "inferencenodepools", name
                )
                assert isinstance(pool, dict)
                return (pool.get("status") or {}).get("readyNodes")

            waiting.until(lambda: ready_nodes() == 1, timeout_s=60, what="the node counted")
            time.sleep(6)  # several cycles past the cool-down: a kwok pool's node would be gone
            node = core.read_node(node_name)
            assert not node.spec.unschedulable
            annotations = node.metadata.annotations or {}
            assert not any(k.startswith("infscale.dev/") for k in annotations), annotations
        finally:
            operator.stop()
            core.delete_node(node_name)
            print(operator.log()[-3000:])
