"""spec.routing on the real API server: one Service per variant and an HTTPRoute (Gateway API's
own CRD) whose backend weights follow the plan, owned by the InferenceService, written only when
they change, and removed when routing is turned off."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client

from infscale.adapters import routes as routes_adapter
from infscale.api import v1alpha1
from infscale.controller import desired
from tests.integration import waiting
from tests.integration.manifests import Cluster, service_manifest
from tests.integration.operator_process import OperatorProcess

pytestmark = pytest.mark.integration

ROUTE = ("gateway.networking.k8s.io", "v1", "httproutes")


def route(cluster: Cluster, name: str) -> dict[str, Any] | None:
    try:
        found = cluster.custom.get_namespaced_custom_object(
            *ROUTE[:2], cluster.namespace, ROUTE[2], name
        )
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    assert isinstance(found, dict)
    return found


def weights(cluster: Cluster, name: str) -> dict[str, int] | None:
    found = route(cluster, name)
    if found is None:
        return None
    return {b["name"]: b["weight"] for b in found["spec"]["rules"][0]["backendRefs"]}


def variants_in_status(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    """The service's status.variants; empty until the operator has written its status."""
    variants: list[dict[str, Any]] = (cluster.service(name).get("status") or {}).get("variants", [])
    return variants


def test_a_routed_service_gets_a_weighted_route_that_follows_its_replicas(
    api_client: client.ApiClient,
    namespace: str,
    pools: tuple[str, str],
    small_gpu_node: str,
    gateway_crds: None,
    operator: OperatorProcess,
) -> None:
    cluster = Cluster(api_client, namespace)
    body = service_manifest("chat", *pools)
    body["spec"]["routing"] = {
        "httpRoute": {"parentRefs": [{"name": "inference-gateway", "namespace": "gateways"}]},
        "port": 8000,
    }
    cluster.create_service(body)

    # The one replica (replicas.min, on the cheaper variant per rps) takes all the traffic.
    waiting.until(
        lambda: weights(cluster, "chat") == {"chat-big": 0, "chat-small": 100},
        timeout_s=30,
        what="an HTTPRoute with all the weight on chat-small",
    )
    found = route(cluster, "chat")
    assert found is not None
    [parent] = found["spec"]["parentRefs"]  # the API server adds the defaults (group, kind)
    assert (parent["name"], parent["namespace"], parent["kind"]) == (
        "inference-gateway",
        "gateways",
        "Gateway",
    )
    assert {b["port"] for b in found["spec"]["rules"][0]["backendRefs"]} == {8000}
    for name in ("chat-big", "chat-small"):
        svc = cluster.core.read_namespaced_service(name, namespace)
        assert svc.spec.selector == {
            "infscale.dev/service": "chat",
            "infscale.dev/variant": name.removeprefix("chat-"),
        }
        assert svc.spec.ports[0].port == 8000
        assert svc.metadata.owner_references[0].name == "chat"
    assert found["metadata"]["ownerReferences"][0]["kind"] == "InferenceService"
    waiting.until(  # the cycle that applied the route writes the status after it
        lambda: [v.get("weight") for v in variants_in_status(cluster, "chat")] == [0, 100],
        timeout_s=30,
        what="the weights in status",
    )

    # Steady: the route is not rewritten.
    before = found["metadata"]["resourceVersion"]
    time.sleep(4)
    after = route(cluster, "chat")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before

    # Routing off: the route and the Services go.
    cluster.patch_service("chat", {"spec": {"routing": None}})  # a merge patch: removed
    waiting.until(lambda: route(cluster, "chat") is None, timeout_s=30, what="the route deleted")

    def services_gone() -> bool:
        names = {s.metadata.name for s in cluster.core.list_namespaced_service(namespace).items}
        return not names & {"chat-big", "chat-small"}

    waiting.until(services_gone, timeout_s=30, what="the variants' Services deleted")


