"""Reconciles one InferenceNodePool: nodes follow what the pods need, safely.

Each cycle: finish provisioning (drop the startup taint of nodes that became Ready), mark when
nodes became empty, decide (`infscale.domain.nodes.decide`), apply (create, cancel drains, start
drains), advance drains (evict through the Eviction API, delete a node only once no pod but
DaemonSet pods is left and no foreign pod ever was), and report in status and Events. Every
marker lives on the node or in the pool's status, so a restarted operator continues where the
last one stopped.

A provider may remove a node later than it is asked to (clusterapi: Cluster API drains and
deletes the Machine's node). Such a node is marked `infscale.dev/removing-since`: it is leaving,
so it is neither counted as active nor revived; it still costs until it is gone, and the
(idempotent) removal is asked for again each cycle in case someone undid it. Likewise nodes asked
for that have not appeared yet (`pending_nodes`) count as provisioning nodes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from infscale.api import quantity, v1alpha1
from infscale.controller import convert, desired, power_figures, service_status
from infscale.controller.decisions import PoolPlan
from infscale.domain import energy, model, pricing
from infscale.domain import nodes as node_rules
from infscale.labels import (
    DO_NOT_DISRUPT_ANNOTATION,
    DRAINING_ANNOTATION,
    EMPTY_ANNOTATION,
    POOL_LABEL,
    REMOVING_ANNOTATION,
    SERVICE_LABEL,
    STARTUP_TAINT,
    TERMINATION_TAINTS,
)
from infscale.ports import errors, nodepools, reporting

LOG = logging.getLogger(__name__)
Manifest = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class PoolPorts:
    nodes: nodepools.NodeWriter
    providers: Mapping[str, nodepools.NodePoolProvider]
    status: reporting.PoolStatusWriter
    events: reporting.EventRecorder


@dataclasses.dataclass
class PoolOutcome:
    members: frozenset[str] = frozenset()
    """The pool's nodes as listed this cycle (what the next cycle finds gone is compared with)."""
    created: list[str] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)
    held: list[str] = dataclasses.field(default_factory=list)
    reason: str = ""
    status: Manifest = dataclasses.field(default_factory=dict)


parse_time = desired.parse_time
format_time = desired.format_time


def is_member(node: Manifest, pool: str, spec: v1alpha1.InferenceNodePoolSpec) -> bool:
    """Nodes infscale created carry the pool label; others match all of the pool's labels."""
    labels = node["metadata"].get("labels") or {}
    if POOL_LABEL in labels:
        return bool(labels[POOL_LABEL] == pool)
    return bool(spec.node.labels) and all(labels.get(k) == v for k, v in spec.node.labels.items())


def _ready(node: Manifest) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    taints = node.get("spec", {}).get("taints") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) and not any(
        t["key"] == STARTUP_TAINT for t in taints
    )


def _terminal(pod: Manifest) -> bool:
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


def _daemonset_pod(pod: Manifest) -> bool:
    owners = pod["metadata"].get("ownerReferences") or []
    return any(o.get("kind") == "DaemonSet" for o in owners)


def _managed(pod: Manifest) -> bool:
    return SERVICE_LABEL in (pod["metadata"].get("labels") or {})


def _pod_ready(pod: Manifest) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def pod_requests(pod: Manifest) -> dict[str, float]:
    """Summed container requests of a pod, in the units of `infscale.api.quantity`."""
    total: dict[str, float] = {}
    for container in pod["spec"].get("containers", []):
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] = total.get(name, 0.0) + quantity.parse(value)
    return total


def pods_for_pool(
    spec: v1alpha1.InferenceNodePoolSpec, managed: Sequence[Manifest]
) -> list[Manifest]:
    """infscale's live pods whose nodeSelector points at this pool."""
    wanted = spec.node.labels
    return [
        p
        for p in managed
        if wanted
        and not _terminal(p)
        and not p["metadata"].get("deletionTimestamp")
        and all((p["spec"].get("nodeSelector") or {}).get(k) == v for k, v in wanted.items())
    ]


