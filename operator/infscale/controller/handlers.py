"""kopf wiring: indexes of services, pools and owned Deployments, and one reconcile loop.

The handlers only keep indexes and wake the loop; every decision is made by a single cycle over
all services (`Runtime.cycle`). No change-tracking handler is used, so kopf writes nothing to the
user's objects (no finalizers, no annotations): infscale writes only their status.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import kopf
import pydantic
from kubernetes import client

from infscale.adapters import cluster_nodes, pools_fixed, pools_kwok
from infscale.adapters import deployments as deployments_adapter
from infscale.adapters import reporting as reporting_adapter
from infscale.api import v1alpha1
from infscale.controller import desired, pools, reconciler
from infscale.controller.settings import OperatorSettings
from infscale.domain import nodes as node_rules
from infscale.ports import errors

LOG = logging.getLogger(__name__)
SERVICES = (v1alpha1.GROUP, v1alpha1.VERSION, "inferenceservices")
POOLS = (v1alpha1.GROUP, v1alpha1.VERSION, "inferencenodepools")


def _plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """A detached copy of an object, safe to read from another thread."""
    return copy.deepcopy(dict(body))


def _owned(body: Mapping[str, Any]) -> reconciler.OwnedDeployment:
    metadata = body.get("metadata", {})
    return reconciler.OwnedDeployment(
        name=metadata["name"],
        variant=(metadata.get("labels") or {}).get(desired.VARIANT_LABEL, ""),
        replicas=int(body.get("spec", {}).get("replicas") or 0),
        ready_replicas=int((body.get("status") or {}).get("readyReplicas") or 0),
        spec_hash=(metadata.get("annotations") or {}).get(desired.SPEC_HASH_ANNOTATION),
    )


class Runtime:
    """The loop: wakes on changes or every interval, snapshots the indexes, reconciles all."""

    def __init__(self, settings: OperatorSettings, api_client: client.ApiClient) -> None:
        self.settings = settings
        self.ports = reconciler.Ports(
            workloads=deployments_adapter.KubernetesDeployments(api_client),
            status=(reporter := reporting_adapter.KubernetesReporter(api_client)),
            events=reporter,
        )
        self.nodes = cluster_nodes.ClusterNodes(api_client)
        self.pool_ports = pools.PoolPorts(
            nodes=self.nodes,
            providers={
                "kwok": pools_kwok.KwokPools(api_client),
                "external": pools_fixed.FixedPools("external"),
                "static": pools_fixed.FixedPools("static"),
                "clusterapi": pools_fixed.FixedPools("clusterapi (not supported yet)"),
            },
            status=reporter,
            events=reporter,
        )
        self._wakeup = asyncio.Event()
        self._indexes: dict[str, kopf.Index[Any, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wakeup.set()

    def start(self, indexes: dict[str, kopf.Index[Any, Any]]) -> None:
        self._indexes = indexes
        self._task = asyncio.create_task(self._run(), name="infscale-reconcile-loop")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        # kopf calls event handlers only after every index is filled: the first wake-up means the
        # snapshot is complete.
        await self._wakeup.wait()
        while True:
            await asyncio.sleep(self.settings.debounce_seconds)
            self._wakeup.clear()
            snapshot = self._snapshot()
            try:
                await asyncio.to_thread(self.cycle, *snapshot)
            except Exception:
                LOG.exception("reconcile cycle failed; retrying next cycle")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.settings.interval_seconds)

    def _snapshot(
        self,
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[Any, list[Any]]]:
        services = [_plain(b) for store in self._indexes["services"].values() for b in store]
        pools = {k: _plain(b) for k, store in self._indexes["pools"].items() for b in store}
        owned = {k: list(store) for k, store in self._indexes["deployments"].items()}
        return services, pools, owned

    def cycle(
        self,
        services: Iterable[Mapping[str, Any]],
        pool_bodies: Mapping[str, Mapping[str, Any]],
        owned: Mapping[tuple[str, str], list[reconciler.OwnedDeployment]],
    ) -> None:
        """One reconcile of every service; a failing service does not stop the others."""
        pools = {}
        for name, body in pool_bodies.items():
            try:
                pools[name] = v1alpha1.InferenceNodePool.model_validate(body).spec
            except pydantic.ValidationError as error:
                LOG.error("InferenceNodePool %s is unreadable, treated as missing: %s", name, error)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for body in services:
            namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
            if self.settings.namespaces and namespace not in self.settings.namespaces:
                continue
            try:
                outcome = reconciler.reconcile_service(
                    body, pools, owned.get((namespace, name), []), self.ports, now
                )
            except errors.ClusterError as error:
                LOG.error("reconciling %s/%s failed: %s", namespace, name, error)
                continue
            if outcome.writes:
                LOG.info("%s/%s reconciled: %s", namespace, name, outcome)
        self.pools_cycle(pool_bodies, pools)

    def pools_cycle(
        self,
        pool_bodies: Mapping[str, Mapping[str, Any]],
        specs: Mapping[str, v1alpha1.InferenceNodePoolSpec],
    ) -> None:
        """Every pool follows the pods that need it; a failing pool does not stop the others."""
        if not specs:
            return
        all_nodes, scheduled = self.nodes.snapshot()
        managed = [
            p for p in self.nodes.managed_pods() if desired.SERVICE_LABEL in p["metadata"]["labels"]
        ]
        by_node: dict[str, list[dict[str, Any]]] = {}
        for pod in scheduled:
            by_node.setdefault(pod["spec"]["nodeName"], []).append(pod)
        now = time.time()
        for name, spec in specs.items():
            limits = node_rules.PoolLimits(
                min_nodes=spec.min_nodes,
                max_nodes=spec.max_nodes,
                max_change_per_cycle=self.settings.max_node_changes_per_cycle,
                scale_down_cooldown_s=self.settings.node_scale_down_cooldown_seconds,
            )
            members = [n for n in all_nodes if pools.is_member(n, name, spec)]
            try:
                outcome = pools.reconcile_pool(
                    name, pool_bodies[name], members, by_node, managed, self.pool_ports, limits, now
                )
            except errors.ClusterError as error:
                LOG.error("reconciling pool %s failed: %s", name, error)
                continue
            if outcome.created or outcome.deleted or outcome.held:
                LOG.info("pool %s: %s", name, outcome)


def build_registry(runtime: Runtime) -> kopf.OperatorRegistry:
    """The kopf registry with infscale's indexes and handlers."""
    registry = kopf.OperatorRegistry()

    @kopf.index(*SERVICES, id="services", registry=registry)
    def services(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> dict[Any, Any]:
        return {(namespace, name): _plain(body)}

    @kopf.index(*POOLS, id="pools", registry=registry)
    def pools(body: kopf.Body, name: str, **_: Any) -> dict[Any, Any]:
        return {name: _plain(body)}

    @kopf.index(
        "apps", "v1", "deployments", id="deployments", labels=desired.MANAGED_BY, registry=registry
    )
    def deployments(
        body: kopf.Body, namespace: str | None, labels: Mapping[str, str], **_: Any
    ) -> Any:
        return {(namespace, labels.get(desired.SERVICE_LABEL, "")): _owned(body)}

    @kopf.on.event(*SERVICES, registry=registry)
    @kopf.on.event(*POOLS, registry=registry)
    @kopf.on.event("apps", "v1", "deployments", labels=desired.MANAGED_BY, registry=registry)
    async def wake(**_: Any) -> None:
        runtime.wake()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same credentials as the kubernetes client: in-cluster, else KUBECONFIG.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def start(**kwargs: Any) -> None:
        runtime.start({k: kwargs[k] for k in ("services", "pools", "deployments")})

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        await runtime.stop()

    return registry
