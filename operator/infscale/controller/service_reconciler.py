"""Reconciles one InferenceService: its variant Deployments, its status and its Events.

Level-based and idempotent: the inputs are snapshots of the cluster (the service, the node pools,
the Deployments infscale owns), the outputs go through the ports, and a reconcile that finds
nothing to change makes no API write.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from infscale.api import v1alpha1
from infscale.controller import convert, desired, service_status, service_view
from infscale.controller.decisions import OwnedDeployment, ServiceDecision, StuckPod
from infscale.domain import pricing, traffic
from infscale.labels import SPEC_HASH_ANNOTATION
from infscale.ports import errors, reporting, workloads
from infscale.ports.workloads import RouteWriter

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class Outcome:
    """What one reconcile did, for logs and tests."""

    applied: list[str] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)
    status_written: bool = False
    status_changes: tuple[str, ...] = ()
    """The status fields whose change made the write (``service_status.changed_fields``)."""
    memory_changes: tuple[str, ...] = ()
    """With a planner memory saved: what it learned since the last save."""
    events: list[str] = dataclasses.field(default_factory=list)
    status: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The status as computed this cycle (written or not)."""

    @property
    def writes(self) -> int:
        return len(self.applied) + len(self.deleted) + int(self.status_written) + len(self.events)

    def summary(self) -> str:
        """The writes in one line, for the log (the status by its changed fields: a whole
        status with the planner's memory is half a kilobyte a service)."""
        parts = [
            f"applied {', '.join(self.applied)}" if self.applied else "",
            f"deleted {', '.join(self.deleted)}" if self.deleted else "",
            f"status ({', '.join(self.status_changes)})" if self.status_written else "",
            f"memory ({', '.join(self.memory_changes)})" if self.memory_changes else "",
            f"events {', '.join(self.events)}" if self.events else "",
        ]
        return "; ".join(part for part in parts if part)


@dataclasses.dataclass(frozen=True)
class Ports:
    workloads: workloads.WorkloadScaler
    status: reporting.StatusWriter
    events: reporting.EventRecorder
    routes: RouteWriter | None = None
    """Services and HTTPRoutes of services with spec.routing; None: no weighted routing."""


def baseline_replicas(
    spec: v1alpha1.InferenceServiceSpec, pools: Mapping[str, v1alpha1.InferenceNodePoolSpec]
) -> tuple[dict[str, int], str]:
    """Replicas per variant before any metric is read: the manual total or the minimum, all on
    the variant that serves a request/s most cheaply by the planner's cost model (one that fits
    no node of its pool, as one that requests nothing, only when no other can run) among those
    whose quality alone keeps the service's floor; an interactive service's on a spot pool only
    when no other can run (all of it on spot, one reclaim would take it down). Returns the split
    and its reason."""
    total = spec.replicas.fixed if spec.replicas.fixed is not None else spec.replicas.min
    pool_map = convert.pool_specs(pools)
    floor = spec.quality.floor if spec.quality is not None else None
    placeable = [
        convert.variant_spec(v)
        for v in spec.variants
        if v.node_pool in pools
        and (floor is None or (v.quality is not None and v.quality >= floor))
    ]
    split = {v.name: 0 for v in spec.variants}
    if not placeable:
        if floor is not None:
            return (
                split,
                f"no variant at or above quality.floor {floor:g} has an existing node pool",
            )
        return split, "no variant has an existing node pool"
    if spec.slo.slo_class is not v1alpha1.SloClass.BATCH:
        placeable = [v for v in placeable if not pool_map[v.pool].spot] or placeable
    cheapest = min(
        placeable, key=lambda v: pricing.usd_per_rps_hour(v, pool_map[v.pool], v.capacity_rps)
    )
    split[cheapest.name] = total
    source = "replicas.fixed" if spec.replicas.fixed is not None else "replicas.min"
    return split, f"{source}={total} on variant {cheapest.name} (lowest cost per request/s)"


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
    window_s: float = 60.0,
) -> Outcome:
    """Bring the service's Deployments, status and Events in line with its spec and the
    planner's decision (without one, or with replicas.fixed set: the baseline split).

    Pods the scheduler has refused for longer than twice their pool's provisioning time plus
    `grace_s` are reported (CapacityAvailable=False): a node that never takes them (a foreign
    taint, a too-small shape) is a fault no added node can fix. ``window_s``, the range of the
    rates' rate(), sets their counting noise: a status is not rewritten for noise."""
    outcome = Outcome()
    if isinstance(view, service_view.InvalidService):
        _report_invalid(view, ports, now, outcome)
        return outcome
    plan, recommended, plan_reason = _plan(view, pools, decision)
    applied, rejected = _apply_variants(view, pools, plan, plan_reason, ports, outcome)
    _delete_removed_variants(view, ports, outcome)
    wanted: Mapping[str, int] | None = None
    if view.spec.routing is not None:
        # The planner's weights are for its replicas: a held service, or one at replicas.fixed,
        # routes by the replicas it runs.
        planned = decision is not None and not view.held and view.spec.replicas.fixed is None
        wanted = _route_weights(view, decision.weights if planned and decision else None, applied)
    route_rejected, weights = _apply_routing(view, wanted, plan_reason, ports, outcome)
    rejected += route_rejected
    unschedulable = _unschedulable_message(view.spec, pools, view.stuck, grace_s)
    missing_pools = sorted({v.node_pool for v in view.spec.variants if v.node_pool not in pools})
    status = service_status.service_status(
        view=view,
        unschedulable=unschedulable,
        pools=pools,
        plan=recommended,
        plan_reason=plan_reason,
        observed=decision.metrics if decision else None,
        asleep=decision.asleep if decision else False,
        applied=applied,
        missing_pools=missing_pools,
        rejected=rejected,
        now=now,
        quality=decision.quality if decision else None,
        floor_usd_per_hour=decision.floor_usd_per_hour if decision else None,
        weights=weights,
        window_s=window_s,
        capacity_rps=decision.capacity_rps if decision else None,
    )
    previous_conditions = (view.body.get("status") or {}).get("conditions") or []
    if not _had_condition(previous_conditions, "CapacityAvailable", "False"):
        if missing_pools:
            message = service_status.missing_pools_message(missing_pools)
            _event(ports, view.body, "Warning", "NodePoolNotFound", message, outcome)
        if unschedulable:
            _event(ports, view.body, "Warning", "PodsUnschedulable", unschedulable, outcome)
    if decision is not None and decision.memory is not None:
        status["plannerMemory"] = decision.memory
        outcome.memory_changes = decision.memory_changes
    outcome.status = status
    old_status: Mapping[str, Any] = view.body.get("status") or {}
    steady = service_status.settled(old_status, status, window_s)
    outcome.status_changes = service_status.changed_fields(_comparable(old_status, status), steady)
    if outcome.status_changes:
        _write_status(ports, view.body, status, outcome)
    return outcome