def facts(node: Manifest, pods: Sequence[Manifest]) -> node_rules.NodeFacts:
    meta = node["metadata"]
    annotations = meta.get("annotations") or {}
    live = [p for p in pods if not _terminal(p) and not _daemonset_pod(p)]
    managed = [p for p in live if _managed(p)]
    return node_rules.NodeFacts(
        name=meta["name"],
        ready=_ready(node),
        created_s=parse_time(meta.get("creationTimestamp")) or 0.0,
        cordoned=bool(node.get("spec", {}).get("unschedulable")),
        draining=DRAINING_ANNOTATION in annotations,
        draining_since_s=parse_time(annotations.get(DRAINING_ANNOTATION)),
        protected=annotations.get(DO_NOT_DISRUPT_ANNOTATION) == "true",
        managed_ready_pods=sum(1 for p in managed if _pod_ready(p)),
        managed_other_pods=sum(1 for p in managed if not _pod_ready(p)),
        foreign_pods=len(live) - len(managed),
        empty_since_s=parse_time(annotations.get(EMPTY_ANNOTATION)),
        terminating=any(
            t.get("key") in TERMINATION_TAINTS for t in node.get("spec", {}).get("taints") or []
        ),
    )


def reconcile_pool(
    name: str,
    body: Mapping[str, Any],
    members: Sequence[Manifest],
    pods_by_node: Mapping[str, Sequence[Manifest]],
    managed_pods: Sequence[Manifest],
    ports: PoolPorts,
    limits: node_rules.PoolLimits,
    now_s: float,
    planned: PoolPlan | None = None,
    hold: str = "",
    serving: Sequence[tuple[model.VariantSpec, int, float | None]] = (),
    previous: frozenset[str] | None = None,
    figures: power_figures.Figures | None = None,
) -> PoolOutcome:
    """One cycle of one pool; see the module docstring. ``hold`` (why): no node removal starts
    (a service on the pool has no metrics: nothing is removed on unknown data). ``serving``:
    the Ready replicas on the pool, per variant with what they draw (None: unknown).
    ``previous``: the nodes the last cycle listed and did not remove (None: not known); one of
    them gone now left without infscale, an interruption the Events name. ``figures``: the
    electricity price and carbon intensity in force (status reports them and their source)."""
    spec, outcome = v1alpha1.InferenceNodePool.model_validate(body).spec, PoolOutcome()
    provider = ports.providers[spec.provider.kind]
    old_status: Mapping[str, Any] = body.get("status") or {}

    listed = [n["metadata"]["name"] for n in members]
    members, leaving = _remove_leaving(name, spec, members, provider)
    outcome.members = frozenset(n["metadata"]["name"] for n in members)  # leaving ones go soon
    if provider.owns_nodes:
        _finish_provisioning(members, ports)
    node_facts = _node_facts(members, pods_by_node, ports, now_s, mark=provider.owns_nodes)
    # Nodes asked for that have not appeared yet (clusterapi machines still provisioning) count,
    # so they are not bought twice; never Ready, never drained (never empty for the cool-down).
    pending = provider.pending_nodes(name, spec, listed)
    node_facts += [
        node_rules.NodeFacts(name=f"provisioning-{i + 1}", ready=False, created_s=now_s)
        for i in range(pending)
    ]
    # The plan may ask for nodes before the replicas that need them exist; never fewer than
    # the pods already there need, and its standby nodes beyond those (warm ones run pods of
    # their own, counted with the pods).
    planned = planned or PoolPlan()
    beyond = 0 if spec.standby is not None and spec.standby.warm else planned.standby
    needed = max(_nodes_needed(spec, managed_pods) + beyond, planned.nodes)
    last_up = parse_time(old_status.get("lastScaleUpTime"))
    action = node_rules.decide(
        needed, node_facts, limits, now_s, last_up, provider.owns_nodes, hold
    )
    outcome.reason = action.reason
    since = {n.name: n.draining_since_s for n in node_facts if n.draining_since_s is not None}
    drains = _Drains(body, since, now_s)
    if _apply(name, spec, action, node_facts, pods_by_node, provider, ports, drains, outcome):
        last_up = now_s

    interrupted = _report_interruptions(
        ports, body, previous, listed, node_facts, action.reason, provider.owns_nodes
    )
    changed = bool(outcome.created or outcome.deleted or action.drain or action.uncordon)
    last_change = old_status.get("lastChange")
    if changed:
        last_change = {"time": format_time(now_s), "reason": action.reason}
        _event(ports, body, "Normal", "PoolResized", action.reason)
    status = {
        "observedGeneration": body["metadata"].get("generation"),
        "provider": spec.provider.kind,
        "desiredNodes": min(max(needed, spec.min_nodes), spec.max_nodes),
        **_node_counts(spec, members, node_facts, leaving, outcome),
        "lastChange": last_change,
        "lastScaleUpTime": format_time(last_up) if last_up is not None else None,
        "interruptions": int(old_status.get("interruptions") or 0) + interrupted,
        "interruptionsSince": old_status.get("interruptionsSince") or format_time(now_s),
    }
    if spec.standby is not None:
        status["standbyNodes"] = planned.standby
        status["standbyUsdPerHour"] = round(planned.standby * spec.usd_per_hour, 4)
        status["standbyReason"] = planned.standby_reason or "no service planned on the pool"
    status["conditions"] = [_ready_condition(spec, needed, status, body, now_s)]
    status["powerWatts"] = _power_watts(name, spec, int(status["readyNodes"]), serving)
    status.update(desired.accrued_energy(old_status, format_time(now_s)))
    if figures is not None:
        status["usdPerKwh"] = figures.usd_per_kwh
        status["gramsCo2PerKwh"] = figures.grams_co2_per_kwh
        status["energyFigures"] = figures.source
    outcome.status = status
    # The power moves with the load: it is refreshed with the rest, so a steady pool costs no
    # write (the gauges take it every cycle).
    steady = dict(status)
    if (old_status.get("powerWatts") is None) == (status["powerWatts"] is None):
        steady["powerWatts"] = old_status.get("powerWatts")
    steady.update(service_status.meter_kept(old_status, status))  # written with the rest
    if any(old_status.get(k) != v for k, v in steady.items()):
        ports.status.write_pool_status(name, status)
    return outcome


