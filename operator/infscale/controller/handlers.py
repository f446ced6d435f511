"""The kopf registry: indexes of services and pools, and wake-ups of the loop on changes.

The handlers only keep indexes and wake the loop (`runtime.Runtime`); every decision is made by
one cycle over all services (`cycle.Cycle`). No change-tracking handler is used, so kopf writes
nothing to the user's objects (no finalizers, no annotations): infscale writes only their status.
"""

from __future__ import annotations

from typing import Any

import kopf

from infscale.api import v1alpha1
from infscale.controller import desired
from infscale.controller.runtime import Runtime, plain

SERVICES = (v1alpha1.GROUP, v1alpha1.VERSION, "inferenceservices")
POOLS = (v1alpha1.GROUP, v1alpha1.VERSION, "inferencenodepools")


def build_registry(runtime: Runtime) -> kopf.OperatorRegistry:
    """The kopf registry with infscale's indexes and handlers."""
    registry = kopf.OperatorRegistry()

    @kopf.index(*SERVICES, id="services", registry=registry)
    def services(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> dict[Any, Any]:
        return {(namespace, name): plain(body)}

    @kopf.index(*POOLS, id="pools", registry=registry)
    def pools(body: kopf.Body, name: str, **_: Any) -> dict[Any, Any]:
        return {name: plain(body)}

    @kopf.on.event(*SERVICES, registry=registry)
    @kopf.on.event(*POOLS, registry=registry)
    @kopf.on.event("apps", "v1", "deployments", labels=desired.MANAGED_BY, registry=registry)
    async def wake(body: kopf.Body, type: str | None, **_: Any) -> None:
        if runtime.changed(body, type):
            runtime.wake()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same credentials as the kubernetes client: in-cluster, else KUBECONFIG.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # The chart installs the CRDs before the operator: no need to list or watch
        # CustomResourceDefinitions (which would need RBAC on them).
        settings.scanning.disabled = True

    @kopf.on.startup(registry=registry)
    async def start(**kwargs: Any) -> None:
        runtime.start({k: kwargs[k] for k in ("services", "pools")})

    @kopf.on.probe(id="loop", errors=kopf.ErrorsMode.PERMANENT, registry=registry)
    def loop(**_: Any) -> dict[str, Any]:
        # The liveness endpoint answers 500 once the loop or the election has stopped.
        return runtime.alive()

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        await runtime.stop()

    return registry
