"""A batch job on the real cluster (issue 24): a Batch service (deadline 60 s) at zero replicas
on an on-demand and a spot pool of kwok nodes. A job of 450 requests arrives within 15 s: the
service wakes on the gateway's count of them, drains the queue on spot alone (cheaper, and a
batch service may run all of its work there), meets every deadline and goes back to zero.

Real API server, real Prometheus scraping the model-server EMULATOR (which also plays the
gateway and keeps the ground truth: requests done within the deadline), the operator planning;
time is compressed (2 s cycles, a 10 s rate window, 3 s node provisioning).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from infscale.emulator import server as emulator_server
from tests.integration import manifests, waiting
from tests.integration.operator_process import (
    compressed_operator,
    emulator_totals,
    start_emulator,
    stop_emulator,
)
from tests.integration.prometheus_process import PrometheusProcess

pytestmark = pytest.mark.integration

GROUP, VERSION = "infscale.dev", "v1alpha1"
LOAD, JOB_S, QUIET_S = "steps:30@15,0@75", 15.0, 75.0  # 450 requests in 15 s, then nothing
DEADLINE_S = 60
on_demand = manifests.kwok_pool_fixture("od", max_nodes=8, provisioning_s=3, tainted=False)
spot_pool = manifests.kwok_pool_fixture(
    "spot", max_nodes=8, provisioning_s=3, tainted=False, spot=True, usd_per_hour=0.28
)


def batch(namespace: str, od: str, spot: str) -> dict[str, Any]:
    body = manifests.emulated_service("index", od, max_replicas=8, startup_s=2)
    spec = body["spec"]
    spec["slo"] = {"class": "Batch", "metric": "e2e", "percentile": 99, "deadlineSeconds": 60}
    spec["replicas"] = {"min": 0, "max": 8}
    # At zero replicas no server reports a queue: the gateway's count of arrivals wakes it.
    gateway = emulator_server.GATEWAY_COUNTER
    spec["metrics"] = {
        "arrivalRateQuery": f'sum(rate({gateway}{{namespace="{namespace}",service="index"}}[10s]))'
    }
    variant = dict(spec["variants"][0])
    spec["variants"] = [{**variant, "name": "od"}, {**variant, "name": "spot", "nodePool": spot}]
    return body


@pytest.mark.timeout(400)
def test_a_batch_job_wakes_the_service_drains_on_spot_in_time_and_sleeps_again(
    custom: client.CustomObjectsApi,
    namespace: str,
    on_demand: str,
    spot_pool: str,
    own_prometheus: PrometheusProcess,
    tmp_path: Path,
) -> None:
    operator = compressed_operator(tmp_path, own_prometheus.url, namespace, [on_demand, spot_pool])
    operator.start()
    targets_file = own_prometheus.targets_dir / "emulator.json"
    emulator: subprocess.Popen[bytes] | None = None
    samples: list[tuple[float, dict[str, Any]]] = []
    done: dict[str, Any] = {}
    try:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "inferenceservices", batch(namespace, on_demand, spot_pool)
        )

        def reported() -> bool:
            body = custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "inferenceservices", "index"
            )
            return isinstance(body, dict) and (body.get("status") or {}).get("replicas") == 0

        waiting.until(reported, timeout_s=60, what="the batch service reported at zero")
        emulator = start_emulator(
            tmp_path / "emulator.log", "--trace", LOAD, "--port", "0",
            "--targets-file", str(targets_file), namespaces=[namespace],
        )  # fmt: skip
        start = time.monotonic()
        while (now := time.monotonic() - start) < JOB_S + QUIET_S and emulator.poll() is None:
            body = custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "inferenceservices", "index"
            )
            assert isinstance(body, dict)
            samples.append((now, dict(body.get("status") or {})))
            time.sleep(2)
        done = emulator_totals(targets_file, namespace, "index")
    finally:
        stop_emulator(emulator)
        operator.stop()
        print(operator.log()[-4000:])
        for t, status in samples[::3]:
            variants = {v["name"]: v.get("readyReplicas") for v in status.get("variants") or []}
            print(f"{t:5.0f} s replicas {status.get('replicas')} ready {variants} "
                  f"{(status.get('lastDecision') or {}).get('reason', '')[:90]}")  # fmt: skip
        print(f"emulator totals: {done}")

    def ready(status: dict[str, Any], name: str) -> int:
        return sum(v.get("readyReplicas") or 0 for v in status.get("variants") or []
                   if v["name"] == name)  # fmt: skip

    assert any(ready(s, "spot") for _, s in samples), "the job must wake replicas on spot"
    assert not any(ready(s, "od") for _, s in samples), "batch work runs where it is cheapest"
    assert done["arrived"] >= 350, "the emulator sent the job (Poisson: about 450)"
    assert done["completed"] == done["arrived"], "every request of the job is done"
    assert done["within_slo"] >= 0.99 * done["arrived"], "within its deadline (the ground truth)"
    assert samples[-1][1].get("replicas") == 0, "back to zero once nothing waits or arrives"