def test_a_teams_own_objects_of_the_same_names_are_never_taken_over(
    api_client: client.ApiClient,
    namespace: str,
    pools: tuple[str, str],
    small_gpu_node: str,
    gateway_crds: None,
    operator: OperatorProcess,
) -> None:
    cluster = Cluster(api_client, namespace)
    apps = client.AppsV1Api(api_client)
    legacy = {"app": "legacy"}
    cluster.core.create_namespaced_service(
        namespace,
        {"metadata": {"name": "chat-small"}, "spec": {"selector": legacy, "ports": [{"port": 80}]}},
    )
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "chat-big"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": legacy},
                "template": {
                    "metadata": {"labels": legacy},
                    "spec": {"containers": [{"name": "app", "image": "legacy:1"}]},
                },
            },
        },
    )
    body = service_manifest("chat", *pools)
    body["spec"]["routing"] = {"httpRoute": {"parentRefs": [{"name": "gw"}]}, "port": 8000}
    cluster.create_service(body)

    def refused() -> str:
        conditions = (cluster.service("chat").get("status") or {}).get("conditions") or []
        ready: dict[str, Any] = next((c for c in conditions if c["type"] == "Ready"), {})
        message = str(ready.get("message", ""))
        both = "Service" in message and "Deployment" in message and ready["status"] == "False"
        return message if both else ""

    message = waiting.until(refused, timeout_s=30, what="both names refused, Ready=False says so")
    assert f"Service {namespace}/chat-small already exists and is not infscale's" in message
    assert f"Deployment {namespace}/chat-big already exists and is not infscale's" in message
    service = cluster.core.read_namespaced_service("chat-small", namespace)
    assert (service.spec.selector, service.metadata.owner_references) == (legacy, None)
    deployment = apps.read_namespaced_deployment("chat-big", namespace)
    assert deployment.spec.selector.match_labels == legacy
    assert deployment.metadata.owner_references is None
    assert route(cluster, "chat") is not None  # what is the service's own is still written

    # Routing off: the route and chat-big's Service go; the team's chat-small stays.
    waiting.until(lambda: variants_in_status(cluster, "chat"), timeout_s=30, what="a status")
    cluster.patch_service("chat", {"spec": {"routing": None}})
    waiting.until(lambda: route(cluster, "chat") is None, timeout_s=30, what="the route deleted")
    service = cluster.core.read_namespaced_service("chat-small", namespace)
    assert service.spec.selector == legacy


def test_a_deleted_route_is_applied_again_at_its_refresh(
    api_client: client.ApiClient, namespace: str, gateway_crds: None
) -> None:
    # Nothing watches the routes: the adapter applies each one again every REFRESH_S, so a route
    # deleted by hand comes back (the adapter alone, on the real API server; no operator).
    cluster = Cluster(api_client, namespace)
    cluster.create_service(service_manifest("chat", "pool-a", "pool-b"))
    owner = cluster.service("chat")["metadata"]["uid"]  # a real owner: no garbage collection
    now = [0.0]
    routes = routes_adapter.KubernetesRoutes(api_client, clock=lambda: now[0])
    routing = v1alpha1.Routing.model_validate({"httpRoute": {"parentRefs": [{"name": "gw"}]}})
    manifest = desired.http_route(
        routing=routing,
        service_name="chat",
        namespace=namespace,
        owner_uid=owner,
        weights={"big": 0, "small": 100},
    )
    routes.apply(manifest)
    assert weights(cluster, "chat") == {"chat-big": 0, "chat-small": 100}
    cluster.custom.delete_namespaced_custom_object(*ROUTE[:2], namespace, ROUTE[2], "chat")
    routes.apply(manifest)
    assert route(cluster, "chat") is None, "within the refresh time the last write stands"
    now[0] = routes_adapter.REFRESH_S
    routes.apply(manifest)
    assert weights(cluster, "chat") == {"chat-big": 0, "chat-small": 100}
