"""The closed loop on the real cluster: emulated load rises and falls, replicas and nodes follow.

Real API server, real Prometheus scraping the model-server EMULATOR, the operator reading it and
planning; time is compressed (short windows and startup delays), the rules are the product's.
"""

from __future__ import annotations

import subprocess
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
# 4 rps, then 30 rps (needs about three 10-rps replicas), then 4 rps again for long enough that
# the forecast (60 s level, 60 s peak hold) and the 15 s window have clearly played out.
LOAD = "steps:4@40,30@80,4@210"


def settled(samples: list[tuple[float, int, int, dict[str, Any]]]) -> bool:
    """After the high load (which ends at 120 s): the last three samples (6 s) have at most two
    replicas and at most one node beyond them. The test ends there rather than wait out the
    trace."""
    last = samples[-3:]
    return len(last) == 3 and all(t > 130 and r <= 2 and n <= r + 1 for t, r, n, _ in last)


POWER = {"idleWatts": 24, "maxWatts": 92, "gramsCo2PerKwh": 379}
pool_name = manifests.kwok_pool_fixture(
    "e2e", max_nodes=6, provisioning_s=3, tainted=False, power=POWER
)


@pytest.mark.timeout(600)  # about six minutes of emulated traffic; the default is 300 s
def test_replicas_and_nodes_follow_emulated_load(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    namespace: str,
    pool_name: str,
    own_prometheus: PrometheusProcess,
    tmp_path: Path,
) -> None:
    operator = compressed_operator(tmp_path, own_prometheus.url, namespace, [pool_name])
    operator.start()
    emulator: subprocess.Popen[bytes] | None = None
    samples: list[tuple[float, int, int, dict[str, Any]]] = []
    try:
        chat = manifests.emulated_service("chat", pool_name, startup_s=2)
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "inferenceservices", chat)

        def first_replica_ready() -> bool:
            found = apps.list_namespaced_deployment(namespace).items
            return any((d.status.ready_replicas or 0) >= 1 for d in found)

        waiting.until(first_replica_ready, timeout_s=60, what="the first replica Ready")
        emulator = start_emulator(
            tmp_path / "emulator.log", "--trace", LOAD, "--port", "0",
            "--targets-file", str(own_prometheus.targets_dir / "emulator.json"),
            namespaces=[namespace],
        )  # fmt: skip
        start = time.monotonic()
        while time.monotonic() - start < 360 and emulator.poll() is None and not settled(samples):
            body = custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "inferenceservices", "chat"
            )
            assert isinstance(body, dict)
            status = dict(body.get("status") or {})
            nodes = len(core.list_node(label_selector=f"infscale.dev/node-pool={pool_name}").items)
            samples.append((time.monotonic() - start, status.get("replicas", 0), nodes, status))
            time.sleep(2)
    finally:
        stop_emulator(emulator)
        operator.stop()
        print(operator.log()[-6000:])
        for t, replicas, nodes, status in samples[::3]:
            print(f"{t:6.0f} s replicas={replicas} nodes={nodes} rps={status.get('observedRps')} "
                  f"p95={status.get('observedLatencySeconds')}")  # fmt: skip

    peak = max(replicas for _, replicas, _, _ in samples)
    assert peak >= 3, "replicas must follow the load up"
    assert max(nodes for _, _, nodes, _ in samples) >= 3, "nodes must follow the replicas"
    high = [s for t, _, _, s in samples if 80 <= t <= 130]
    assert any((s.get("observedLatencySeconds") or 9) <= 0.5 for s in high), (
        "latency must come back within the SLO while the load is high"
    )
    final_replicas, final_nodes = samples[-1][1], samples[-1][2]
    assert final_replicas <= 2, "replicas must come down after the load falls"
    assert final_nodes <= final_replicas + 1, "empty nodes must go"
    scaled = [e for e in core.list_namespaced_event(namespace).items if e.reason == "Scaled"]
    assert len(scaled) <= 12, f"flapping: {len(scaled)} scaling decisions"
    last = samples[-1][3]
    assert last["usdPerHour"] > 0
    assert last["lastDecision"]["reason"]
    # Energy: the Ready replicas draw between idle and full power, and per million requests.
    drawn = [s for s in high if s.get("powerWatts") and s.get("readyReplicas")]
    assert drawn, "the status must report what the replicas draw under load"
    for s in drawn:
        assert 24 * s["readyReplicas"] <= s["powerWatts"] <= 92 * s["readyReplicas"] + 1e-6
        assert s["kwhPerMillionRequests"] > 0
        assert s["gramsCo2PerMillionRequests"] == pytest.approx(
            s["kwhPerMillionRequests"] * 379, rel=0.01
        )
        assert s["usdPerMillionRequests"] > 0
    pool = custom.get_cluster_custom_object(GROUP, VERSION, "inferencenodepools", pool_name)
    assert isinstance(pool, dict)
    assert pool["status"]["powerWatts"] >= 24 * pool["status"]["readyNodes"]
