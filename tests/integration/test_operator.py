"""The operator against the real API server: Deployments, status, Events, modes, restarts."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration import waiting
from tests.integration.manifests import Cluster, service_manifest
from tests.integration.operator_process import OperatorProcess

pytestmark = pytest.mark.integration

GROUP, VERSION = "infscale.dev", "v1alpha1"
POOL_LABEL = "infscale.dev/pool"


def test_service_lifecycle(
    api_client: client.ApiClient,
    namespace: str,
    pools: tuple[str, str],
    small_gpu_node: str,
    operator: OperatorProcess,
) -> None:
    cluster = Cluster(api_client, namespace)
    cluster.create_service(service_manifest("chat", *pools))

    # One Deployment per variant, owned by the service; min=1 on the cheaper variant per rps.
    waiting.until(lambda: cluster.replicas("chat-small") == 1, timeout_s=30, what="chat-small")
    assert cluster.replicas("chat-big") == 0
    small = cluster.apps.read_namespaced_deployment("chat-small", namespace)
    owner = small.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("InferenceService", "chat", True)
    assert small.spec.template.spec.node_selector == {POOL_LABEL: pools[1]}

    # The replica lands on the small pool's node and the status says so.
    def ready() -> dict[str, Any] | None:
        cond = cluster.condition("chat", "Ready")
        return cond if cond and cond["status"] == "True" else None

    waiting.until(ready, timeout_s=30, what="Ready=True on the service")
    status = cluster.service("chat")["status"]
    assert status["readyReplicas"] == 1
    assert status["selector"] == "infscale.dev/service=chat"
    assert "replicas.min=1 on variant small" in status["lastDecision"]["reason"]
    assert "Scaled" in cluster.event_reasons("chat")

    # The operator's own metrics say the same.
    with urllib.request.urlopen(operator.metrics_url) as response:
        exposition = response.read().decode()
    assert 'infscale_desired_replicas{namespace="' + namespace in exposition
    assert 'service="chat",variant="small"} 1.0' in exposition
    cycles = [line for line in exposition.splitlines() if line.startswith("infscale_cycles_total")]
    assert float(cycles[0].split()[-1]) >= 1

    # The operator writes only status: no finalizers, no annotations of its own.
    metadata = cluster.service("chat")["metadata"]
    assert not metadata.get("finalizers")
    assert not any("kopf" in key for key in metadata.get("annotations") or {})

    # A no-op cycle writes nothing: resourceVersions stay put over several cycles.
    before = (
        cluster.service("chat")["metadata"]["resourceVersion"],
        cluster.apps.read_namespaced_deployment("chat-small", namespace).metadata.resource_version,
    )
    time.sleep(4)
    after = (
        cluster.service("chat")["metadata"]["resourceVersion"],
        cluster.apps.read_namespaced_deployment("chat-small", namespace).metadata.resource_version,
    )
    assert before == after

    # `kubectl scale` through the scale subresource.
    cluster.custom.patch_namespaced_custom_object_scale(
        GROUP, VERSION, namespace, "inferenceservices", "chat", {"spec": {"replicas": 3}}
    )
    waiting.until(lambda: cluster.replicas("chat-small") == 3, timeout_s=30, what="scale to 3")
    scale = cluster.custom.get_namespaced_custom_object_scale(
        GROUP, VERSION, namespace, "inferenceservices", "chat"
    )
    waiting.until(
        lambda: (
            cluster.custom.get_namespaced_custom_object_scale(
                GROUP, VERSION, namespace, "inferenceservices", "chat"
            )["status"].get("replicas")
            == 3
        ),
        timeout_s=30,
        what="scale status 3",
    )
    assert scale["status"]["selector"] == "infscale.dev/service=chat"

    # A template change rolls the Deployments.
    cluster.patch_service(
        "chat",
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "server", "image": "emulated/server:v2"}]}
                }
            }
        },
    )

    def image() -> str:
        pod = cluster.apps.read_namespaced_deployment("chat-big", namespace).spec.template
        return str(pod.spec.containers[0].image)

    waiting.until(lambda: image() == "emulated/server:v2", timeout_s=30, what="template rolled")

    # Recommend mode reports but never scales.
    cluster.patch_service("chat", {"spec": {"mode": "Recommend", "replicas": {"fixed": 5}}})
    waiting.until(
        lambda: "small=5" in (cluster.service("chat")["status"].get("recommendation") or ""),
        timeout_s=30,
        what="a recommendation",
    )
    assert cluster.replicas("chat-small") == 3

    # Back to Auto, but paused by annotation: still no scaling.
    cluster.patch_service(
        "chat",
        {"metadata": {"annotations": {"infscale.dev/paused": "true"}}, "spec": {"mode": "Auto"}},
    )
    waiting.until(
        lambda: "paused" in cluster.service("chat")["status"]["lastDecision"]["reason"],
        timeout_s=30,
        what="the paused decision",
    )
    assert cluster.replicas("chat-small") == 3
    cluster.patch_service("chat", {"metadata": {"annotations": {"infscale.dev/paused": None}}})
    waiting.until(lambda: cluster.replicas("chat-small") == 5, timeout_s=30, what="unpaused: 5")

    # Removing a variant deletes its Deployment.
    body = cluster.service("chat")
    variants = [v for v in body["spec"]["variants"] if v["name"] != "big"]
    cluster.patch_service("chat", {"spec": {"variants": variants}})
    waiting.until(lambda: cluster.replicas("chat-big") is None, timeout_s=30, what="chat-big gone")
    chat_series = f'namespace="{namespace}",service="chat"'

    def exposition_now() -> str:
        with urllib.request.urlopen(operator.metrics_url) as response:
            return str(response.read().decode())

    waiting.until(
        lambda: chat_series + ',variant="big"' not in exposition_now(),
        timeout_s=30,
        what="the removed variant's series gone from /metrics",
    )

    # Deleting the service deletes its Deployments (garbage collection through ownerReferences).
    cluster.custom.delete_namespaced_custom_object(
        GROUP, VERSION, namespace, "inferenceservices", "chat"
    )
    waiting.until(
        lambda: cluster.replicas("chat-small") is None, timeout_s=60, what="chat-small gone"
    )
    # ... and its series leave the operator's /metrics (they would pile up with churn).
    waiting.until(
        lambda: chat_series not in exposition_now(),
        timeout_s=30,
        what="the deleted service's series gone from /metrics",
    )


def test_missing_node_pool_is_reported_and_others_proceed(
    api_client: client.ApiClient, namespace: str, pools: tuple[str, str], operator: OperatorProcess
) -> None:
    cluster = Cluster(api_client, namespace)
    cluster.create_service(service_manifest("orphan", "no-such-pool", "no-such-pool-either"))
    cluster.create_service(service_manifest("fine", *pools))

    def capacity() -> dict[str, Any] | None:
        cond = cluster.condition("orphan", "CapacityAvailable")
        return cond if cond and cond["status"] == "False" else None

    cond = waiting.until(capacity, timeout_s=30, what="CapacityAvailable=False")
    assert cond["reason"] == "NodePoolNotFound"
    assert "no-such-pool" in cond["message"]
    assert "NodePoolNotFound" in cluster.event_reasons("orphan")
    waiting.until(lambda: cluster.replicas("fine-small") == 1, timeout_s=30, what="fine-small")
    assert cluster.replicas("orphan-small") is None
    assert operator.process is not None
    assert operator.process.poll() is None, "the operator must not crash"


def test_restart_mid_way_loses_nothing(
    api_client: client.ApiClient, namespace: str, pools: tuple[str, str], tmp_path: Path, crds: None
) -> None:
    cluster = Cluster(api_client, namespace)
    first = OperatorProcess(tmp_path / "first.log", namespaces=[namespace], pools=pools)
    first.start()
    try:
        cluster.create_service(service_manifest("chat", *pools))
        waiting.until(lambda: cluster.replicas("chat-small") == 1, timeout_s=30, what="chat-small")
        # The Deployment is applied before the status patch: wait for the decision to be written.
        decided = waiting.until(
            lambda: cluster.service("chat").get("status", {}).get("lastDecision"),
            timeout_s=30,
            what="a lastDecision in status",
        )
    finally:
        first.kill()

    # While no operator runs, the user scales; the next operator picks it up from the cluster.
    cluster.patch_service("chat", {"spec": {"replicas": {"fixed": 2}}})
    second = OperatorProcess(tmp_path / "second.log", namespaces=[namespace], pools=pools)
    second.start()
    try:
        waiting.until(lambda: cluster.replicas("chat-small") == 2, timeout_s=30, what="2 replicas")

        def caught_up() -> dict[str, Any] | None:
            body = cluster.service("chat")
            status = body.get("status") or {}
            current = status.get("observedGeneration") == body["metadata"]["generation"]
            return status if current else None

        # As above, the status follows the Deployment: wait for it, then read the decision.
        status = waiting.until(caught_up, timeout_s=30, what="the status of generation 2")
        assert status["lastDecision"]["reason"] != decided["reason"]
        deployments = cluster.apps.list_namespaced_deployment(namespace).items
        assert sorted(str(d.metadata.name) for d in deployments) == ["chat-big", "chat-small"]
    finally:
        second.stop()


def test_another_autoscaler_on_its_deployment_is_named_in_a_warning(
    api_client: client.ApiClient,
    namespace: str,
    pools: tuple[str, str],
    small_gpu_node: str,
    operator: OperatorProcess,
) -> None:
    cluster = Cluster(api_client, namespace)
    cluster.create_service(service_manifest("chat", *pools))
    waiting.until(lambda: cluster.replicas("chat-small") == 1, timeout_s=30, what="chat-small")
    # What an HPA (kube-controller-manager) or `kubectl scale` does: the scale subresource.
    cluster.apps.patch_namespaced_deployment_scale(
        "chat-small", namespace, {"spec": {"replicas": 4}}, field_manager="an-hpa"
    )

    def warned() -> str:
        events = cluster.core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=chat"
        ).items
        return next((str(e.message) for e in events if e.reason == "ReplicasOverridden"), "")

    message = waiting.until(warned, timeout_s=30, what="a ReplicasOverridden Event")
    assert message.startswith(
        "Deployment chat-small: replicas set to 4 by an-hpa through /scale; infscale sets them"
    )
    waiting.until(lambda: cluster.replicas("chat-small") == 1, timeout_s=30, what="back to 1")
