"""Scale from zero on the real cluster: two services with min 0 start at zero. When requests
arrive, the one whose spec names a gateway's arrival rate wakes and serves them, sleeps through a
quiet spell and wakes again; the one without it stays at zero and says why in its status.

The model-server EMULATOR also plays the gateway: it counts every request that arrives for a
service (`emulator_gateway_requests_total`), served or not, as a gateway or ingress would.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from infscale.controller import decide
from tests.integration import manifests, waiting
from tests.integration.manifests import Cluster
from tests.integration.operator_process import (
    compressed_operator,
    start_emulator,
    stop_emulator,
)
from tests.integration.prometheus_process import PrometheusProcess

pytestmark = pytest.mark.integration

# Both services start at zero. 5 rps for 30 s, quiet for 45 s (the idle timeout is 10 s), then
# 5 rps again for 30 s.
LOAD, BUSY_S, END_S = "steps:5@30,0@45,5@30", ((0.0, 30.0), (75.0, 105.0)), 105.0


def sleepy(name: str, pool: str, arrival_query: str | None) -> dict[str, Any]:
    body = manifests.emulated_service(name, pool)
    body["spec"]["replicas"] = {"min": 0, "max": 4, "idleTimeoutSeconds": 10}
    body["spec"]["scaleDown"] = {"stabilizationSeconds": 5, "maxStepPercent": 100}
    if arrival_query:
        body["spec"]["metrics"] = {"arrivalRateQuery": arrival_query}
    return body


pool = manifests.kwok_pool_fixture("zero", max_nodes=8, provisioning_s=1, tainted=False)


@pytest.mark.timeout(300)
def test_a_service_at_zero_wakes_on_the_gateways_arrivals(
    api_client: client.ApiClient, namespace: str, pool: str, tmp_path: Path
) -> None:
    cluster = Cluster(api_client, namespace)
    prometheus = PrometheusProcess(tmp_path / "prometheus")
    prometheus.start()
    operator = compressed_operator(tmp_path, prometheus.url, namespace, [pool], 1.0)
    arrivals = (
        f'sum(rate(emulator_gateway_requests_total{{namespace="{namespace}",service="wake"}}[10s]))'
    )
    emulator: subprocess.Popen[bytes] | None = None
    samples: list[tuple[float, dict[str, Any], dict[str, Any]]] = []
    try:
        operator.start()
        cluster.create_service(sleepy("wake", pool, arrivals))
        cluster.create_service(sleepy("plain", pool, None))
        waiting.until(
            lambda: None not in (cluster.replicas("wake-l4"), cluster.replicas("plain-l4")),
            timeout_s=60,
            what="both Deployments",
        )

        def reported(name: str) -> bool:
            return (cluster.service(name).get("status") or {}).get("replicas") is not None

        # The samples judge what the operator reported: they start once it has for both.
        waiting.until(
            lambda: reported("wake") and reported("plain"), timeout_s=30, what="both statuses"
        )
        emulator = start_emulator(
            tmp_path / "emulator.log", "--trace", LOAD, "--port", "0",
            "--targets-file", str(prometheus.targets_dir / "emulator.json"),
            namespaces=[namespace],
        )  # fmt: skip
        start = time.monotonic()
        while (now := time.monotonic() - start) < END_S + 5:
            wake, plain = (cluster.service(n).get("status") or {} for n in ("wake", "plain"))
            samples.append((now, wake, plain))
            time.sleep(1)
    finally:
        stop_emulator(emulator)
        operator.stop()
        prometheus.stop()
        print(operator.log()[-4000:])
        for t, wake, plain in samples[::5]:
            print(f"{t:5.0f} s wake {wake.get('replicas')}/{wake.get('readyReplicas')} "
                  f"arrivals {wake.get('arrivalRps')} served {wake.get('observedRps')}; "
                  f"plain {plain.get('replicas')}")  # fmt: skip

    def at_zero(status: dict[str, Any]) -> bool:
        return status.get("replicas") == 0

    quiet = [w for t, w, _ in samples if BUSY_S[0][1] + 15 <= t < BUSY_S[1][0]]
    assert any(at_zero(w) for w in quiet), "the woken service must sleep again when quiet"
    for begin_s, end_s in BUSY_S:
        busy = [(t, w) for t, w, _ in samples if begin_s <= t < end_s]
        woke_s = next((t for t, w in busy if (w.get("readyReplicas") or 0) >= 1), None)
        print(f"requests from {begin_s:.0f} s: Ready at {woke_s} s")
        assert woke_s is not None, "the service with an arrival-rate query must wake"
        assert woke_s - begin_s <= 30, "a wake-up takes a scrape, a cycle and a pod start"
        served = [w.get("observedRps") or 0.0 for t, w in busy if t >= woke_s + 10]
        assert max(served) > 2, "the woken replicas serve the requests (5 rps arrive)"
        gateway = [w.get("arrivalRps") for t, w in busy if t >= begin_s + 15]
        assert any(r is not None and 3 <= r <= 7 for r in gateway), "status shows the arrivals"
    # The same requests reach the other service: nothing reports them, so it stays asleep.
    assert all(at_zero(p) for _, _, p in samples), "without the query nothing can wake it"
    assert samples[-1][2]["lastDecision"]["reason"].startswith(decide.ASLEEP_WITHOUT_ARRIVALS)
    metrics = {c["type"]: c for c in samples[-1][2]["conditions"]}["MetricsAvailable"]
    assert (metrics["status"], metrics["reason"]) == ("True", "Asleep"), "asleep, not blind"
