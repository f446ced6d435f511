"""Cluster Autoscaler rules under the pod baselines (kubernetes/autoscaler FAQ.md).

Every 10 s: pods Pending for capacity trigger a scale-up of their node group (each variant has one
pool, so the ``least-waste`` expander has a single candidate); new nodes take the pool's
provisioning time. A node is removed after it has been unneeded for 10 min, and not within 10 min
after a scale-up of its group; at most 10 empty nodes go at once. Simplification: only empty
nodes count as unneeded (CA also drains nodes below 50 % utilisation whose pods fit elsewhere;
the simulator does not migrate pods), which can only make the baselines pay more node-time.
"""

from __future__ import annotations

import dataclasses

from infscale.domain import pricing
from infscale.sim import engine


@dataclasses.dataclass
class ClusterAutoscaler:
    """Callable node manager for :class:`engine.Simulator` (or a Group of them on one cluster:
    it sees every service's pending pods)."""

    scan_interval_s: float = 10.0
    unneeded_s: float = 600.0
    delay_after_add_s: float = 600.0
    max_empty_bulk_delete: int = 10
    _next_s: float = 0.0
    _unneeded_since: dict[int, float] = dataclasses.field(default_factory=dict)

    def __call__(self, sim: engine.Nodes, now_s: float) -> None:
        """One scan when due."""
        if now_s < self._next_s:
            return
        self._next_s = now_s + self.scan_interval_s
        cluster = sim.cluster
        for name, pool in cluster.pools.items():
            live = cluster.live_nodes(name)
            pending = sim.pending_pods(name)
            if pending:
                items = [(r.resources, 1) for r in pending]
                provisioning = sum(1 for n in live if n.ready_s > now_s)
                wanted = pricing.nodes_needed(items, pool.node) - provisioning
                add = max(0, min(wanted, pool.max_nodes - len(live)))
                for _ in range(add):
                    cluster.add_node(name, now_s)
                if add:
                    cluster.scale_events += 1
                continue
            removable = []
            for node in live:
                key = id(node)
                if node.pods or node.ready_s > now_s:
                    self._unneeded_since.pop(key, None)
                    continue
                since = self._unneeded_since.setdefault(key, now_s)
                if now_s - since >= self.unneeded_s:
                    removable.append(node)
            cooled = now_s - cluster.pool_scale_up_s.get(name, -1e18) >= self.delay_after_add_s
            room = max(0, len(live) - pool.min_nodes)
            batch = removable[: min(self.max_empty_bulk_delete, room)] if cooled else []
            for node in batch:
                cluster.release_node(node, now_s)
                self._unneeded_since.pop(id(node), None)
            if batch:
                cluster.scale_events += 1
