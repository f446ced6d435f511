"""Node managers under the pod baselines: Cluster Autoscaler's rules (kubernetes/autoscaler
FAQ.md), and Karpenter's for the live bench's replay.

Every 10 s: pods Pending for capacity trigger a scale-up of their node group (each variant has one
pool, so the ``least-waste`` expander has a single candidate); new nodes take the pool's
provisioning time. A node is removed after it has been unneeded for 10 min, and not within 10 min
after a scale-up of its group; at most 10 empty nodes go at once. Simplification: only empty
nodes count as unneeded (CA also drains nodes below 50 % utilisation whose pods fit elsewhere;
the simulator does not migrate pods), which can only make the baselines pay more node-time.

Karpenter (sigs.k8s.io/karpenter v1.14.1, ``consolidationPolicy: WhenEmpty``) provisions for
pending pods the same way; a node empty for ``consolidateAfter`` is a candidate, and its
disruption controller removes candidates by commands of at most the NodePool's budget (default
10 % of its nodes, rounded up), each validated for 15 s before it runs, looking again every 10 s
when there is nothing to do (pkg/controllers/disruption: ``pollingPeriod``,
``commandValidationDelay``). Measured on the local cluster (kwok provider): a command's nodes are
gone 5 s after it runs and the next command is computed 5 s after that, one command every 25 s
while candidates remain. Those periods are the binary's own, in wall time: a live run compressed
in time sees them stretched by its speed, and its replay passes them so.
"""

from __future__ import annotations

import dataclasses
import math

from infscale.domain import pricing
from infscale.sim import engine


def provision(sim: engine.Nodes, pool_name: str, now_s: float) -> None:
    """New nodes of a pool for its pending pods, beyond those still provisioning."""
    cluster = sim.cluster
    pool = cluster.pools[pool_name]
    live = cluster.live_nodes(pool_name)
    items = [(r.resources, 1) for r in sim.pending_pods(pool_name)]
    provisioning = sum(1 for n in live if n.ready_s > now_s)
    wanted = pricing.nodes_needed(items, pool.node) - provisioning
    add = max(0, min(wanted, pool.max_nodes - len(live)))
    for _ in range(add):
        cluster.add_node(pool_name, now_s)
    if add:
        cluster.scale_events += 1


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
            if sim.pending_pods(name):
                provision(sim, name, now_s)
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


@dataclasses.dataclass
class Karpenter:
    """Callable node manager: Karpenter's WhenEmpty consolidation (module docstring); every
    duration in simulated seconds."""

    consolidate_after_s: float
    budget_fraction: float = 0.1  # the NodePool's default budget, nodes: "10%"
    validation_s: float = 15.0
    termination_s: float = 5.0  # a command's nodes are gone this long after it runs
    resync_s: float = 5.0  # and the next command is computed this long after that
    poll_s: float = 10.0
    scan_interval_s: float = 1.0  # provisioning: its batch of pending pods closes after 1 s idle
    _next_scan_s: float = 0.0
    _next_poll_s: float = 0.0
    _empty_since: dict[int, float] = dataclasses.field(default_factory=dict)
    _command: tuple[float, list[engine.Node]] | None = None  # (nodes go at, candidates)

    def __call__(self, sim: engine.Nodes, now_s: float) -> None:
        """Provisioning when due, then the disruption controller."""
        cluster = sim.cluster
        if now_s >= self._next_scan_s:
            self._next_scan_s = now_s + self.scan_interval_s
            for name in cluster.pools:
                if sim.pending_pods(name):
                    provision(sim, name, now_s)
        for node in cluster.live_nodes():
            if node.pods or node.ready_s > now_s:
                self._empty_since.pop(id(node), None)
            else:
                self._empty_since.setdefault(id(node), now_s)
        if self._command is not None:
            gone_s, candidates = self._command
            if now_s < gone_s:
                return
            self._command = None
            # Validation: a candidate that took a pod meanwhile stays.
            gone = [n for n in candidates if n.released_s is None and not n.pods]
            for node in gone:
                cluster.release_node(node, now_s)
                self._empty_since.pop(id(node), None)
            if gone:
                cluster.scale_events += 1
            self._next_poll_s = now_s + self.resync_s  # a command ran: look again soon
        if now_s < self._next_poll_s:
            return
        self._next_poll_s = now_s + self.poll_s
        picked: list[engine.Node] = []  # one command over every pool, each within its budget
        for name, pool in cluster.pools.items():
            live = cluster.live_nodes(name)
            since = self._empty_since.get
            candidates = [
                n for n in live if now_s - since(id(n), math.inf) >= self.consolidate_after_s
            ]
            budget = math.ceil(self.budget_fraction * len(live))
            picked += candidates[: min(budget, max(0, len(live) - pool.min_nodes))]
        if picked:
            self._command = (now_s + self.validation_s + self.termination_s, picked)
