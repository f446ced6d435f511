"""NodePoolProvider backend `kwok`: fake Nodes that kwok makes Ready after provisioningSeconds."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from kubernetes import client

from infscale.api import v1alpha1
from infscale.labels import POOL_LABEL, STARTUP_TAINT
from infscale.ports import errors


class KwokPools:
    """Creates and deletes kwok Node objects shaped like the pool."""

    owns_nodes = True

    def __init__(self, api_client: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api_client)

    def create_nodes(
        self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, count: int
    ) -> list[str]:
        prefix = (spec.provider.kwok.name_prefix if spec.provider.kwok else None) or pool
        capacity = {name: str(value) for name, value in spec.node.capacity.items()}
        capacity.setdefault("pods", "110")
        names = []
        for _ in range(count):
            name = f"{prefix}-{uuid.uuid4().hex[:6]}"
            taints = [
                client.V1Taint(key=t.key, value=t.value, effect=t.effect.value)
                for t in spec.node.taints
            ]
            delay = f"{spec.provisioning_seconds}s"
            taints.append(client.V1Taint(key=STARTUP_TAINT, value="true", effect="NoSchedule"))
            node = client.V1Node(
                metadata=client.V1ObjectMeta(
                    name=name,
                    labels={
                        **spec.node.labels,
                        POOL_LABEL: pool,
                        "kubernetes.io/hostname": name,
                        "type": "kwok",
                    },
                    annotations={
                        "kwok.x-k8s.io/node": "fake",
                        "node-initialize.stage.kwok.x-k8s.io/delay": delay,
                    },
                ),
                spec=client.V1NodeSpec(taints=taints),
                status=client.V1NodeStatus(capacity=capacity, allocatable=capacity),
            )
            try:
                self._core.create_node(node)
            except client.ApiException as error:
                raise errors.ClusterError(
                    f"creating node {name}: " + errors.api_message(error.body, str(error.reason)),
                    status=error.status,
                ) from error
            names.append(name)
        return names

    def pending_nodes(
        self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, listed: Collection[str]
    ) -> int:
        return 0  # the Node exists as soon as create_nodes returns

    def delete_node(self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, node: str) -> None:
        try:
            self._core.delete_node(node)
        except client.ApiException as error:
            if error.status != 404:
                raise errors.ClusterError(
                    f"deleting node {node}: " + errors.api_message(error.body, str(error.reason)),
                    status=error.status,
                ) from error
