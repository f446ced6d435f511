"""One reconcile pass: every service, then every node pool, from one snapshot of the cluster.

Free of kopf and of the loop that runs it (`runtime.Runtime`); a failing service or pool does
not stop the others.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pydantic

from infscale.api import v1alpha1
from infscale.controller import (
    convert,
    pool_reconciler,
    power_figures,
    service_reconciler,
    service_view,
    telemetry,
    wiring,
)
from infscale.controller.decisions import OwnedDeployment, PoolPlan, ServiceDecision, StuckPod
from infscale.controller.settings import OperatorSettings
from infscale.domain import model
from infscale.domain import nodes as node_rules
from infscale.labels import FIELD_MANAGER, SERVICE_LABEL, SPEC_HASH_ANNOTATION, VARIANT_LABEL
from infscale.ports import errors

LOG = logging.getLogger(__name__)


def _owned(body: Mapping[str, Any]) -> OwnedDeployment:
    metadata = body.get("metadata", {})
    return OwnedDeployment(
        name=metadata["name"],
        variant=(metadata.get("labels") or {}).get(VARIANT_LABEL, ""),
        replicas=int(body.get("spec", {}).get("replicas") or 0),
        ready_replicas=int((body.get("status") or {}).get("readyReplicas") or 0),
        spec_hash=(metadata.get("annotations") or {}).get(SPEC_HASH_ANNOTATION),
        replicas_set_by=_replicas_writer(metadata),
    )


def _replicas_writer(metadata: Mapping[str, Any]) -> str | None:
    """The field manager other than infscale that owns ``spec.replicas`` (server-side apply's
    bookkeeping): it set them after infscale's last apply, which takes them back."""
    for entry in metadata.get("managedFields") or []:
        if entry.get("manager") == FIELD_MANAGER:
            continue
        if "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {}):
            through = f" through /{entry['subresource']}" if entry.get("subresource") else ""
            return f"{entry.get('manager', 'an unnamed writer')}{through}"
    return None