def _ready_condition(
    spec: v1alpha1.InferenceNodePoolSpec,
    needed: int,
    status: Mapping[str, Any],
    body: Mapping[str, Any],
    now_s: float,
) -> Manifest:
    """``Ready``: the pool has the nodes it is asked for; else whether they are coming or the
    plan needs more than ``maxNodes`` allows (its services stay short until it is raised)."""
    ready, wanted = int(status["readyNodes"]), int(status["desiredNodes"])
    if needed > spec.max_nodes:
        state, reason = False, "AtMaxNodes"
        message = (
            f"the plan needs {needed} node(s) and spec.maxNodes is {spec.max_nodes}: the "
            f"services on this pool are short of capacity until it is raised ({ready} Ready)"
        )
    elif ready >= wanted:
        state, reason, message = True, "NodesReady", f"{ready} of {wanted} node(s) Ready"
    else:
        state, reason = False, "Provisioning"
        message = f"{ready} of {wanted} node(s) Ready, the rest provisioning"
    return desired.condition(
        "Ready",
        state,
        reason,
        message,
        previous=(body.get("status") or {}).get("conditions") or [],
        now=format_time(now_s),
        generation=body["metadata"].get("generation"),
    )


def _power_watts(
    name: str,
    spec: v1alpha1.InferenceNodePoolSpec,
    ready_nodes: int,
    serving: Sequence[tuple[model.VariantSpec, int, float | None]],
) -> float | None:
    """status.powerWatts: the Ready nodes' draw; None when a replica's draw is unknown."""
    known = [(v, n, w) for v, n, w in serving if w is not None]
    if len(known) < len(serving):
        return None
    watts = energy.pool_watts(convert.pool_spec(name, spec), ready_nodes, known)
    return None if watts is None else round(watts, 1)


def _remove_leaving(
    pool: str,
    spec: v1alpha1.InferenceNodePoolSpec,
    members: Sequence[Manifest],
    provider: nodepools.NodePoolProvider,
) -> tuple[list[Manifest], list[Manifest]]:
    """The members that stay, and those marked removing (whose removal is asked for again)."""
    leaving = [
        n for n in members if REMOVING_ANNOTATION in (n["metadata"].get("annotations") or {})
    ]
    for node in leaving:
        try:
            provider.delete_node(pool, spec, node["metadata"]["name"])
        except errors.ClusterError as error:
            LOG.error("%s", error)
    return [n for n in members if n not in leaving], leaving


def _finish_provisioning(members: Sequence[Manifest], ports: PoolPorts) -> None:
    """Drop the startup taint of nodes that became Ready."""
    for node in members:
        taints = node.get("spec", {}).get("taints") or []
        conditions = node.get("status", {}).get("conditions") or []
        became_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        if became_ready and any(t["key"] == STARTUP_TAINT for t in taints):
            kept = [t for t in taints if t["key"] != STARTUP_TAINT]
            ports.nodes.patch_node(node["metadata"]["name"], {"spec": {"taints": kept}})


