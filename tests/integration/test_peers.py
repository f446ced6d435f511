"""Smoke tests of the real peer autoscalers that hack/bench-live.sh runs against infscale, so the
recipe cannot rot: kube-controller-manager's own HPA scaling a Deployment on an emulator metric
served by the real prometheus-adapter, and the real Karpenter (kwok provider) giving a pending
pod a node."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from infscale.cli import bench_live
from tests.integration import waiting
from tests.integration.operator_process import start_emulator, stop_emulator
from tests.integration.prometheus_process import PrometheusProcess

pytestmark = pytest.mark.integration

GROUP, VERSION = "infscale.dev", "v1alpha1"
RATE_RPS = 20.0
TARGET_RPS_PER_REPLICA = 5


@pytest.fixture
def node(core: client.CoreV1Api, unique_name: str) -> Iterator[str]:
    """One roomy kwok node of a pool of its own; yields the pool label's value."""
    pool = f"peers-{unique_name}"
    capacity = {"cpu": "64", "memory": "256Gi", "pods": "110"}
    core.create_node(
        {
            "metadata": {
                "name": f"node-{pool}",
                "labels": {"infscale.dev/pool": pool},
                "annotations": {"kwok.x-k8s.io/node": "fake"},
            },
            "status": {"capacity": capacity, "allocatable": capacity},
        }
    )
    yield pool
    core.delete_node(f"node-{pool}")


def served_service(pool: str) -> dict[str, Any]:
    """An InferenceService for the emulator to serve (no operator runs here: the HPA scales)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": "chat"},
        "spec": {
            "mode": "Recommend",
            "slo": {"metric": "ttft", "percentile": 95, "thresholdSeconds": 0.5},
            "replicas": {"min": 1, "max": 10},
            "variants": [{"name": "small", "nodePool": pool, "capacityRps": 10}],
            "template": {"spec": {"containers": [{"name": "server", "image": "emulated"}]}},
        },
    }


def deployment(pool: str) -> dict[str, Any]:
    labels = {"infscale.dev/service": "chat", "infscale.dev/variant": "small"}
    return {
        "metadata": {"name": "chat-small"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"infscale.dev/pool": pool},
                    "containers": [{"name": "server", "image": "emulated"}],
                },
            },
        },
    }


def hpa() -> dict[str, Any]:
    """HPA v2 on the service's completed requests per second, through the external metrics API."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "chat-small"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chat-small"},
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": "requests_per_second",
                            "selector": {"matchLabels": {"infscale_dev_service": "chat"}},
                        },
                        "target": {
                            "type": "AverageValue",
                            "averageValue": str(TARGET_RPS_PER_REPLICA),
                        },
                    },
                }
            ],
        },
    }


@pytest.mark.timeout(300)
def test_the_real_hpa_scales_on_the_emulator_through_prometheus_adapter(
    api_client: client.ApiClient,
    custom: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    namespace: str,
    node: str,
    own_prometheus: PrometheusProcess,
    tmp_path: Path,
) -> None:
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "inferenceservices", served_service(node)
    )
    apps.create_namespaced_deployment(namespace, deployment(node))
    emulator: subprocess.Popen[bytes] | None = None
    autoscaling = client.AutoscalingV2Api(api_client)
    try:
        emulator = start_emulator(
            tmp_path / "emulator.log", "--trace", f"poisson:{RATE_RPS}", "--port", "0",
            "--duration", "280",
            "--targets-file", str(own_prometheus.targets_dir / "emulator.json"),
            namespaces=[namespace],
        )  # fmt: skip
        with bench_live.prometheus_adapter(own_prometheus.url, tmp_path):
            autoscaling.create_namespaced_horizontal_pod_autoscaler(namespace, hpa())

            def replicas() -> int:
                return int(apps.read_namespaced_deployment("chat-small", namespace).spec.replicas)

            # At 20 rps (completed: up to 10 per replica) and 5 rps per replica: 2, then 4.
            waiting.until(
                lambda: replicas() >= 3, timeout_s=180, what="the HPA scaling chat-small to >= 3"
            )

            def measured() -> Any:
                # The HPA writes the scale before its status: wait for the metric it acted on.
                hpa_now = autoscaling.read_namespaced_horizontal_pod_autoscaler(
                    "chat-small", namespace
                )
                return hpa_now if hpa_now.status.current_metrics else None

            status = waiting.until(measured, timeout_s=60, what="the HPA's status metrics")
            [current] = status.status.current_metrics
            rate = current.external.current.average_value
            print(f"HPA: {status.status.current_replicas} -> {status.status.desired_replicas} "
                  f"replicas at {rate} rps per replica")  # fmt: skip
            assert current.external.metric.name == "requests_per_second"
    finally:
        stop_emulator(emulator)
        print((tmp_path / "emulator.log").read_text(errors="replace")[-2000:])


@pytest.mark.timeout(240)
def test_the_real_karpenter_gives_a_pending_pod_a_kwok_node(
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    namespace: str,
    unique_name: str,
    tmp_path: Path,
) -> None:
    name = f"peers-{unique_name}"
    # An InferenceNodePool's node shape, labels, taint and price, as hack/bench-live.sh hands
    # them to Karpenter; only this test's pod selects the label's value.
    pool = {
        "metadata": {"name": name},
        "spec": {
            "node": {
                "capacity": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
                "labels": {"infscale.dev/pool": name},
                "taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}],
            },
            "usdPerHour": 0.8048,
            "maxNodes": 2,
            "provisioningSeconds": 2,
        },
    }
    pod = {
        "metadata": {"name": "gpu-replica"},
        "spec": {
            "nodeSelector": {"infscale.dev/pool": name},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "containers": [
                {
                    "name": "server",
                    "image": "emulated",
                    "resources": {"limits": {"cpu": "3", "nvidia.com/gpu": "1"}},
                }
            ],
        },
    }
    with bench_live.karpenter(api_client, pool, 1.0, tmp_path):
        core.create_namespaced_pod(namespace, pod)

        def scheduled() -> str:
            return str(core.read_namespaced_pod("gpu-replica", namespace).spec.node_name or "")

        waiting.until(scheduled, timeout_s=120, what="Karpenter's node for the pending pod")
        [node] = core.list_node(label_selector=f"karpenter.sh/nodepool={name}").items
        assert node.metadata.name == scheduled()
        labels = node.metadata.labels
        assert labels["node.kubernetes.io/instance-type"] == name
        assert labels["infscale.dev/pool"] == name
        assert node.status.allocatable["nvidia.com/gpu"] == "1"
        print(f"pod scheduled on Karpenter's node {node.metadata.name}")
        core.delete_namespaced_pod("gpu-replica", namespace, grace_period_seconds=0)
    assert not core.list_node(label_selector=f"karpenter.sh/nodepool={name}").items