class Cycle:
    """Reconciles every service and pool through the adapters; writes only while `may_act()`."""

    def __init__(
        self,
        settings: OperatorSettings,
        adapters: wiring.Adapters,
        may_act: Callable[[], bool] = lambda: True,
    ) -> None:
        self.settings = settings
        self.deployments = adapters.deployments
        self.ports = adapters.service_ports
        self.nodes = adapters.nodes
        self.pool_ports = adapters.pool_ports
        self.decider = adapters.decider
        self.may_act = may_act
        # Per pool, the nodes the last cycle listed and did not remove: one missing from the
        # next listing left on its own (an interruption).
        self.pool_members: dict[str, frozenset[str]] = {}
        self._answered: power_figures.Answered = {}  # price and carbon queries' last answers

    def run(
        self,
        services: Iterable[Mapping[str, Any]],
        pool_bodies: Mapping[str, Mapping[str, Any]],
    ) -> None:
        """One reconcile of every service; a failing service does not stop the others.

        Deployments are listed fresh from the API server (one call): replicas decided last
        cycle must be seen as they are now, not as a watch cache last saw them.
        """
        owned: dict[tuple[str, str], list[OwnedDeployment]] = {}
        for deployment in self.deployments.list_owned():
            labels = deployment["metadata"].get("labels") or {}
            key = (deployment["metadata"]["namespace"], labels.get(SERVICE_LABEL, ""))
            owned.setdefault(key, []).append(_owned(deployment))
        specs: dict[str, v1alpha1.InferenceNodePoolSpec] = {}
        for name, pool_body in pool_bodies.items():
            try:
                specs[name] = v1alpha1.InferenceNodePool.model_validate(pool_body).spec
            except pydantic.ValidationError as error:
                LOG.error("InferenceNodePool %s is unreadable, treated as missing: %s", name, error)
        now_s = time.time()  # one clock reading for the whole cycle
        now = pool_reconciler.format_time(now_s)
        specs, figures = power_figures.resolve(
            specs, self.decider.source, convert.hour_utc(now_s), self._answered
        )
        pods = self.nodes.pods()  # one list per cycle, for the services and the pools
        managed = [p for p in pods if SERVICE_LABEL in (p["metadata"].get("labels") or {})]
        stuck = stuck_pods(managed, now_s)
        views = []
        for body in services:
            key = (body["metadata"]["namespace"], body["metadata"]["name"])
            if not self.settings.namespaces or key[0] in self.settings.namespaces:
                views.append(service_view.read(body, owned.get(key, ()), stuck.get(key, ())))
        decisions, pool_plans = self.decide(views, specs, owned, now_s)
        if self.decider.source is not None:
            telemetry.PROMETHEUS_QUERIES.set(self.decider.source.queries_issued)
        # Services are written by a bounded pool of threads (the API round trips dominate a
        # cycle of many services); each write still checks leadership first.
        workers = min(self.settings.write_concurrency, max(1, len(views)))
        with concurrent.futures.ThreadPoolExecutor(workers, "reconcile") as pool:
            statuses = list(
                pool.map(lambda view: self._reconcile_service(view, specs, now, decisions), views)
            )
        if not self.may_act():
            LOG.warning("leadership lost mid-cycle: no further writes")
            return
        telemetry.keep_services([view.key for view in views])
        held = self._held_pools(views, decisions) if self.decider.source is not None else {}
        serving = _serving(views, statuses)
        self.pools_cycle(
            pool_bodies, specs, pool_plans, now_s, pods, managed, held, serving, figures
        )

    def _reconcile_service(
        self,
        view: service_view.ServiceView | service_view.InvalidService,
        specs: Mapping[str, v1alpha1.InferenceNodePoolSpec],
        now: str,
        decisions: Mapping[tuple[str, str], ServiceDecision],
    ) -> Mapping[str, Any] | None:
        """One service's writes and the status written; a failure is logged and counted, never
        raised (None)."""
        namespace, name = view.key
        if not self.may_act():
            return None
        try:
            outcome = service_reconciler.reconcile(
                view,
                specs,
                self.ports,
                now,
                decisions.get(view.key),
                grace_s=2 * self.settings.interval_seconds + 10,
                window_s=self.settings.metrics_rate_window_seconds,
            )
        except errors.ClusterError as error:
            telemetry.ERRORS.labels("service").inc()
            LOG.error("reconciling %s/%s failed: %s", namespace, name, error)
            return None
        telemetry.record_service(namespace, name, outcome.status)
        if outcome.status_written:
            for field in outcome.status_changes:
                telemetry.STATUS_WRITES.labels(field).inc()
        if "Scaled" in outcome.events:
            telemetry.DECISIONS.labels(namespace, name).inc()
        if outcome.writes:
            LOG.info("%s/%s reconciled: %s", namespace, name, outcome.summary())
        return outcome.status

    def decide(
        self,
        views: Sequence[service_view.ServiceView | service_view.InvalidService],
        pools: Mapping[str, v1alpha1.InferenceNodePoolSpec],
        owned: Mapping[tuple[str, str], list[OwnedDeployment]],
        now_s: float,
    ) -> tuple[dict[tuple[str, str], ServiceDecision], dict[str, PoolPlan]]:
        """The planner's decisions; if it fails, every service holds what it runs.

        Without a metrics source there is nothing to plan from: every service gets the baseline
        (its minimum, or the `kubectl scale` total, on its cheapest variant). An invalid service
        is left out (its reconcile reports it).
        """
        if self.decider.source is None:
            return {}, {}
        inputs = [v for v in views if isinstance(v, service_view.ServiceView)]
        try:
            return self.decider.decide(inputs, pools, owned, now_s)
        except Exception as error:
            LOG.exception("the planner failed; every service holds its replicas")
            held = {}
            for service in inputs:
                current = {d.variant: d.replicas for d in owned.get(service.key, [])}
                held[service.key] = ServiceDecision(
                    replicas=current,
                    reason=f"planner failed ({type(error).__name__}): holding replicas",
                    recommended=current,
                )
            return held, {}

    @staticmethod
    def _held_pools(
        views: Sequence[service_view.ServiceView | service_view.InvalidService],
        decisions: Mapping[tuple[str, str], ServiceDecision],
    ) -> dict[str, str]:
        """Pools that start no node removal this cycle, and why: those a service runs on whose
        request rate is unknown (Prometheus down or silent; a sleeping service is known idle)."""
        held: dict[str, str] = {}
        for view in views:
            if not isinstance(view, service_view.ServiceView):
                continue
            decision = decisions.get(view.key)
            if decision is None:
                continue
            if decision.asleep or (decision.metrics is not None and decision.metrics.available):
                continue
            for variant in view.spec.variants:
                held.setdefault(variant.node_pool, f"{view.namespace}/{view.name} has no metrics")
        return held

    def pools_cycle(
        self,
        pool_bodies: Mapping[str, Mapping[str, Any]],
        specs: Mapping[str, v1alpha1.InferenceNodePoolSpec],
        pool_plans: Mapping[str, PoolPlan],
        now_s: float,
        pods: Sequence[Mapping[str, Any]],
        managed_pods: Sequence[Mapping[str, Any]],
        held: Mapping[str, str] | None = None,
        serving: Mapping[str, Sequence[tuple[model.VariantSpec, int, float | None]]] | None = None,
        figures: Mapping[str, power_figures.Figures] | None = None,
    ) -> None:
        """Every pool follows the pods that need it; a failing pool does not stop the others."""
        if not specs:
            return
        all_nodes = self.nodes.nodes()
        managed = [dict(p) for p in managed_pods]
        by_node: dict[str, list[dict[str, Any]]] = {}
        for pod in pods:
            if pod["spec"].get("nodeName"):
                by_node.setdefault(pod["spec"]["nodeName"], []).append(dict(pod))
        for name, spec in specs.items():
            if self.settings.pools and name not in self.settings.pools:
                continue  # another shard's pool
            if not self.may_act():
                return
            limits = node_rules.PoolLimits(
                min_nodes=spec.min_nodes,
                max_nodes=spec.max_nodes,
                max_change_per_cycle=self.settings.max_node_changes_per_cycle,
                scale_down_cooldown_s=self.settings.node_scale_down_cooldown_seconds,
                provisioning_s=spec.provisioning_seconds,
            )
            members = [n for n in all_nodes if pool_reconciler.is_member(n, name, spec)]
            try:
                outcome = pool_reconciler.reconcile_pool(
                    name,
                    pool_bodies[name],
                    members,
                    by_node,
                    managed,
                    self.pool_ports,
                    limits,
                    now_s,
                    pool_plans.get(name, PoolPlan()),
                    (held or {}).get(name, ""),
                    (serving or {}).get(name, ()),
                    self.pool_members.get(name),
                    (figures or {}).get(name),
                )
            except errors.ClusterError as error:
                telemetry.ERRORS.labels("pool").inc()
                LOG.error("reconciling pool %s failed: %s", name, error)
                continue
            self.pool_members[name] = outcome.members - set(outcome.deleted)
            status = outcome.status
            telemetry.record_pool(
                name,
                int(status.get("readyNodes") or 0),
                int(status.get("desiredNodes") or 0),
                float(status.get("usdPerHour") or 0.0),
                status.get("powerWatts"),
                status.get("usdPerKwh"),
                status.get("gramsCo2PerKwh"),
                status.get("standbyNodes"),
            )
            if outcome.created or outcome.deleted or outcome.held:
                LOG.info("pool %s: %s", name, outcome)


