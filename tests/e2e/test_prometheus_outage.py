"""Prometheus outage: five services at steady emulated load; their Prometheus hangs, then dies,
for several cycles. Nothing scales down, no node goes, every service says MetricsAvailable=False
within a cycle; when Prometheus returns, the system converges and stays."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from kubernetes import client

from tests.integration import manifests, waiting
from tests.integration.manifests import Cluster
from tests.integration.operator_process import OperatorProcess, start_emulator, stop_emulator
from tests.integration.prometheus_process import PrometheusProcess

pytestmark = pytest.mark.integration

SERVICES = [f"s{i}" for i in range(5)]
INTERVAL_S, TIMEOUT_S = 1.0, 2.0


pool = manifests.kwok_pool_fixture("outage", max_nodes=30, provisioning_s=1, tainted=False)


@pytest.mark.timeout(600)
def test_prometheus_outage_never_scales_down(
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    namespace: str,
    pool: str,
    tmp_path: Path,
) -> None:
    cluster = Cluster(api_client, namespace)
    prometheus = PrometheusProcess(tmp_path / "prometheus")
    prometheus.start()
    operator = OperatorProcess(
        tmp_path / "operator.log", INTERVAL_S,
        "--prometheus-url", prometheus.url, "--prometheus-timeout", str(TIMEOUT_S),
        "--rate-window", "10", "--node-cooldown", "5",
        namespaces=[namespace], pools=[pool],
    )  # fmt: skip
    emulator: subprocess.Popen[bytes] | None = None

    def replicas() -> dict[str, int]:
        return {s: cluster.replicas(f"{s}-l4") or 0 for s in SERVICES}

    def nodes() -> int:
        return len(core.list_node(label_selector=f"infscale.dev/node-pool={pool}").items)

    def metrics_available() -> dict[str, str]:
        return {
            s: (cluster.condition(s, "MetricsAvailable") or {}).get("status", "") for s in SERVICES
        }

    try:
        operator.start()
        for name in SERVICES:
            cluster.create_service(manifests.emulated_service(name, pool))
        emulator = start_emulator(
            tmp_path / "emulator.log", "--trace", "poisson:8", "--port", "0",
            "--targets-file", str(prometheus.targets_dir / "emulator.json"),
            namespaces=[namespace],
        )  # fmt: skip
        waiting.until(
            lambda: set(metrics_available().values()) == {"True"} and min(replicas().values()) >= 2,
            timeout_s=120, what="every service reading metrics at >= 2 replicas",
        )  # fmt: skip
        time.sleep(10)  # steady state: the load is constant
        before, nodes_before = replicas(), nodes()
        print(f"before the outage: replicas {before}, nodes {nodes_before}")

        def hold_through(seconds: float, phase: str) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                now, count = replicas(), nodes()
                for name in SERVICES:
                    assert now[name] >= before[name], f"{phase}: {name} scaled down: {now}"
                assert count >= nodes_before, f"{phase}: nodes {count} < {nodes_before}"
                time.sleep(0.5)

        # Hung: every query times out.
        prometheus.pause()
        paused_at = time.monotonic()
        waiting.until(
            lambda: set(metrics_available().values()) == {"False"},
            timeout_s=INTERVAL_S + TIMEOUT_S + 5,
            what="MetricsAvailable=False",
        )
        unknown_after = time.monotonic() - paused_at
        print(f"MetricsAvailable=False on all five {unknown_after:.1f} s after the hang")
        reason = cluster.condition("s0", "MetricsAvailable") or {}
        assert "Prometheus" in reason.get("message", ""), reason
        hold_through(12, "hung")
        # Down: every connection is refused.
        prometheus.stop()
        hold_through(12, "down")
        prometheus.start()
        back_at = time.monotonic()
        waiting.until(lambda: set(metrics_available().values()) == {"True"}, timeout_s=60,
                      what="MetricsAvailable=True after the outage")  # fmt: skip
        print(f"metrics back {time.monotonic() - back_at:.1f} s after Prometheus returned")

        # Converged: replicas unchanged for 15 s, within a bounded time.
        history: list[tuple[float, dict[str, int]]] = []

        def settled() -> bool:
            history.append((time.monotonic(), replicas()))
            recent = [r for t, r in history if t >= history[-1][0] - 15]
            return history[-1][0] - history[0][0] >= 15 and all(r == recent[0] for r in recent)

        waiting.until(settled, timeout_s=90, interval_s=1, what="replicas steady after the outage")
        print(f"converged {time.monotonic() - back_at:.1f} s after Prometheus returned: "
              f"{replicas()}, nodes {nodes()}")  # fmt: skip
        assert all(1 <= n <= 6 for n in replicas().values())
        assert "Traceback" not in operator.log()
    finally:
        stop_emulator(emulator)
        operator.stop()
        prometheus.stop()
        print(operator.log()[-4000:])