def _report_invalid(
    view: service_view.InvalidService, ports: Ports, now: str, outcome: Outcome
) -> None:
    """Ready=False, InvalidSpec: the CRD schema should make this impossible; report, not crash."""
    old_status: Mapping[str, Any] = view.body.get("status") or {}
    invalid = desired.condition(
        "Ready", False, "InvalidSpec", view.error[:900],
        previous=old_status.get("conditions") or [], now=now,
        generation=view.body["metadata"].get("generation"),
    )  # fmt: skip
    outcome.status_changes = ("conditions/Ready",)
    _write_status(ports, view.body, {"conditions": [invalid]}, outcome)


def _plan(
    view: service_view.ServiceView,
    pools: Mapping[str, v1alpha1.InferenceNodePoolSpec],
    decision: ServiceDecision | None,
) -> tuple[dict[str, int], dict[str, int], str]:
    """Replicas per variant to apply and to recommend, and why: the planner's, else the
    baseline; a held service applies the baseline (its Deployments keep their replicas)."""
    plan, plan_reason = baseline_replicas(view.spec, pools)
    recommended = dict(plan)
    if decision is not None and view.spec.replicas.fixed is None:
        recommended, plan_reason = dict(decision.recommended), decision.reason
        if not view.held:
            plan = dict(decision.replicas)
    return plan, recommended, plan_reason


