"""Runaway guard: a hostile controller taints every node the operator adds, so the replicas that
asked for them never schedule. The pool must stay within its maximum and the per-cycle limit
for the whole run, without churning nodes, and say why the pods stay Pending."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration import manifests
from tests.integration.manifests import GROUP, VERSION, Cluster
from tests.integration.operator_process import OperatorProcess

pytestmark = pytest.mark.integration

MAX_NODES, PER_CYCLE, INTERVAL_S = 4, 2, 1.0


class HostileTainter(threading.Thread):
    """Taints every node of one pool with a taint no pod tolerates, as soon as it appears."""

    def __init__(self, core: client.CoreV1Api, pool: str) -> None:
        super().__init__(daemon=True)
        self.core, self.pool = core, pool
        self.stopped = threading.Event()
        self.tainted: set[str] = set()

    def run(self) -> None:
        while not self.stopped.is_set():
            for node in self.core.list_node(
                label_selector=f"infscale.dev/node-pool={self.pool}"
            ).items:
                taints = node.spec.taints or []
                if any(t.key == "hostile.example/blocked" for t in taints):
                    continue
                patch = {
                    "spec": {
                        "taints": [
                            *(t.to_dict() for t in taints),
                            {"key": "hostile.example/blocked", "effect": "NoSchedule"},
                        ]
                    }
                }
                try:
                    self.core.patch_node(node.metadata.name, patch)
                    self.tainted.add(node.metadata.name)
                except client.ApiException:
                    pass  # deleted meanwhile, or a conflict: next round
            time.sleep(0.05)


def service(pool: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": "chat"},
        "spec": {
            "slo": {"metric": "ttft", "percentile": 95, "thresholdSeconds": 0.5},
            "replicas": {"min": 1, "max": 10, "fixed": 8},
            "variants": [{"name": "gpu", "nodePool": pool, "capacityRps": 10,
                          "resources": {"nvidia.com/gpu": 1}}],
            "template": {"spec": {"containers": [{"name": "server", "image": "emulated"}]}},
        },
    }  # fmt: skip


pool = manifests.kwok_pool_fixture("runaway", max_nodes=MAX_NODES, provisioning_s=1)


@pytest.mark.timeout(300)
def test_hostile_taints_cannot_make_the_pool_run_away(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str, pool: str, tmp_path: Path
) -> None:
    cluster = Cluster(api_client, namespace)
    tainter = HostileTainter(core, pool)
    tainter.start()
    operator = OperatorProcess(
        tmp_path / "operator.log", INTERVAL_S,
        "--node-cooldown", "3", "--max-node-changes", str(PER_CYCLE),
        namespaces=[namespace], pools=[pool],
    )  # fmt: skip
    samples: list[tuple[float, int]] = []
    try:
        operator.start()
        cluster.create_service(service(pool))
        created_at = time.monotonic()
        # 40 s of the operator's cycles, counted from its first decision (a busy machine can
        # take a while to start it); the bound holds from the start.
        decided_at: float | None = None
        while decided_at is None or time.monotonic() - decided_at < 40:
            count = len(core.list_node(label_selector=f"infscale.dev/node-pool={pool}").items)
            samples.append((time.monotonic() - created_at, count))
            assert count <= MAX_NODES, f"{count} nodes > pool max {MAX_NODES}"
            if decided_at is None and "lastDecision" in (
                cluster.service("chat").get("status") or {}
            ):
                decided_at = time.monotonic()
            assert decided_at or time.monotonic() - created_at < 60, "no decision within 60 s"
            time.sleep(0.2)
        created = len(tainter.tainted)
        print(f"nodes over time: {samples[::10]}; distinct nodes created: {created}")
        assert created <= MAX_NODES, f"churn: {created} nodes created for a pool of {MAX_NODES}"
        added = [int(n) for n in re.findall(r"PoolResized: .*?add (\d+) node", operator.log())]
        assert added, "the operator added nodes for the pending pods"
        assert max(added) <= PER_CYCLE, f"more than {PER_CYCLE} nodes added in a cycle: {added}"
        pending = [
            p
            for p in cluster.core.list_namespaced_pod(namespace).items
            if p.status.phase == "Pending"
        ]
        assert pending, "no pod can schedule onto a hostile-tainted node"
        condition = cluster.condition("chat", "CapacityAvailable") or {}
        print(condition)
        assert condition.get("status") == "False", condition
        assert "schedul" in condition.get("message", "").lower(), condition
    finally:
        tainter.stopped.set()
        operator.stop()
        print(operator.log()[-3000:])