def _node_facts(
    members: Sequence[Manifest],
    pods_by_node: Mapping[str, Sequence[Manifest]],
    ports: PoolPorts,
    now_s: float,
    mark: bool = True,
) -> list[node_rules.NodeFacts]:
    """Each member's facts, marking (on the node, with ``mark``: infscale's own nodes only)
    since when it is empty."""
    node_facts = []
    for node in members:
        current = facts(node, pods_by_node.get(node["metadata"]["name"], []))
        # "Empty" for removal: no Ready replica of infscale's and no pod of anyone else's. A replica
        # still starting there may be evicted (and starts again on another node).
        empty = current.removable
        annotated = current.empty_since_s is not None
        if mark and empty and not annotated:
            ports.nodes.patch_node(current.name, _annotate(EMPTY_ANNOTATION, format_time(now_s)))
            current = dataclasses.replace(current, empty_since_s=now_s)
        elif mark and not empty and annotated:
            ports.nodes.patch_node(current.name, _annotate(EMPTY_ANNOTATION, None))
            current = dataclasses.replace(current, empty_since_s=None)
        node_facts.append(current)
    return node_facts


def _nodes_needed(spec: v1alpha1.InferenceNodePoolSpec, managed_pods: Sequence[Manifest]) -> int:
    """Nodes of the pool's shape that infscale's pods bound to it need (those that fit one)."""
    shape = quantity.node_resources(spec.node.capacity)
    pods = [(quantity.pod_resources(pod_requests(p)), 1) for p in pods_for_pool(spec, managed_pods)]
    return pricing.nodes_needed([p for p in pods if p[0].fits_per_node(shape) > 0], shape)


DRAIN_WARNING_S = 600.0
"""A drain still under way after this long is named in a Warning Event: its node stays billed."""


@dataclasses.dataclass(frozen=True)
class _Drains:
    """The pool, since when each of its nodes drains, and the time now."""

    body: Mapping[str, Any]
    since_s: Mapping[str, float]
    now_s: float

    def stuck(self, ports: PoolPorts, node: str, why: str) -> None:
        """Warn when ``node`` has drained for longer than ``DRAIN_WARNING_S`` (the same message
        each cycle: the Event's count rises)."""
        since_s = self.since_s.get(node)
        if since_s is not None and self.now_s - since_s > DRAIN_WARNING_S:
            message = (
                f"node {node} has drained for over {DRAIN_WARNING_S / 60:.0f} min and is still "
                f"billed: {why}"
            )
            _event(ports, self.body, "Warning", "DrainStuck", message)


def _apply(
    pool: str,
    spec: v1alpha1.InferenceNodePoolSpec,
    action: node_rules.PoolAction,
    node_facts: Sequence[node_rules.NodeFacts],
    pods_by_node: Mapping[str, Sequence[Manifest]],
    provider: nodepools.NodePoolProvider,
    ports: PoolPorts,
    drains: _Drains,
    outcome: PoolOutcome,
) -> bool:
    """Uncordon, create, start drains, advance drains; whether nodes were asked for."""
    now_s = drains.now_s
    for node_name in action.uncordon:
        ports.nodes.patch_node(
            node_name,
            {"spec": {"unschedulable": None}, **_annotate(DRAINING_ANNOTATION, None)},
        )
    if action.create:
        outcome.created = provider.create_nodes(pool, spec, action.create)
    for node_name in action.drain:
        ports.nodes.patch_node(
            node_name,
            {
                "spec": {"unschedulable": True},
                **_annotate(DRAINING_ANNOTATION, format_time(now_s)),
            },
        )
    draining = {n.name for n in node_facts if n.draining and n.name not in action.uncordon}
    draining |= set(action.drain)
    for node_name in sorted(draining):
        _advance_drain(
            pool, spec, node_name, pods_by_node.get(node_name, []), provider, ports, outcome, drains
        )
    for node_name in outcome.deleted:
        # Gone already (kwok: the patch finds nothing) or leaving soon (clusterapi).
        ports.nodes.patch_node(node_name, _annotate(REMOVING_ANNOTATION, format_time(now_s)))
    return bool(action.create)


