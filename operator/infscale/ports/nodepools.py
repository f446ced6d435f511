"""The node-pool ports: what adds and removes a pool's nodes, and what marks and drains them."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

from infscale.api import v1alpha1


class NodePoolProvider(Protocol):
    """Changes the size of one kind of pool (kwok, clusterapi, external, static)."""

    owns_nodes: bool
    """False for pools whose nodes someone else owns (external, static): infscale neither adds
    nor removes (cordons, drains, annotates) their nodes."""

    def create_nodes(
        self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, count: int
    ) -> list[str]:
        """Ask for `count` more nodes; returns their names (or, where nodes are named later, as
        with clusterapi, one description per requested machine). Each node appears with the
        pool's labels and taints (kwok: and the startup taint until Ready). Not idempotent:
        every call adds nodes; callers count `pending_nodes` first.
        Raises `infscale.ports.errors.ClusterError` on failure."""
        ...

    def pending_nodes(
        self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, listed: Collection[str]
    ) -> int:
        """Nodes asked for that are not among `listed`, the pool's Nodes as the caller read
        them this cycle (clusterapi: Machines still provisioning, or whose Node registered
        after that read); 0 where nodes appear at once. Read from the cluster, so it survives a
        restart. Raises `infscale.ports.errors.ClusterError` on failure."""
        ...

    def delete_node(self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, node: str) -> None:
        """Remove an empty, cordoned node; a node already gone is not an error. Idempotent.
        The node may outlive the call (clusterapi: Cluster API drains and deletes it later).
        Raises `infscale.ports.errors.ClusterError` on failure."""
        ...


class NodeWriter(Protocol):
    """Writes to the nodes of a pool and evicts their pods (the pool controller's drains)."""

    def patch_node(self, name: str, patch: dict[str, Any]) -> None:
        """Merge-patch a node (labels, annotations, taints, unschedulable); a node already gone
        is not an error. Raises `infscale.ports.errors.ClusterError` on failure."""
        ...

    def evict(self, namespace: str, name: str) -> str | None:
        """Evict a pod through the Eviction API; returns why it was refused (a
        PodDisruptionBudget), or None (also when the pod is gone).
        Raises `infscale.ports.errors.ClusterError` on any other failure."""
        ...
