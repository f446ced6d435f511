"""The operator is SIGKILLed three times, during scale-out and scale-in of two services on two
node pools; after each kill a new process picks up from the cluster alone. At the end every
service and pool has its expected size, no node is duplicated or lost, no Deployment orphaned."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration import manifests, waiting
from tests.integration.manifests import GROUP, VERSION, Cluster
from tests.integration.operator_process import OperatorProcess

pytestmark = pytest.mark.integration


def service(name: str, pool: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {
            "slo": {"metric": "ttft", "percentile": 95, "thresholdSeconds": 0.5},
            "replicas": {"min": 1, "max": 8, "fixed": 1},
            "variants": [
                {
                    "name": "gpu",
                    "nodePool": pool,
                    "capacityRps": 10,
                    "resources": {"nvidia.com/gpu": 1},
                }
            ],
            "template": {
                "metadata": {"annotations": {"pod-ready.stage.kwok.x-k8s.io/delay": "1s"}},
                "spec": {"containers": [{"name": "server", "image": "emulated"}]},
            },
        },
    }


@pytest.fixture
def two_pools(
    custom: client.CustomObjectsApi, core: client.CoreV1Api, unique_name: str
) -> Iterator[tuple[str, str]]:
    names = (f"{unique_name}-a", f"{unique_name}-b")
    bodies = [manifests.kwok_pool(n, max_nodes=8, provisioning_s=2) for n in names]
    with manifests.created_pools(custom, core, *bodies):
        yield names


@pytest.mark.timeout(400)
def test_three_sigkills_lose_and_duplicate_nothing(
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    namespace: str,
    two_pools: tuple[str, str],
    tmp_path: Path,
) -> None:
    cluster = Cluster(api_client, namespace)
    names = {"chat": two_pools[0], "embed": two_pools[1]}
    operators: list[OperatorProcess] = []

    def start() -> None:
        process = OperatorProcess(
            tmp_path / f"operator-{len(operators)}.log", 1.0, "--node-cooldown", "2",
            namespaces=[namespace], pools=two_pools,
        )  # fmt: skip
        operators.append(process)
        process.start()

    def nodes(pool: str) -> list[Any]:
        return list(core.list_node(label_selector=f"infscale.dev/node-pool={pool}").items)

    def ready_nodes(pool: str) -> int:
        return sum(
            1
            for n in nodes(pool)
            if not n.spec.unschedulable
            and any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
        )

    def kill_when(condition: Callable[[], bool], what: str) -> None:
        waiting.until(condition, timeout_s=90, interval_s=0.1, what=what)
        operators[-1].kill()
        print(f"SIGKILL {len(operators)}: {what}; nodes {[len(nodes(p)) for p in two_pools]}")
        start()

    def settled(replicas: int) -> bool:
        for name, pool in names.items():
            if cluster.replicas(f"{name}-gpu") != replicas:
                return False
            status = cluster.apps.read_namespaced_deployment_status(f"{name}-gpu", namespace)
            if status.status.ready_replicas != replicas:
                return False
            if len(nodes(pool)) != replicas or ready_nodes(pool) != replicas:
                return False
        return True

    try:
        start()
        for name, pool in names.items():
            cluster.create_service(service(name, pool))
        waiting.until(lambda: settled(1), timeout_s=60, what="one replica and node each")

        for name in names:
            cluster.patch_service(name, {"spec": {"replicas": {"fixed": 6}}})
        # Kill 1 as soon as the first new node exists; kill 2 half-way through the scale-out.
        kill_when(lambda: len(nodes(two_pools[0])) >= 2, "scale-out begun")
        kill_when(lambda: len(nodes(two_pools[0])) + len(nodes(two_pools[1])) >= 7, "mid scale-out")
        waiting.until(lambda: settled(6), timeout_s=120, what="six replicas and nodes each")

        for name in names:
            cluster.patch_service(name, {"spec": {"replicas": {"fixed": 2}}})
        # Kill 3 while nodes are being drained and removed.
        kill_when(
            lambda: (
                any(n.spec.unschedulable for p in two_pools for n in nodes(p))
                or len(nodes(two_pools[0])) < 6
            ),
            "scale-in under way",
        )
        waiting.until(lambda: settled(2), timeout_s=120, what="two replicas and nodes each")

        for pool in two_pools:
            counted = collections.Counter(n.metadata.name for n in nodes(pool))
            assert all(c == 1 for c in counted.values()), f"duplicate nodes {counted}"
            assert not any(n.spec.unschedulable for n in nodes(pool)), "a node left cordoned"
        deployments = sorted(
            str(d.metadata.name) for d in cluster.apps.list_namespaced_deployment(namespace).items
        )
        assert deployments == ["chat-gpu", "embed-gpu"], f"orphans: {deployments}"
        pods = cluster.core.list_namespaced_pod(namespace).items
        assert sorted(str(p.status.phase) for p in pods) == ["Running"] * 4
        assert len(operators) == 4
        for process in operators:
            assert "Traceback" not in process.log(), process.log()[-3000:]
    finally:
        for process in operators:
            process.stop()
        if operators:
            print(operators[-1].log()[-3000:])