def _apply_variants(
    view: service_view.ServiceView,
    pools: Mapping[str, v1alpha1.InferenceNodePoolSpec],
    plan: Mapping[str, int],
    plan_reason: str,
    ports: Ports,
    outcome: Outcome,
) -> tuple[dict[str, int], list[str]]:
    """Apply each variant's Deployment where it differs; returns the replicas each variant now
    has and the API server's rejections."""
    current = {d.variant: d for d in view.owned}
    previous_conditions = (view.body.get("status") or {}).get("conditions") or []
    applied_replicas: dict[str, int] = {}
    rejected: list[str] = []
    for variant in view.spec.variants:
        pool = pools.get(variant.node_pool)
        existing = current.get(variant.name)
        if pool is None:
            applied_replicas[variant.name] = existing.replicas if existing else 0
            continue
        replicas = plan[variant.name]
        if view.held and existing is not None:
            replicas = existing.replicas
        elif existing is not None and existing.replicas_set_by:
            message = (
                f"Deployment {existing.name}: replicas set to {existing.replicas} by "
                f"{existing.replicas_set_by}; infscale sets them ({replicas} now): remove the "
                "other autoscaler (an HPA or a KEDA ScaledObject on it), or set spec.mode: "
                "Recommend to let it scale"
            )
            _event(ports, view.body, "Warning", "ReplicasOverridden", message, outcome)
        manifest = desired.deployment(
            service=view.spec,
            service_name=view.name,
            namespace=view.namespace,
            owner_uid=view.body["metadata"]["uid"],
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
            if not _reported(previous_conditions, str(error)):
                _event(ports, view.body, "Warning", "DeploymentRejected", str(error), outcome)
            continue
        outcome.applied.append(manifest["metadata"]["name"])
        before = existing.replicas if existing else 0
        if before != replicas:
            message = f"variant {variant.name}: {before} -> {replicas} replicas ({plan_reason})"
            _event(ports, view.body, "Normal", "Scaled", message, outcome)
    return applied_replicas, rejected


def _route_weights(
    view: service_view.ServiceView, weights: Mapping[str, int] | None, plan: Mapping[str, int]
) -> dict[str, int]:
    """The planner's weights for every variant; without them (no metrics source, or the planner
    held), the same rule over the replicas applied, at the spec's capacities."""
    spec = view.spec
    if weights:
        return {v.name: int(weights.get(v.name, 0)) for v in spec.variants}
    ready = {d.variant: d.ready_replicas for d in view.owned}
    service = convert.service_spec(view.namespace, view.name, spec, sum(plan.values()))
    capacity = {v.name: v.capacity_rps for v in service.variants}
    return traffic.weights(service, plan, ready, capacity)


_MODE = {
    v1alpha1.QualityMode.PER_REQUEST: "per request",
    v1alpha1.QualityMode.AVERAGE: "on average",
}


def _apply_routing(
    view: service_view.ServiceView,
    weights: Mapping[str, int] | None,
    reason: str,
    ports: Ports,
    outcome: Outcome,
) -> tuple[list[str], Mapping[str, int] | None]:
    """With spec.routing, one Service per variant and the HTTPRoute weighted as the plan says
    (a change of weight the route took is an Event, with the decision's reason); returns the
    API server's rejections (reported like a rejected Deployment) and the weights the route
    has: the last ones it took when it refused these."""
    spec, routing = view.spec, view.spec.routing
    old_weights = {
        v.get("name"): v["weight"]
        for v in (view.body.get("status") or {}).get("variants") or []
        if "weight" in v
    }
    if ports.routes is None:
        return [], weights
    if routing is None:
        # Routing just turned off (the last status has route weights): remove what it made.
        old_variants = (view.body.get("status") or {}).get("variants") or []
        if any("weight" in v for v in old_variants):
            uid = view.body["metadata"]["uid"]
            ports.routes.delete("HTTPRoute", view.namespace, view.name, uid)
            for v in old_variants:
                name = f"{view.name}-{v.get('name')}"
                ports.routes.delete("Service", view.namespace, name, uid)
        return [], weights
    owner = view.body["metadata"]["uid"]
    # Variants gone from the spec: their Services too, whether or not they ever had a Deployment.
    wanted = {v.name for v in spec.variants}
    for gone in sorted(({*old_weights} | {d.variant for d in view.owned}) - wanted):
        ports.routes.delete("Service", view.namespace, f"{view.name}-{gone}", owner)
    manifests = [
        desired.variant_service(
            routing=routing,
            service_name=view.name,
            namespace=view.namespace,
            owner_uid=owner,
            variant=v.name,
        )
        for v in spec.variants
    ]
    manifests.append(
        desired.http_route(
            routing=routing,
            service_name=view.name,
            namespace=view.namespace,
            owner_uid=owner,
            weights=weights or {},
        )
    )
    rejected = []
    route_taken = True
    for manifest in manifests:
        try:
            ports.routes.apply(manifest)
        except errors.ClusterError as error:
            rejected.append(str(error))
            route_taken = manifest["kind"] != "HTTPRoute"
            previous = (view.body.get("status") or {}).get("conditions") or []
            if not _reported(previous, str(error)):
                _event(ports, view.body, "Warning", "RouteRejected", str(error), outcome)
    if not route_taken:
        return rejected, old_weights or None
    if old_weights and weights and old_weights != dict(weights):
        moves = ", ".join(
            f"{name} {old_weights.get(name, 0)} -> {w} %"
            for name, w in weights.items()
            if old_weights.get(name, 0) != w
        )
        floor = spec.quality
        why = "" if floor is None else f"; quality floor {floor.floor:g} {_MODE[floor.mode]}"
        message = f"route weights: {moves}{why} ({reason})"
        _event(ports, view.body, "Normal", "Rerouted", message, outcome)
    return rejected, weights


def _reported(conditions: Sequence[Mapping[str, Any]], rejection: str) -> bool:
    """Whether the last status already carries this rejection: the Ready condition joins all of
    them (cut at 1,000 characters), so one that is still there is no news for an Event."""
    return any(
        c.get("reason") == "DeploymentRejected" and rejection[:200] in str(c.get("message"))
        for c in conditions
    )


def _delete_removed_variants(
    view: service_view.ServiceView, ports: Ports, outcome: Outcome
) -> None:
    """Delete the Deployments of variants no longer in the spec."""
    wanted_variants = {v.name for v in view.spec.variants}
    for deployment in view.owned:
        if deployment.variant not in wanted_variants:
            ports.workloads.delete_deployment(view.namespace, deployment.name)
            outcome.deleted.append(deployment.name)
            _event(
                ports, view.body, "Normal", "VariantRemoved",
                f"deleted Deployment {deployment.name}: variant {deployment.variant} "
                "is no longer in the spec", outcome,
            )  # fmt: skip


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
