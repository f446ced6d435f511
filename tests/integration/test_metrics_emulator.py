"""The emulator's metrics, scraped by the real Prometheus, read back by the adapter, match the
emulator's own ground truth per variant and per pod."""

from __future__ import annotations

import bisect
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from infscale.adapters import prometheus
from infscale.emulator import model as emulated
from infscale.ports import metrics
from tests.integration import waiting
from tests.integration.operator_process import start_emulator
from tests.integration.prometheus_process import PrometheusProcess

pytestmark = pytest.mark.integration

GROUP, VERSION = "infscale.dev", "v1alpha1"
RATE_RPS = 60.0
WINDOW_S = 60


def service_manifest(pool: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": "chat"},
        "spec": {
            "slo": {"metric": "ttft", "percentile": 95, "thresholdSeconds": 0.5},
            "replicas": {"min": 0, "max": 10},
            "variants": [
                {"name": "big", "nodePool": pool, "capacityRps": 20},
                {"name": "small", "nodePool": pool, "capacityRps": 15},
            ],
            "template": {"spec": {"containers": [{"name": "server", "image": "emulated"}]}},
        },
    }


def deployment(variant: str, node_pool: str) -> client.V1Deployment:
    labels = {"infscale.dev/service": "chat", "infscale.dev/variant": variant}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=f"chat-{variant}"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    node_selector={"infscale.dev/pool": node_pool},
                    tolerations=[client.V1Toleration(key="kwok.x-k8s.io/node", operator="Exists")],
                    containers=[client.V1Container(name="server", image="emulated")],
                ),
            ),
        ),
    )


@pytest.fixture
def node(core: client.CoreV1Api, unique_name: str) -> Iterator[str]:
    pool = f"pool-{unique_name}"
    capacity = {"cpu": "64", "memory": "256Gi", "pods": "110"}
    core.create_node(
        client.V1Node(
            metadata=client.V1ObjectMeta(
                name=f"node-{unique_name}",
                labels={"infscale.dev/pool": pool},
                annotations={"kwok.x-k8s.io/node": "fake"},
            ),
            spec=client.V1NodeSpec(
                taints=[client.V1Taint(key="kwok.x-k8s.io/node", value="fake", effect="NoSchedule")]
            ),
            status=client.V1NodeStatus(capacity=capacity, allocatable=capacity),
        )
    )
    yield pool
    core.delete_node(f"node-{unique_name}")


@pytest.fixture
def emulator(
    own_prometheus: PrometheusProcess, namespace: str, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    process = start_emulator(
        tmp_path / "emulator.log", "--trace", f"poisson:{RATE_RPS}", "--port", "0",
        "--duration", "600",
        "--targets-file", str(own_prometheus.targets_dir / "emulator.json"),
        namespaces=[namespace],
    )  # fmt: skip
    yield process
    process.terminate()
    process.wait(timeout=15)
    print((tmp_path / "emulator.log").read_text()[-3000:])


def truth(targets_file: Path, window_s: int) -> dict[str, Any]:
    address = json.loads(targets_file.read_text())[0]["targets"][0]
    with urllib.request.urlopen(f"http://{address}/truth?window={window_s}") as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


def bucket_index(latency_s: float) -> int:
    return bisect.bisect_left(emulated.BUCKETS_S, latency_s)


def test_adapter_matches_emulator_ground_truth(
    api_client: client.ApiClient,
    custom: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    namespace: str,
    node: str,
    emulator: subprocess.Popen[bytes],
    own_prometheus: PrometheusProcess,
) -> None:
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "inferenceservices", service_manifest(node)
    )
    for variant in ("big", "small"):
        apps.create_namespaced_deployment(namespace, deployment(variant, node))
    targets_file = own_prometheus.targets_dir / "emulator.json"
    waiting.until(targets_file.exists, timeout_s=30, what="the emulator's target file")

    def four_pods_served() -> bool:
        pods = [
            k for k in truth(targets_file, 5).get(f"{namespace}/chat", {}) if k.startswith("pod/")
        ]
        return len(pods) == 4

    waiting.until(four_pods_served, timeout_s=60, what="traffic on all four pods")
    time.sleep(WINDOW_S + 6)  # a full rate window of samples in Prometheus

    source = prometheus.PrometheusMetrics(
        prometheus.connect(own_prometheus.url), rate_window_s=WINDOW_S, staleness_s=20
    )
    query = metrics.ServiceQuery(
        namespace=namespace, service="chat", preset="vllm", slo_metric="ttft",
        percentile=95, threshold_s=0.5,
    )  # fmt: skip
    observed = source.observe([query])[(namespace, "chat")]
    # Prometheus' newest samples lag the emulator by up to a scrape interval (2 s).
    expected = truth(targets_file, WINDOW_S)[f"{namespace}/chat"]

    assert observed.unknown == (), observed.unknown
    assert set(observed.variants) == {"big", "small"}
    assert len(observed.pods) == 4
    for key, signals in [
        *((f"variant/{v}", s) for v, s in observed.variants.items()),
        *((f"pod/{p}", s) for p, s in observed.pods.items()),
        ("service", observed.total),
    ]:
        true_rps = expected[key]["rps"]
        print(f"{key}: rps {signals.rps:.3f} vs {true_rps:.3f}, p95 {signals.latency_s} vs "
              f"{expected[key]['latency_s']}")  # fmt: skip
        assert signals.rps == pytest.approx(true_rps, rel=0.05), key
        assert signals.latency_s is not None, key
        assert (
            abs(bucket_index(signals.latency_s) - bucket_index(expected[key]["latency_s"])) <= 1
        ), (
            key,
            signals.latency_s,
            expected[key]["latency_s"],
        )
    assert observed.total.rps == pytest.approx(RATE_RPS, rel=0.15)
    assert observed.total.queue is not None
    assert observed.total.kv_cache_usage is not None

    # Batching: fifty services cost the same Prometheus queries as one.
    before = source.queries_issued
    source.observe([query])
    one = source.queries_issued - before
    others = [
        metrics.ServiceQuery(namespace=f"ns{i}", service=f"svc{i}", preset="vllm",
                             slo_metric="ttft", percentile=95, threshold_s=0.5)
        for i in range(49)
    ]  # fmt: skip
    before = source.queries_issued
    fifty = source.observe([query, *others])
    assert source.queries_issued - before == one
    assert fifty[(namespace, "chat")].total.rps is not None
    assert fifty[("ns3", "svc3")].total.rps is None