def _serving(
    views: Sequence[service_view.ServiceView | service_view.InvalidService],
    statuses: Sequence[Mapping[str, Any] | None],
) -> dict[str, list[tuple[model.VariantSpec, int, float | None]]]:
    """Per pool, the Ready replicas of each variant on it and what they draw, from the statuses
    just written."""
    serving: dict[str, list[tuple[model.VariantSpec, int, float | None]]] = {}
    for view, status in zip(views, statuses, strict=True):
        if not isinstance(view, service_view.ServiceView) or status is None:
            continue
        listed = {v.get("name"): v for v in status.get("variants") or []}
        for variant in map(convert.variant_spec, view.spec.variants):
            seen = listed.get(variant.name) or {}
            ready = int(seen.get("readyReplicas") or 0)
            if ready > 0:
                watts = seen.get("powerWatts")
                serving.setdefault(variant.pool, []).append(
                    (variant, ready, None if watts is None else float(watts))
                )
    return serving


def stuck_pods(
    pods: Iterable[Mapping[str, Any]], now_s: float
) -> dict[tuple[str, str], list[StuckPod]]:
    """Managed pods the scheduler refused, per (namespace, service)."""
    stuck: dict[tuple[str, str], list[StuckPod]] = {}
    for pod in pods:
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if (
                condition.get("type") == "PodScheduled"
                and condition.get("reason") == "Unschedulable"
            ):
                created = pool_reconciler.parse_time(meta.get("creationTimestamp")) or now_s
                key = (meta["namespace"], labels.get(SERVICE_LABEL, ""))
                stuck.setdefault(key, []).append(
                    StuckPod(
                        variant=labels.get(VARIANT_LABEL, ""),
                        unschedulable_s=now_s - created,
                        message=str(condition.get("message") or "no reason given"),
                    )
                )
    return stuck
