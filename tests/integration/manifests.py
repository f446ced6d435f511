"""Manifests the integration and e2e tests share."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

GROUP, VERSION = "infscale.dev", "v1alpha1"
POOL_LABEL = "infscale.dev/pool"


def kwok_pool(
    name: str,
    *,
    gpus: int = 1,
    usd_per_hour: float = 0.8048,
    max_nodes: int = 4,
    provisioning_s: int = 2,
    tainted: bool = True,
    power: dict[str, float] | None = None,
    spot: bool = False,
    standby: int = 0,
    warm: bool = False,
) -> dict[str, Any]:
    """An InferenceNodePool of kwok nodes with `gpus` GPUs, 8 cores and 32 GiB per GPU (and
    spec.power, if given; capacityType Spot with `spot`; up to `standby` standby nodes, `warm`
    ones running replicas)."""
    node: dict[str, Any] = {
        "capacity": {"cpu": str(8 * gpus), "memory": f"{32 * gpus}Gi", "nvidia.com/gpu": str(gpus)},
        "labels": {"infscale.dev/pool": name},
    }
    if tainted:
        node["taints"] = [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceNodePool",
        "metadata": {"name": name},
        "spec": {
            "provider": {"kwok": {}},
            "node": node,
            "usdPerHour": usd_per_hour,
            "maxNodes": max_nodes,
            "provisioningSeconds": provisioning_s,
            **({"power": power} if power is not None else {}),
            **({"capacityType": "Spot"} if spot else {}),
            **({"standby": {"maxNodes": standby, "warm": warm}} if standby else {}),
        },
    }


def pool_manifest(name: str, gpus: int, usd_per_hour: float) -> dict[str, Any]:
    return kwok_pool(name, gpus=gpus, usd_per_hour=usd_per_hour, provisioning_s=300)


def service_manifest(name: str, big: str, small: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {
            "slo": {"metric": "ttft", "percentile": 95, "thresholdSeconds": 0.5},
            "replicas": {"min": 1, "max": 10},
            "variants": [
                {
                    "name": "big",
                    "nodePool": big,
                    "resources": {"nvidia.com/gpu": 1},
                    "capacityRps": 30,
                },
                {
                    "name": "small",
                    "nodePool": small,
                    "resources": {"nvidia.com/gpu": 1},
                    "capacityRps": 6,
                },
            ],
            "template": {
                "metadata": {"annotations": {"pod-ready.stage.kwok.x-k8s.io/delay": "1s"}},
                "spec": {"containers": [{"name": "server", "image": "emulated/server:v1"}]},
            },
        },
    }


def emulated_service(
    name: str,
    pool: str,
    *,
    max_replicas: int = 6,
    stabilization_s: int = 15,
    startup_s: int = 1,
) -> dict[str, Any]:
    """An autoscaled service of one 1-GPU variant (10 rps a replica) of emulated servers whose
    kwok pods turn Ready `startup_s` after they start."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {
            "slo": {"metric": "ttft", "percentile": 95, "thresholdSeconds": 0.5},
            "replicas": {"min": 1, "max": max_replicas},
            "scaleDown": {"stabilizationSeconds": stabilization_s, "maxStepPercent": 50},
            "variants": [{"name": "l4", "nodePool": pool, "capacityRps": 10,
                          "startupSeconds": startup_s, "resources": {"nvidia.com/gpu": 1}}],
            "template": {
                "metadata": {
                    "annotations": {"pod-ready.stage.kwok.x-k8s.io/delay": f"{startup_s}s"}
                },
                "spec": {"containers": [{"name": "server", "image": "emulated"}]},
            },
        },
    }  # fmt: skip


def fixed_service(pool_name: str, replicas: int) -> dict[str, Any]:
    """Service `chat` pinned at `replicas` (replicas.fixed) of one 1-GPU variant on the pool."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": "chat"},
        "spec": {
            "slo": {"thresholdSeconds": 0.5},
            "replicas": {"min": 0, "max": 10, "fixed": replicas},
            "variants": [
                {
                    "name": "l4",
                    "nodePool": pool_name,
                    "capacityRps": 6,
                    "resources": {"nvidia.com/gpu": 1, "cpu": "2"},
                },
            ],
            "template": {"spec": {"containers": [{"name": "server", "image": "emulated"}]}},
        },
    }


def foreign_pod(node_name: str) -> client.V1Pod:
    """A pod infscale does not own, bound to a node: a node holding it must never be removed."""
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="foreign"),
        spec=client.V1PodSpec(
            node_name=node_name,
            tolerations=[client.V1Toleration(operator="Exists")],
            containers=[client.V1Container(name="x", image="x")],
        ),
    )


def ready_pods(core: client.CoreV1Api, namespace: str, service: str = "chat") -> list[client.V1Pod]:
    """The service's Ready pods that are not being deleted."""
    pods = core.list_namespaced_pod(namespace, label_selector=f"infscale.dev/service={service}")
    return [
        p for p in pods.items
        if p.metadata.deletion_timestamp is None
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]  # fmt: skip


class Cluster:
    """Small helpers over the typed clients for the operator tests."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace

    def service(self, name: str) -> dict[str, Any]:
        result = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "inferenceservices", name
        )
        assert isinstance(result, dict)
        return result

    def create_service(self, body: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "inferenceservices", body
        )

    def patch_service(self, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "inferenceservices", name, patch
        )

    def replicas(self, deployment: str) -> int | None:
        try:
            return int(
                self.apps.read_namespaced_deployment(deployment, self.namespace).spec.replicas
            )
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        for cond in (self.service(name).get("status") or {}).get("conditions", []):
            if cond["type"] == kind:
                return dict(cond)
        return None

    def event_reasons(self, name: str) -> list[str]:
        events = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        ).items
        return [str(e.reason) for e in events]


@contextlib.contextmanager
def created_pools(
    custom: client.CustomObjectsApi, core: client.CoreV1Api, *bodies: dict[str, Any]
) -> Iterator[None]:
    """InferenceNodePools that exist for the block; afterwards they and the nodes the operator
    made for them are deleted."""
    for body in bodies:
        custom.create_cluster_custom_object(GROUP, VERSION, "inferencenodepools", body)
    try:
        yield
    finally:
        for body in bodies:
            name = body["metadata"]["name"]
            custom.delete_cluster_custom_object(GROUP, VERSION, "inferencenodepools", name)
            for node in core.list_node(label_selector=f"infscale.dev/node-pool={name}").items:
                core.delete_node(node.metadata.name)


def kwok_pool_fixture(prefix: str, **pool: Any) -> Callable[..., Iterator[str]]:
    """A test's own InferenceNodePool of kwok nodes (`kwok_pool` with these arguments), named
    `<prefix>-<unique name>`, as a fixture yielding its name; deleted with its nodes after."""

    @pytest.fixture
    def fixture(
        custom: client.CustomObjectsApi, core: client.CoreV1Api, unique_name: str
    ) -> Iterator[str]:
        name = f"{prefix}-{unique_name}"
        with created_pools(custom, core, kwok_pool(name, **pool)):
            yield name

    return fixture
