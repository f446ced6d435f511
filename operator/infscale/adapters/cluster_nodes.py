"""Nodes and pods as the pool controller needs them: snapshots, cordon, annotations, eviction."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from infscale.adapters import kube_client
from infscale.ports import errors

Manifest = dict[str, Any]


def slim_pod(pod: Manifest) -> Manifest:
    """The fields of a pod that infscale reads (the pool and stuck-pod rules), nothing else."""
    meta, spec, status = (pod.get(k) or {} for k in ("metadata", "spec", "status"))
    return {
        "metadata": {k: meta[k] for k in POD_METADATA if k in meta},
        "spec": {
            **{k: spec[k] for k in ("nodeName", "nodeSelector") if k in spec},
            "containers": [
                {"resources": {"requests": (c.get("resources") or {}).get("requests") or {}}}
                for c in spec.get("containers") or []
            ],
        },
        "status": {
            **({"phase": status["phase"]} if "phase" in status else {}),
            "conditions": [
                {k: c[k] for k in ("type", "status", "reason", "message") if k in c}
                for c in status.get("conditions") or []
            ],
        },
    }


POD_METADATA = (
    "name",
    "namespace",
    "labels",
    "ownerReferences",
    "creationTimestamp",
    "deletionTimestamp",
)


class ClusterNodes:
    """Reads all nodes and pods once per cycle; writes only what a decision needs."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api_client)

    def nodes(self) -> list[Manifest]:
        """Every node, as plain JSON objects."""
        with kube_client.listing("nodes"):
            nodes = self._core.list_node(_preload_content=False)
        items: list[Manifest] = json.loads(nodes.data)["items"]  # type: ignore[attr-defined]
        return items

    def pods(self) -> list[Manifest]:
        """Every pod of the cluster, scheduled or not: infscale's own (stuck ones, pods waiting
        for a node) and everything on the pools' nodes (a node is empty only without them).
        Kept as :func:`slim_pod`: at 10,000 pods whole ones are hundreds of MiB."""
        listed = kube_client.list_pages(self._core.list_pod_for_all_namespaces, "pods")
        return [slim_pod(pod) for pod in listed]

    def patch_node(self, name: str, patch: Manifest) -> None:
        """Merge-patch a node; a node already gone is not an error."""
        try:
            self._core.patch_node(name, patch)
        except client.ApiException as error:
            if error.status != 404:
                raise errors.ClusterError(
                    f"patching node {name}: " + errors.api_message(error.body, str(error.reason)),
                    status=error.status,
                ) from error

    def evict(self, namespace: str, name: str) -> str | None:
        """Evict a pod through the Eviction API; returns why it was refused, or None."""
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace))
        try:
            self._core.create_namespaced_pod_eviction(name, namespace, body)
        except client.ApiException as error:
            if error.status == 404:
                return None
            if error.status == 429:
                return f"eviction of {namespace}/{name} refused by a PodDisruptionBudget"
            raise errors.ClusterError(
                f"evicting {namespace}/{name}: "
                + errors.api_message(error.body, str(error.reason)),
                status=error.status,
            ) from error
        return None
