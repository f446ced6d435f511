"""Reconciles one InferenceService: its variant Deployments, its status and its Events.

Level-based and idempotent: the inputs are snapshots of the cluster (the service, the node pools,
the Deployments infscale owns), the outputs go through the ports, and a reconcile that finds
nothing to change makes no API write.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from infscale.api import v1alpha1
from infscale.controller import convert, desired, service_view
from infscale.controller.decisions import OwnedDeployment, ServiceDecision, StuckPod
from infscale.domain import pricing
from infscale.labels import SPEC_HASH_ANNOTATION
from infscale.ports import errors, metrics, reporting, workloads

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class Outcome:
    """What one reconcile did, for logs and tests."""

    applied: list[str] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)
    status_written: bool = False
    events: list[str] = dataclasses.field(default_factory=list)
    status: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The status as computed this cycle (written or not)."""

    @property
    def writes(self) -> int:
        return len(self.applied) + len(self.deleted) + int(self.status_written) + len(self.events)


@dataclasses.dataclass(frozen=True)
class Ports:
    workloads: workloads.WorkloadScaler
    status: reporting.StatusWriter
    events: reporting.EventRecorder


def baseline_replicas(
    spec: v1alpha1.InferenceServiceSpec, pools: Mapping[str, v1alpha1.InferenceNodePoolSpec]
) -> tuple[dict[str, int], str]:
    """Replicas per variant before any metric is read: the manual total or the minimum, all on
    the variant that serves a request/s most cheaply by the planner's cost model (one that fits
    no node of its pool, as one that requests nothing, only when no other can run). Returns the
    split and its reason."""
    total = spec.replicas.fixed if spec.replicas.fixed is not None else spec.replicas.min
    pool_map = convert.pool_specs(pools)
    placeable = [convert.variant_spec(v) for v in spec.variants if v.node_pool in pools]
    split = {v.name: 0 for v in spec.variants}
    if not placeable:
        return split, "no variant has an existing node pool"
    cheapest = min(
        placeable, key=lambda v: pricing.usd_per_rps_hour(v, pool_map[v.pool], v.capacity_rps)
    )
    split[cheapest.name] = total
    source = "replicas.fixed" if spec.replicas.fixed is not None else "replicas.min"
    return split, f"{source}={total} on variant {cheapest.name} (lowest cost per request/s)"


def _usd_per_hour(
    metadata: Mapping[str, Any],
    spec: v1alpha1.InferenceServiceSpec,
    pools: Mapping[str, v1alpha1.InferenceNodePoolSpec],
    replicas: Mapping[str, int],
) -> float | None:
    """status.usdPerHour: the planner's node-share cost of ``replicas``; None (absent) when a
    replica fits no node of its pool, which the planner's model gives no finite cost."""
    service = convert.service_spec(
        metadata["namespace"], metadata["name"], spec, sum(replicas.values())
    )
    usd = pricing.share_usd_per_hour(replicas, service, convert.pool_specs(pools))
    return round(usd, 4) if math.isfinite(usd) else None


def missing_pools_message(missing_pools: Sequence[str]) -> str:
    """Why some variants get no replicas, in words."""
    if len(missing_pools) == 1:
        return (
            f"InferenceNodePool {missing_pools[0]} does not exist; its variants get no replicas "
            "until it is created"
        )
    return (
        f"InferenceNodePools {', '.join(missing_pools)} do not exist; their variants get no "
        "replicas until they are created"
    )


def reconcile_service(
    body: Mapping[str, Any],
    pools: Mapping[str, v1alpha1.InferenceNodePoolSpec],
    owned: Sequence[OwnedDeployment],
    ports: Ports,
    now: str,
    decision: ServiceDecision | None = None,
    stuck_pods: Sequence[StuckPod] = (),
    grace_s: float = 30.0,
) -> Outcome:
    """`reconcile` of a service body, read as the cycle reads it (`service_view.read`)."""
    view = service_view.read(body, owned, stuck_pods)
    return reconcile(view, pools, ports, now, decision, grace_s)


