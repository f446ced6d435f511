"""Standby nodes on the real cluster: a pool with spec.standby keeps empty nodes Ready ahead of
need, so when the emulated load rises the new replicas start on them at once instead of waiting
for new nodes; the pool then orders replacements, and its status says how many and why. With
spec.standby.warm the standby nodes run started replicas, Ready before the load rises.

Real API server, real Prometheus scraping the model-server EMULATOR, the operator planning on
compressed time; nodes take 20 s to provision, replicas 2 s to start.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration import manifests, waiting
from tests.integration.operator_process import (
    compressed_operator,
    start_emulator,
    stop_emulator,
)
from tests.integration.prometheus_process import PrometheusProcess

pytestmark = pytest.mark.integration

GROUP, VERSION = "infscale.dev", "v1alpha1"
PROVISIONING_S = 20
# 4 rps (one 10-rps replica) for 10 s, then 25 rps (three): the rise comes within the service's
# first provisioning time of traffic, while the standby is at its maximum. (At 20 s, as before,
# it raced the standby's first sizing from a steady 4 rps, which may release both nodes first.)
LOAD = "steps:4@10,25@40"
pool_name = manifests.kwok_pool_fixture(
    "standby", max_nodes=8, provisioning_s=PROVISIONING_S, tainted=False, standby=2
)
warm_pool_name = manifests.kwok_pool_fixture(
    "warm", max_nodes=8, provisioning_s=PROVISIONING_S, tainted=False, standby=2, warm=True
)
# 4 rps for 10 s, then 25 rps: the rise comes before the service has shown how fast it rises.
EARLY_LOAD = "steps:4@10,25@40"
STARTUP_S = 10


Sample = tuple[float, dict[str, Any], dict[str, Any], int]  # time, chat's status, pool's, nodes


@dataclasses.dataclass(frozen=True)
class _Cluster:
    """What the tests read of the cluster: the chat service's status, the pool's, its nodes."""

    custom: client.CustomObjectsApi
    core: client.CoreV1Api
    namespace: str
    pool_name: str

    def pool(self) -> dict[str, Any]:
        body = self.custom.get_cluster_custom_object(
            GROUP, VERSION, "inferencenodepools", self.pool_name
        )
        assert isinstance(body, dict)
        return dict(body.get("status") or {})

    def chat(self) -> dict[str, Any]:
        body = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "inferenceservices", "chat"
        )
        assert isinstance(body, dict)
        return dict(body.get("status") or {})

    def ready_nodes(self) -> int:
        nodes = self.core.list_node(label_selector=f"infscale.dev/node-pool={self.pool_name}")
        return sum(
            any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
            for n in nodes.items
        )

    def create_chat(self, startup_s: int) -> None:
        chat = manifests.emulated_service("chat", self.pool_name, startup_s=startup_s)
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "inferenceservices", chat
        )


def _replay(
    cluster: _Cluster,
    prometheus: PrometheusProcess,
    tmp_path: Path,
    trace: str,
    seconds: float,
    samples: list[Sample],
) -> None:
    """The emulator on `trace`, sampling the cluster every second for `seconds`."""
    emulator = start_emulator(
        tmp_path / "emulator.log", "--trace", trace, "--port", "0",
        "--targets-file", str(prometheus.targets_dir / "emulator.json"),
        namespaces=[cluster.namespace],
    )  # fmt: skip
    try:
        start = time.monotonic()
        while time.monotonic() - start < seconds and emulator.poll() is None:
            now = time.monotonic() - start
            samples.append((now, cluster.chat(), cluster.pool(), cluster.ready_nodes()))
            time.sleep(1)
    finally:
        stop_emulator(emulator)


def _show(log: str, samples: list[Sample]) -> None:
    print(log[-6000:])
    for t, status, pool, nodes in samples[::3]:
        replicas = f"replicas={status.get('replicas')} ready={status.get('readyReplicas')}"
        spare = f"standby={pool.get('standbyNodes')}: {pool.get('standbyReason')}"
        print(f"{t:5.0f} s {replicas} nodes={nodes} {spare}")


@pytest.mark.timeout(300)
def test_new_replicas_start_on_standby_nodes_without_waiting_for_a_node(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    pool_name: str,
    own_prometheus: PrometheusProcess,
    tmp_path: Path,
) -> None:
    cluster = _Cluster(custom, core, namespace, pool_name)
    operator = compressed_operator(tmp_path, own_prometheus.url, namespace, [pool_name])
    operator.start()
    samples: list[Sample] = []
    try:
        cluster.create_chat(startup_s=2)
        # Before any traffic, how fast the service rises is unknown: the pool keeps its maximum.
        waiting.until(
            lambda: cluster.pool().get("standbyNodes") == 2 and cluster.ready_nodes() >= 3,
            timeout_s=90,
            what="one node for the first replica and two standby nodes Ready",
        )
        cold = cluster.pool()
        assert "how fast it rises is unknown" in cold["standbyReason"]
        assert cold["standbyUsdPerHour"] == pytest.approx(2 * 0.8048)
        _replay(cluster, own_prometheus, tmp_path, LOAD, 75, samples)
    finally:
        operator.stop()
        _show(operator.log(), samples)

    asked = [t for t, s, _, _ in samples if (s.get("replicas") or 0) >= 3]
    assert asked, "the load must ask for three replicas"
    ready = [t for t, s, _, _ in samples if t >= asked[0] and (s.get("readyReplicas") or 0) >= 3]
    assert ready, "three replicas must become Ready"
    # On standby nodes they wait for their 2 s start-up and a cycle or two, not for a 20 s node.
    assert ready[0] - asked[0] < PROVISIONING_S / 2, (
        f"three replicas Ready {ready[0] - asked[0]:.0f} s after they were asked for"
    )
    # The pool orders standby nodes again beyond the replicas' nodes.
    assert any(n >= 4 for t, _, _, n in samples if t > asked[0]), "standby must be restored"
    reasons = [p.get("standbyReason") or "" for _, _, p, _ in samples]
    assert any("may rise" in r for r in reasons), (
        "after one provisioning time of traffic the standby is sized from the service's rise"
    )


@pytest.mark.timeout(300)
def test_warm_standby_nodes_run_replicas_ready_before_the_load_rises(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    warm_pool_name: str,
    own_prometheus: PrometheusProcess,
    tmp_path: Path,
) -> None:
    cluster = _Cluster(custom, core, namespace, warm_pool_name)
    operator = compressed_operator(tmp_path, own_prometheus.url, namespace, [warm_pool_name])
    operator.start()
    samples: list[Sample] = []
    try:
        cluster.create_chat(startup_s=STARTUP_S)
        # Before any traffic: one replica for the demand, and one started on each standby node.
        waiting.until(
            lambda: (cluster.chat().get("readyReplicas") or 0) >= 3,
            timeout_s=120,
            what="the first replica and two warm ones Ready",
        )
        pool = cluster.pool()
        assert pool.get("standbyNodes") == 2
        assert f"warm: 2 l4 of {namespace}/chat" in pool["standbyReason"]
        assert cluster.ready_nodes() == 3, "warm replicas run on the standby nodes, not on more"
        _replay(cluster, own_prometheus, tmp_path, EARLY_LOAD, 50, samples)
    finally:
        operator.stop()
        _show(operator.log(), samples)

    assert samples, "the load must run"
    # The 25 rps step (three replicas' worth) finds three Ready: none waits for its 10 s start.
    short = [
        (t, s.get("readyReplicas")) for t, s, _, _ in samples if (s.get("readyReplicas") or 0) < 3
    ]
    assert not short, f"fewer than three replicas Ready during the load: {short}"
    reasons = [(s.get("lastDecision") or {}).get("reason", "") for _, s, _, _ in samples]
    assert any("warm standby" in r for r in reasons), reasons[-1]
