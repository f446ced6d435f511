"""Node-pool decisions: how many nodes the pods need, and which nodes may go.

Pure: inputs are snapshots of a pool's nodes and pods with times in seconds, the output is a
`PoolAction` with a reason. The rules (safety first):

- Scale up at once, bounded per cycle and by maxNodes; cancel a drain before buying a node.
  The per-cycle bound is the larger of the guard and the pool's nodes, Ready or still within
  their provisioning (a pool may double each cycle, as Kubernetes HPA's default scale-up policy
  allows for pods): a legitimate ramp is not throttled into a staircase, while a pool with a
  node stuck not Ready (a runaway input) grows only by the guard.
- Remove only nodes that hold no infscale-managed Ready replica and no pod infscale does not own
  (DaemonSet pods aside), that are not protected by `infscale.dev/do-not-disrupt`, after they
  have been empty for the cool-down and not within the cool-down after a scale-up; bounded per
  cycle and by minNodes.
- A node with a termination notice (a spot interruption) counts as gone: its replacement is
  ordered at once, while it still serves; its provider removes it, infscale never does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from infscale.labels import DO_NOT_DISRUPT_ANNOTATION


@dataclasses.dataclass(frozen=True)
class NodeFacts:
    """One node of a pool as the cluster shows it."""

    name: str
    ready: bool
    created_s: float
    cordoned: bool = False
    draining: bool = False
    draining_since_s: float | None = None
    protected: bool = False
    managed_ready_pods: int = 0
    managed_other_pods: int = 0
    foreign_pods: int = 0
    empty_since_s: float | None = None
    terminating: bool = False
    """It carries a termination notice (a spot interruption): gone soon, whatever is decided."""

    @property
    def removable(self) -> bool:
        """Holds nothing that forbids removal (the cool-down is checked separately)."""
        return not self.protected and self.managed_ready_pods == 0 and self.foreign_pods == 0


@dataclasses.dataclass(frozen=True)
class PoolLimits:
    min_nodes: int
    max_nodes: int
    max_change_per_cycle: int = 2
    scale_down_cooldown_s: float = 120.0
    """A node must be empty this long, and the pool must not have grown within it."""
    provisioning_s: float = 300.0
    """How long a new node takes to become Ready; one not Ready after twice this is stuck."""


@dataclasses.dataclass(frozen=True)
class PoolAction:
    """What to do to a pool this cycle."""

    create: int = 0
    uncordon: tuple[str, ...] = ()
    drain: tuple[str, ...] = ()
    reason: str = ""


def decide(
    desired_nodes: int,
    nodes: Sequence[NodeFacts],
    limits: PoolLimits,
    now_s: float,
    last_scale_up_s: float | None,
    owns_nodes: bool,
    hold: str = "",
) -> PoolAction:
    """The action that moves the pool towards `desired_nodes` within its limits; with `hold`
    (why), it adds nodes but starts no removal."""
    target = min(max(desired_nodes, limits.min_nodes), limits.max_nodes)
    active = [n for n in nodes if not n.draining and not n.terminating]
    draining = [n for n in nodes if n.draining and not n.terminating]
    step = limits.max_change_per_cycle
    if target > len(active):
        step = max(step, _growth_allowed(active, limits, now_s))
        missing = target - len(active)
        revived = tuple(n.name for n in draining[:missing])
        missing -= len(revived)
        create = min(missing, max(0, step - len(revived))) if owns_nodes else 0
        parts = []
        if revived:
            parts.append(f"cancel the drain of {', '.join(revived)}")
        if create:
            parts.append(f"add {create} node(s)")
        if missing > create and owns_nodes:
            parts.append(f"{missing - create} more next cycle (at most {step} per cycle)")
        if missing and not owns_nodes:
            parts.append("the provider cannot add nodes")
        leaving = [n.name for n in nodes if n.terminating]
        if leaving:
            parts.append(f"{', '.join(leaving)} leaving (termination notice)")
        return PoolAction(
            create=create,
            uncordon=revived,
            reason=f"pods need {target} node(s), {len(active)} active: " + "; ".join(parts),
        )
    if target < len(active) and hold:
        return PoolAction(reason=f"{len(active) - target} node(s) surplus kept: {hold}")
    if target < len(active) and not owns_nodes:
        return PoolAction(
            reason=f"{len(active) - target} node(s) surplus: the pool's provider owns its nodes, "
            "infscale does not remove them"
        )
    if target < len(active):
        if last_scale_up_s is not None and now_s - last_scale_up_s < limits.scale_down_cooldown_s:
            wait = limits.scale_down_cooldown_s - (now_s - last_scale_up_s)
            return PoolAction(reason=f"{len(active) - target} node(s) surplus; cool-down after "
                              f"the last scale-up ends in {wait:.0f} s")  # fmt: skip
        candidates = [
            n
            for n in active
            if n.removable
            and n.empty_since_s is not None
            and now_s - n.empty_since_s >= limits.scale_down_cooldown_s
        ]
        candidates.sort(key=lambda n: (n.managed_other_pods, n.created_s), reverse=False)
        chosen = tuple(n.name for n in candidates[: min(step, len(active) - target)])
        if not chosen:
            blocked = _why_blocked(active, limits, now_s)
            return PoolAction(
                reason=f"{len(active) - target} node(s) surplus, none removable: {blocked}"
            )
        return PoolAction(
            drain=chosen,
            reason=f"pods need {target} node(s), {len(active)} active: drain {', '.join(chosen)}",
        )
    return PoolAction(reason=f"{len(active)} node(s) match what the pods need")


def _why_blocked(nodes: Sequence[NodeFacts], limits: PoolLimits, now_s: float) -> str:
    reasons = []
    for n in nodes:
        if n.protected:
            reasons.append(f"{n.name} is protected by {DO_NOT_DISRUPT_ANNOTATION}")
        elif n.foreign_pods:
            reasons.append(f"{n.name} holds {n.foreign_pods} pod(s) infscale does not own")
        elif n.managed_ready_pods:
            reasons.append(f"{n.name} serves {n.managed_ready_pods} replica(s)")
        elif n.empty_since_s is None or now_s - n.empty_since_s < limits.scale_down_cooldown_s:
            since = 0.0 if n.empty_since_s is None else now_s - n.empty_since_s
            reasons.append(
                f"{n.name} empty for {since:.0f} of {limits.scale_down_cooldown_s:.0f} s"
            )
    return "; ".join(reasons[:4]) or "no node qualifies"


def _growth_allowed(active: Sequence[NodeFacts], limits: PoolLimits, now_s: float) -> int:
    """Nodes the pool may add this cycle beyond the guard: as many as it has, unless one of them
    has been not Ready for over twice the provisioning time (then 0: something is wrong)."""
    stuck = [n for n in active if not n.ready and now_s - n.created_s > 2 * limits.provisioning_s]
    return 0 if stuck else len(active)
