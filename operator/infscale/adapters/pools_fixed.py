"""NodePoolProvider backends `external` and `static`: infscale never adds or removes their nodes.

External pools belong to Karpenter or Cluster Autoscaler, static pools to whoever made them;
infscale places replicas on them with the pool's selectors and tolerations and counts their cost.
"""

from __future__ import annotations

from collections.abc import Collection

from infscale.api import v1alpha1
from infscale.ports import errors


class FixedPools:
    """A provider that refuses to change the pool."""

    owns_nodes = False

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def create_nodes(
        self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, count: int
    ) -> list[str]:
        raise errors.ClusterError(f"pool {pool} is {self.kind}: infscale does not add its nodes")

    def pending_nodes(
        self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, listed: Collection[str]
    ) -> int:
        return 0

    def delete_node(self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, node: str) -> None:
        raise errors.ClusterError(f"pool {pool} is {self.kind}: infscale does not remove its nodes")