def _node_counts(
    spec: v1alpha1.InferenceNodePoolSpec,
    members: Sequence[Manifest],
    node_facts: Sequence[node_rules.NodeFacts],
    leaving: Sequence[Manifest],
    outcome: PoolOutcome,
) -> Manifest:
    """status.readyNodes, usdPerHour (every node that costs, leaving ones too), allocatable."""
    ready = sum(1 for n in node_facts if n.ready and n.name not in outcome.deleted)
    count = len(node_facts) - len(outcome.deleted) + len(outcome.created) + len(leaving)
    allocatable: dict[str, float] = {}
    for node in members:
        if _ready(node) and node["metadata"]["name"] not in outcome.deleted:
            for key, value in (node.get("status", {}).get("allocatable") or {}).items():
                allocatable[key] = allocatable.get(key, 0.0) + quantity.parse(value)
    return {
        "readyNodes": ready,
        "usdPerHour": round(count * spec.usd_per_hour, 4),
        "allocatable": {k: _quantity_text(k, v) for k, v in sorted(allocatable.items())},
    }


def _advance_drain(
    pool: str,
    spec: v1alpha1.InferenceNodePoolSpec,
    node: str,
    pods: Sequence[Manifest],
    provider: nodepools.NodePoolProvider,
    ports: PoolPorts,
    outcome: PoolOutcome,
    drains: _Drains,
) -> None:
    live = [p for p in pods if not _terminal(p) and not _daemonset_pod(p)]
    foreign = [p for p in live if not _managed(p)]
    if foreign:
        outcome.held.append(node)
        LOG.warning("node %s holds pods infscale does not own; it stays", node)
        drains.stuck(ports, node, f"it holds pods infscale does not own ({_names(foreign)})")
        return
    refused = []
    for pod in live:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        why = ports.nodes.evict(meta["namespace"], meta["name"])
        if why:
            refused.append(why)
    if refused or any(not p["metadata"].get("deletionTimestamp") for p in live):
        if refused:
            outcome.held.append(node)
            LOG.info("node %s held: %s", node, "; ".join(refused))
            drains.stuck(ports, node, "; ".join(sorted(refused)))
        return
    if live:
        drains.stuck(ports, node, f"pods still terminating ({_names(live)})")
        return  # evicted pods are still terminating
    try:
        provider.delete_node(pool, spec, node)
    except errors.ClusterError as error:
        LOG.error("%s", error)
        return
    outcome.deleted.append(node)


def _names(pods: Sequence[Manifest]) -> str:
    return ", ".join(sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods))


def _annotate(key: str, value: str | None) -> Manifest:
    return {"metadata": {"annotations": {key: value}}}


def _quantity_text(name: str, value: float) -> int | str:
    if name == "memory" or name.endswith("storage"):
        return f"{value / 2**30:.0f}Gi"
    return int(value) if float(value).is_integer() else f"{value * 1000:.0f}m"


def _report_interruptions(
    ports: PoolPorts,
    body: Mapping[str, Any],
    previous: frozenset[str] | None,
    listed: Sequence[str],
    node_facts: Sequence[node_rules.NodeFacts],
    decided: str,
    owns_nodes: bool,
) -> int:
    """A Warning Event for each node that left without infscale removing it, and for each node
    with a termination notice (the same notice again only counts the first Event up). On a pool
    whose nodes another autoscaler sizes (external, static), a node leaving is routine: a Normal
    Event, so that alerts on Warnings do not fire on every scale-down of Karpenter's. Returns
    how many left as interruptions."""
    left = sorted((previous or frozenset()) - set(listed))
    for gone in left:
        if owns_nodes:
            _event(ports, body, "Warning", "NodeInterrupted",
                   f"node {gone} left the pool without infscale removing it (a spot "
                   f"interruption or a deletion by someone else); {decided}")  # fmt: skip
        else:
            _event(ports, body, "Normal", "NodeLeft",
                   f"node {gone} left the pool (its nodes are sized outside infscale); "
                   f"{decided}")  # fmt: skip
    for node in node_facts:
        if node.terminating:
            _event(ports, body, "Warning", "NodeInterrupted",
                   f"node {node.name} has a termination notice: counted as gone, its "
                   "replacement ordered while it still serves")  # fmt: skip
    return len(left) if owns_nodes else 0


def _event(ports: PoolPorts, body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
    LOG.info("pool %s %s: %s", body["metadata"]["name"], reason, message)
    ports.events.record(dict(body), kind, reason, message)