def reconcile(
    view: service_view.ServiceView | service_view.InvalidService,
    pools: Mapping[str, v1alpha1.InferenceNodePoolSpec],
    ports: Ports,
    now: str,
    decision: ServiceDecision | None = None,
    grace_s: float = 30.0,
) -> Outcome:
    """Bring the service's Deployments, status and Events in line with its spec and the
    planner's decision (without one, or with replicas.fixed set: the baseline split).

    Pods the scheduler has refused for longer than twice their pool's provisioning time plus
    `grace_s` are reported (CapacityAvailable=False): a node that never takes them (a foreign
    taint, a too-small shape) is a fault no added node can fix."""
    outcome = Outcome()
    body = view.body
    metadata = body["metadata"]
    namespace, name = view.namespace, view.name
    generation = metadata.get("generation")
    old_status: Mapping[str, Any] = body.get("status") or {}
    previous_conditions = old_status.get("conditions") or []
    if isinstance(view, service_view.InvalidService):
        # The CRD schema should make this impossible; report rather than crash.
        invalid = desired.condition(
            "Ready", False, "InvalidSpec", view.error[:900],
            previous=previous_conditions, now=now, generation=generation,
        )  # fmt: skip
        _write_status(ports, body, {"conditions": [invalid]}, outcome)
        return outcome
    spec, owned, stuck_pods = view.spec, view.owned, view.stuck
    current = {d.variant: d for d in owned}
    hold_replicas = view.held
    plan, plan_reason = baseline_replicas(spec, pools)
    recommended = dict(plan)
    if decision is not None and spec.replicas.fixed is None:
        recommended, plan_reason = dict(decision.recommended), decision.reason
        if not hold_replicas:
            plan = dict(decision.replicas)

    missing_pools = sorted({v.node_pool for v in spec.variants if v.node_pool not in pools})
    applied_replicas: dict[str, int] = {}
    rejected: list[str] = []
    previous_messages = {c.get("message") for c in previous_conditions}
    for variant in spec.variants:
        pool = pools.get(variant.node_pool)
        existing = current.get(variant.name)
        if pool is None:
            applied_replicas[variant.name] = existing.replicas if existing else 0
            continue
        replicas = plan[variant.name]
        if hold_replicas and existing is not None:
            replicas = existing.replicas
        manifest = desired.deployment(
            service=spec,
            service_name=name,
            namespace=namespace,
            owner_uid=metadata["uid"],
            variant=variant,
            pool=pool,
            replicas=replicas,
        )
        applied_replicas[variant.name] = replicas
        wanted_hash = manifest["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
        if existing and existing.spec_hash == wanted_hash and existing.replicas == replicas:
            continue
        try:
            ports.workloads.apply_deployment(manifest)
        except errors.ClusterError as error:
            # One rejected Deployment must not hold back the other variants; it is reported.
            rejected.append(str(error))
            applied_replicas[variant.name] = existing.replicas if existing else 0
            if str(error) not in previous_messages:
                _event(ports, body, "Warning", "DeploymentRejected", str(error), outcome)
            continue
        outcome.applied.append(manifest["metadata"]["name"])
        before = existing.replicas if existing else 0
        if before != replicas:
            message = f"variant {variant.name}: {before} -> {replicas} replicas ({plan_reason})"
            _event(ports, body, "Normal", "Scaled", message, outcome)

    wanted_variants = {v.name for v in spec.variants}
    for deployment in owned:
        if deployment.variant not in wanted_variants:
            ports.workloads.delete_deployment(namespace, deployment.name)
            outcome.deleted.append(deployment.name)
            _event(
                ports, body, "Normal", "VariantRemoved",
                f"deleted Deployment {deployment.name}: variant {deployment.variant} "
                "is no longer in the spec", outcome,
            )  # fmt: skip

    unschedulable = _unschedulable_message(spec, pools, stuck_pods, grace_s)
    status = _status(
        view=view,
        unschedulable=unschedulable,
        body=body,
        pools=pools,
        plan=recommended,
        plan_reason=plan_reason,
        observed=decision.metrics if decision else None,
        asleep=decision.asleep if decision else False,
        applied=applied_replicas,
        current=current,
        missing_pools=missing_pools,
        rejected=rejected,
        now=now,
    )
    if missing_pools and not _had_condition(previous_conditions, "CapacityAvailable", "False"):
        _event(
            ports,
            body,
            "Warning",
            "NodePoolNotFound",
            missing_pools_message(missing_pools),
            outcome,
        )
    if unschedulable and not _had_condition(previous_conditions, "CapacityAvailable", "False"):
        _event(ports, body, "Warning", "PodsUnschedulable", unschedulable, outcome)
    if decision is not None and decision.memory is not None:
        status["plannerMemory"] = decision.memory
    outcome.status = status
    if desired.without_times(status) != desired.without_times(_comparable(old_status, status)):
        _write_status(ports, body, status, outcome)
    return outcome


def _unschedulable_message(
    spec: v1alpha1.InferenceServiceSpec,
    pools: Mapping[str, v1alpha1.InferenceNodePoolSpec],
    stuck_pods: Sequence[StuckPod],
    grace_s: float,
) -> str:
    by_variant = {v.name: v for v in spec.variants}
    parts = []
    for name in sorted({p.variant for p in stuck_pods}):
        variant = by_variant.get(name)
        pool = pools.get(variant.node_pool) if variant else None
        if variant is None or pool is None:
            continue
        waited = [p for p in stuck_pods if p.variant == name]
        # Two provisioning periods: a node may wait one behind the per-cycle limit.
        patience_s = 2 * pool.provisioning_seconds + grace_s
        late = [p for p in waited if p.unschedulable_s > patience_s]
        if late:
            parts.append(
                f"{len(late)} pod(s) of variant {name} unschedulable for over "
                f"{patience_s:.0f} s on pool {variant.node_pool}: {late[0].message}"
            )
    return "; ".join(parts)[:1000]


def _status(
    *,
    view: service_view.ServiceView,
    unschedulable: str,
    body: Mapping[str, Any],
    pools: Mapping[str, v1alpha1.InferenceNodePoolSpec],
    plan: Mapping[str, int],
    plan_reason: str,
    observed: metrics.ServiceMetrics | None,
    asleep: bool,
    applied: Mapping[str, int],
    current: Mapping[str, OwnedDeployment],
    missing_pools: Sequence[str],
    rejected: Sequence[str],
    now: str,
) -> dict[str, Any]:
    spec = view.spec
    metadata = body["metadata"]
    generation = metadata.get("generation")
    old: Mapping[str, Any] = body.get("status") or {}
    previous = old.get("conditions") or []
    ready = {
        v.name: (current[v.name].ready_replicas if v.name in current else 0) for v in spec.variants
    }
    total_desired = sum(applied.values())
    total_ready = sum(ready.values())

    decision = view.hold or plan_reason
    last = old.get("lastDecision") or {}
    last_decision = (
        dict(last) if last.get("reason") == decision else {"time": now, "reason": decision}
    )

    def cond(kind: str, state: bool | None, reason: str, message: str) -> dict[str, Any]:
        return desired.condition(
            kind, state, reason, message, previous=previous, now=now, generation=generation
        )

    if missing_pools:
        capacity = cond(
            "CapacityAvailable", False, "NodePoolNotFound", missing_pools_message(missing_pools)
        )
    elif unschedulable:
        capacity = cond("CapacityAvailable", False, "PodsUnschedulable", unschedulable)
    else:
        capacity = cond("CapacityAvailable", True, "NodePoolsFound", "every node pool exists")
    if rejected:
        ready_condition = cond("Ready", False, "DeploymentRejected", "; ".join(rejected)[:1000])
    elif total_ready >= total_desired:
        ready_condition = cond(
            "Ready", True, "ReplicasReady", f"{total_ready}/{total_desired} replicas ready"
        )
    else:
        ready_condition = cond(
            "Ready", False, "ReplicasStarting", f"{total_ready}/{total_desired} replicas ready"
        )
    conditions = [
        ready_condition,
        _metrics_condition(cond, observed, asleep),
        _slo_condition(cond, observed, spec.slo.threshold_seconds),
        capacity,
    ]
    total = observed.total if observed else metrics.Signals()
    recommendation = None
    if view.held:
        recommendation = ", ".join(f"{v}={n}" for v, n in plan.items()) + f" ({plan_reason})"
    return {
        "observedGeneration": generation,
        "replicas": total_desired,
        "readyReplicas": total_ready,
        "selector": desired.selector(metadata["name"]),
        "usdPerHour": _usd_per_hour(metadata, spec, pools, applied),
        "observedRps": _rounded(total.rps),
        "arrivalRps": _rounded(observed.arrival_rps if observed else None),
        "observedLatencySeconds": _rounded(total.latency_s),
        "sloAttainment": _rounded(total.slo_attainment),
        "variants": [
            {"name": v.name, "desiredReplicas": applied[v.name], "readyReplicas": ready[v.name]}
            for v in spec.variants
        ],
        "conditions": conditions,
        "lastDecision": last_decision,
        "recommendation": recommendation,
    }


ASLEEP_METRICS = (
    "no replica runs, so no server reports requests: the rate reads as 0 until one starts"
)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _metrics_condition(
    cond: Any, observed: metrics.ServiceMetrics | None, asleep: bool
) -> dict[str, Any]:
    if observed is None:
        return dict(cond("MetricsAvailable", None, "NoMetricsSource", "no metrics read yet"))
    if asleep and not observed.available:
        return dict(cond("MetricsAvailable", True, "Asleep", ASLEEP_METRICS))
    if not observed.available:
        reason = observed.unknown[0] if observed.unknown else "request rate unknown"
        return dict(cond("MetricsAvailable", False, "MetricsUnknown", reason[:500]))
    detail = "; ".join(observed.unknown)[:500] or "request rate and latency read"
    return dict(cond("MetricsAvailable", True, "MetricsRead", detail))


def _slo_condition(
    cond: Any, observed: metrics.ServiceMetrics | None, threshold_s: float
) -> dict[str, Any]:
    latency = observed.total.latency_s if observed else None
    if latency is None:
        return dict(
            cond("SLOMet", None, "NoLatency", "no latency observed (no traffic or no data)")
        )
    if latency <= threshold_s:
        return dict(cond("SLOMet", True, "WithinSLO", f"{latency:.3f} s <= {threshold_s} s"))
    return dict(cond("SLOMet", False, "OverSLO", f"{latency:.3f} s > {threshold_s} s"))


def _comparable(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The old status restricted to the keys the new one sets (None where it had none)."""
    return {key: old.get(key) for key in new}


def _had_condition(conditions: Sequence[Mapping[str, Any]], kind: str, status: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == status for c in conditions)


def _write_status(
    ports: Ports, body: Mapping[str, Any], status: dict[str, Any], outcome: Outcome
) -> None:
    metadata = body["metadata"]
    ports.status.write_service_status(metadata["namespace"], metadata["name"], status)
    outcome.status_written = True


def _event(
    ports: Ports,
    body: Mapping[str, Any],
    event_type: str,
    reason: str,
    message: str,
    outcome: Outcome,
) -> None:
    LOG.info(
        "%s/%s %s: %s", body["metadata"]["namespace"], body["metadata"]["name"], reason, message
    )
    ports.events.record(dict(body), event_type, reason, message)
    outcome.events.append(reason)
