"""The local control plane is a real Kubernetes: scheduling on extended resources, kwok Stages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from kubernetes import client

from infscale.adapters import cluster_nodes, kube_client
from tests.integration import waiting

pytestmark = pytest.mark.integration

GPU = "nvidia.com/gpu"
POOL_LABEL = "infscale.dev/pool"
READY_DELAY_ANNOTATION = "pod-ready.stage.kwok.x-k8s.io/delay"
# Taints the node lifecycle controller keeps on a node until it has seen it Ready.
LIFECYCLE_TAINTS = {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}


def kwok_gpu_node(name: str, pool: str) -> client.V1Node:
    """A fake node managed by kwok with 8 GPUs, 32 cores and 256 GiB."""
    capacity = {"cpu": "32", "memory": "256Gi", GPU: "8", "pods": "110"}
    return client.V1Node(
        metadata=client.V1ObjectMeta(
            name=name,
            labels={POOL_LABEL: pool, "type": "kwok"},
            annotations={"kwok.x-k8s.io/node": "fake"},
        ),
        spec=client.V1NodeSpec(
            taints=[client.V1Taint(key="kwok.x-k8s.io/node", value="fake", effect="NoSchedule")]
        ),
        status=client.V1NodeStatus(capacity=capacity, allocatable=capacity),
    )


def pod_spec(pool: str, gpus: int) -> client.V1PodSpec:
    resources = {GPU: str(gpus), "cpu": "1", "memory": "1Gi"}
    return client.V1PodSpec(
        node_selector={POOL_LABEL: pool},
        tolerations=[client.V1Toleration(key="kwok.x-k8s.io/node", operator="Exists")],
        containers=[
            client.V1Container(
                name="server",
                image="emulated/model-server:none",
                resources=client.V1ResourceRequirements(requests=resources, limits=resources),
            )
        ],
    )


def condition(pod: client.V1Pod, kind: str) -> client.V1PodCondition | None:
    for cond in (pod.status and pod.status.conditions) or []:
        if cond.type == kind:
            return cond
    return None


def is_ready(pod: client.V1Pod) -> bool:
    cond = condition(pod, "Ready")
    return cond is not None and cond.status == "True"


@pytest.fixture
def gpu_node(core: client.CoreV1Api, unique_name: str) -> Iterator[str]:
    pool = f"pool-{unique_name}"
    node = core.create_node(kwok_gpu_node(f"gpu-{unique_name}", pool))

    def node_schedulable() -> bool:
        # Ready alone is not enough: the node lifecycle controller lifts the not-ready taint
        # a moment later, and until then the scheduler rejects every pod for that taint.
        current = core.read_node(node.metadata.name)
        ready = any(
            c.type == "Ready" and c.status == "True" for c in current.status.conditions or []
        )
        taints = {t.key for t in current.spec.taints or []}
        return ready and not taints & LIFECYCLE_TAINTS

    waiting.until(
        node_schedulable, timeout_s=30, what=f"node {node.metadata.name} Ready and untainted"
    )
    yield pool
    core.delete_node(node.metadata.name)


def test_gpu_deployment_schedules_on_its_pool_and_becomes_ready(
    core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str, gpu_node: str
) -> None:
    labels = {"app": "server"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="server"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels), spec=pod_spec(gpu_node, gpus=1)
            ),
        ),
    )
    apps.create_namespaced_deployment(namespace, deployment)

    def ready_pods() -> list[client.V1Pod]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=server").items
        return [p for p in pods if is_ready(p)]

    pods = waiting.until(ready_pods, timeout_s=60, what="the Deployment's pod Ready")
    node = core.read_node(pods[0].spec.node_name)
    assert node.metadata.labels[POOL_LABEL] == gpu_node
    waiting.until(
        lambda: apps.read_namespaced_deployment("server", namespace).status.ready_replicas == 1,
        timeout_s=30,
        what="the Deployment to report 1 ready replica",
    )


def test_pod_asking_for_more_gpus_than_any_node_has_stays_unschedulable(
    core: client.CoreV1Api, namespace: str, gpu_node: str
) -> None:
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="too-big"), spec=pod_spec(gpu_node, 9))
    core.create_namespaced_pod(namespace, pod)

    def unschedulable() -> client.V1PodCondition | None:
        cond = condition(core.read_namespaced_pod("too-big", namespace), "PodScheduled")
        return cond if cond is not None and cond.status == "False" else None

    cond = waiting.until(unschedulable, timeout_s=30, what="PodScheduled=False on the 9-GPU pod")
    assert cond.reason == "Unschedulable"
    assert "Insufficient nvidia.com/gpu" in (cond.message or "")
    time.sleep(2)
    current = core.read_namespaced_pod("too-big", namespace)
    assert current.status.phase == "Pending"
    assert not current.spec.node_name


def ready_after_scheduled_s(pod: client.V1Pod) -> float:
    scheduled = condition(pod, "PodScheduled")
    ready = condition(pod, "Ready")
    assert scheduled is not None
    assert ready is not None
    start: datetime | None = scheduled.last_transition_time
    end: datetime | None = ready.last_transition_time
    assert start is not None
    assert end is not None
    return (end - start).total_seconds()


@pytest.mark.serial  # bounds of 1-2 s on the shared kwok controller's timing
def test_kwok_stage_honours_the_model_loading_delay_without_jitter(
    core: client.CoreV1Api, namespace: str, gpu_node: str
) -> None:
    delay_s = 20
    names = [f"slow-{i}" for i in range(3)]
    for name in names:
        meta = client.V1ObjectMeta(name=name, annotations={READY_DELAY_ANNOTATION: f"{delay_s}s"})
        core.create_namespaced_pod(
            namespace, client.V1Pod(metadata=meta, spec=pod_spec(gpu_node, 1))
        )
    core.create_namespaced_pod(
        namespace,
        client.V1Pod(metadata=client.V1ObjectMeta(name="fast"), spec=pod_spec(gpu_node, 1)),
    )

    def fast_ready() -> client.V1Pod | None:
        pod = core.read_namespaced_pod("fast", namespace)
        return pod if is_ready(pod) else None

    fast = waiting.until(
        fast_ready,
        timeout_s=10,
        what="the pod without a delay annotation Ready",
    )
    # Condition timestamps have one-second resolution.
    assert ready_after_scheduled_s(fast) <= 2

    def all_slow_ready() -> list[client.V1Pod] | None:
        pods = [core.read_namespaced_pod(n, namespace) for n in names]
        return pods if all(is_ready(p) for p in pods) else None

    slow = waiting.until(all_slow_ready, timeout_s=delay_s + 15, what="the delayed pods Ready")
    delays = [ready_after_scheduled_s(p) for p in slow]
    for measured in delays:
        assert delay_s - 1 <= measured <= delay_s + 2, delays
    assert max(delays) - min(delays) <= 2, f"jitter between identical pods: {delays}"


def test_the_cycles_pod_list_reads_every_page_and_keeps_pods_slim(
    core: client.CoreV1Api, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube_client, "PAGE", 2)  # five pods of ours: three pages at least
    for index in range(5):
        pod = client.V1Pod(
            metadata=client.V1ObjectMeta(name=f"waiting-{index}", labels={"app": "waiting"}),
            spec=pod_spec(f"no-such-pool-{namespace}", gpus=1),
        )
        core.create_namespaced_pod(namespace, pod)
    listed = cluster_nodes.ClusterNodes(core.api_client).pods()
    ours = [p for p in listed if p["metadata"]["namespace"] == namespace]
    assert sorted(p["metadata"]["name"] for p in ours) == [f"waiting-{i}" for i in range(5)]
    assert len(listed) == len({(p["metadata"]["namespace"], p["metadata"]["name"]) for p in listed})
    for slim in ours:
        assert slim["spec"]["containers"] == [
            {"resources": {"requests": {GPU: "1", "cpu": "1", "memory": "1Gi"}}}
        ]
        assert "uid" not in slim["metadata"]
