"""What one cycle knows of a service before reconciling it: the Deployments infscale owns, the
pods the scheduler refused, and the planner's decision; and what it decided for each pool.
Shared by decide and the reconcilers."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from infscale.ports import metrics


@dataclasses.dataclass(frozen=True)
class OwnedDeployment:
    """What the reconciler needs to know about a Deployment infscale owns."""

    name: str
    variant: str
    replicas: int
    ready_replicas: int
    spec_hash: str | None
    replicas_set_by: str | None = None
    """Another writer of ``spec.replicas`` since infscale's last apply (an HPA, KEDA,
    ``kubectl scale``), by its field manager; None when infscale's value stands."""


@dataclasses.dataclass(frozen=True)
class ServiceDecision:
    """What the planner decided for one service this cycle, and why."""

    replicas: Mapping[str, int]
    reason: str
    recommended: Mapping[str, int]
    metrics: metrics.ServiceMetrics | None = None
    memory: str | None = None
    """What the planner has learned of the service, to save in status (when due)."""
    memory_changes: tuple[str, ...] = ()
    """With ``memory``: what moved since the last save (``decide.MEMORY_PARTS``; ``first`` for
    the first save, ``age`` for the hourly refresh of an unchanged memory)."""
    quality: float | None = None
    """With a quality floor: the planned mix's traffic-weighted quality."""
    weights: Mapping[str, int] | None = None
    """With spec.routing: each variant's route weight, percent of the traffic."""
    floor_usd_per_hour: float | None = None
    """With a quality floor: what it costs per hour over the cheapest plan without it."""
    asleep: bool = False
    """At zero replicas with none due and no arrival-rate query: no server reports, and that is
    no loss of metrics (the planner reads the rate as 0)."""
    capacity_rps: Mapping[str, float] | None = None
    """Per variant, the per-replica capacity the planner used: the spec's, or what it learned."""


@dataclasses.dataclass(frozen=True)
class StuckPod:
    """A pod of the service the scheduler has refused (PodScheduled=False, Unschedulable)."""

    variant: str
    unschedulable_s: float
    """Seconds since the pod was created."""
    message: str
    """The scheduler's reason, e.g. `0/4 nodes are available: 4 node(s) had untolerated taint`."""


@dataclasses.dataclass(frozen=True)
class PoolPlan:
    """What the planner asks of one pool this cycle."""

    nodes: int = 0
    """Nodes for the replicas decided now, standby nodes included."""
    standby: int = 0
    """Of those, the ones kept Ready ahead of need (spec.standby): empty, or running warm
    replicas."""
    standby_reason: str = ""
