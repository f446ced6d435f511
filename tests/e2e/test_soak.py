"""Soak: the Azure Functions day (1,440 real per-minute counts, summed over its 1,000 functions:
tests/data) compressed into three minutes of wall time, through the emulator, the real
Prometheus and the operator. The operator's memory stays within a bound, its log holds no error,
and the run reports SLO attainment and cost in trace time."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration import manifests, waiting
from tests.integration.manifests import Cluster
from tests.integration.operator_process import compressed_operator, start_emulator
from tests.integration.prometheus_process import PrometheusProcess

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
TRACE = REPO_ROOT / "tests" / "data" / "azure-functions-2019-total-per-minute.csv"
WALL_S = 180.0
SPEED = 86400.0 / WALL_S
RSS_GROWTH_BOUND_MIB = 40.0


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match, status
    return int(match.group(1)) / 1024


pool = manifests.kwok_pool_fixture("soak", max_nodes=10, provisioning_s=2, tainted=False)


@pytest.mark.timeout(600)
def test_a_compressed_day_of_azure_functions(
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    namespace: str,
    pool: str,
    own_prometheus: PrometheusProcess,
    tmp_path: Path,
) -> None:
    cluster = Cluster(api_client, namespace)
    operator = compressed_operator(tmp_path, own_prometheus.url, namespace, [pool], 1.0)
    emulator: subprocess.Popen[bytes] | None = None
    samples: list[dict[str, Any]] = []
    try:
        operator.start()
        assert operator.process is not None
        cluster.create_service(
            manifests.emulated_service(
                "functions", pool, max_replicas=10, stabilization_s=10, startup_s=2
            )
        )
        waiting.until(lambda: cluster.replicas("functions-l4") == 1, timeout_s=60, what="1 replica")
        emulator = start_emulator(
            tmp_path / "emulator.log", "--trace", str(TRACE), "--speed", str(SPEED),
            "--rate-scale", "2", "--duration", str(WALL_S), "--port", "0",
            "--targets-file", str(own_prometheus.targets_dir / "emulator.json"),
            namespaces=[namespace],
        )  # fmt: skip
        start = time.monotonic()
        while emulator.poll() is None and time.monotonic() - start < WALL_S + 30:
            status = cluster.service("functions").get("status") or {}
            nodes = len(core.list_node(label_selector=f"infscale.dev/node-pool={pool}").items)
            samples.append({"t": time.monotonic() - start, "rss": rss_mib(operator.process.pid),
                            "nodes": nodes, **status})  # fmt: skip
            time.sleep(2)
        assert operator.process.poll() is None, "the operator died during the soak"
    finally:
        if emulator is not None and emulator.poll() is None:
            emulator.terminate()
            emulator.wait(timeout=15)
        operator.stop()

    log = operator.log()
    settled = [s["rss"] for s in samples if s["t"] >= 30]
    growth = settled[-1] - min(settled)
    cost = sum(s.get("usdPerHour", 0) * 2 / 3600 * SPEED for s in samples)  # trace-time dollars
    served = [(s["observedRps"], s["sloAttainment"]) for s in samples
              if s.get("observedRps") and s.get("sloAttainment") is not None]  # fmt: skip
    attainment = sum(r * a for r, a in served) / sum(r for r, _ in served)
    replicas = [s.get("replicas", 0) for s in samples]
    print(f"soak: {len(samples)} samples over {samples[-1]['t']:.0f} s (x{SPEED:.0f}); "
          f"SLO attainment {attainment:.3f} (rate-weighted); cost ${cost:.2f} for the day; "
          f"replicas {min(replicas)}-{max(replicas)}, nodes {min(s['nodes'] for s in samples)}-"
          f"{max(s['nodes'] for s in samples)}; operator RSS {min(settled):.0f}-{max(settled):.0f}"
          f" MiB (growth {growth:.1f} MiB)")  # fmt: skip
    assert growth <= RSS_GROWTH_BOUND_MIB, f"operator memory grew {growth:.1f} MiB"
    errors = [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]
    assert not errors, "\n".join(errors[:20])
    assert max(replicas) > min(replicas), "replicas must follow the day's load"
    assert served, "the run must observe traffic and its SLO attainment"
