"""Nodes and pods as the pool controller needs them: snapshots, cordon, annotations, eviction."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from infscale.adapters import kube_client
from infscale.ports import errors

Manifest = dict[str, Any]


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
        """Every pod of the cluster, scheduled or not, in one list: infscale's own (stuck ones,
        pods waiting for a node) and everything on the pools' nodes (a node is empty only
        without them)."""
        with kube_client.listing("pods"):
            pods = self._core.list_pod_for_all_namespaces(_preload_content=False)
        items: list[Manifest] = json.loads(pods.data)["items"]  # type: ignore[attr-defined]
        return items

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
