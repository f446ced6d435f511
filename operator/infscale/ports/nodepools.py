"""The node-pool provider port: what adds and removes a pool's nodes."""

from __future__ import annotations

from typing import Protocol

from infscale.api import v1alpha1


class NodePoolProvider(Protocol):
    """Changes the size of one kind of pool (kwok, clusterapi, external, static)."""

    can_create: bool
    """False for pools whose nodes someone else owns (external, static)."""

    def create_nodes(
        self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, count: int
    ) -> list[str]:
        """Ask for `count` more nodes; returns their names. Each appears with the pool's labels,
        taints and the startup taint until it is ready. Not idempotent: every call adds nodes.
        Raises `infscale.ports.errors.ClusterError` on failure."""
        ...

    def delete_node(self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, node: str) -> None:
        """Remove an empty, cordoned node; a node already gone is not an error.
        Raises `infscale.ports.errors.ClusterError` on failure."""
        ...
