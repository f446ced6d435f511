"""A spot node reclaimed under load, on the real cluster (issue 24): the service runs on an
on-demand and a spot pool of kwok nodes, emulated traffic rises from 10 to 40 rps so that the
peak held above the smooth level rides on spot, and a spot node is deleted then. Its replacement
is ordered at once (within a cycle and the provisioning time) and an Event names the
interruption.

Real API server, real Prometheus scraping the model-server EMULATOR, the operator planning;
time is compressed (2 s cycles, a 10 s rate window, 3 s node provisioning).
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
# A rise from 10 to 40 rps: until the smooth level catches up, the held peak above it rides on
# spot (the capacity off spot carries the level with its margin).
LOAD = "steps:10@60,40@170"
on_demand = manifests.kwok_pool_fixture("od", max_nodes=8, provisioning_s=3, tainted=False)
spot_pool = manifests.kwok_pool_fixture(
    "spot", max_nodes=8, provisioning_s=3, tainted=False, spot=True, usd_per_hour=0.28
)


def chat(od: str, spot: str) -> dict[str, Any]:
    body = manifests.emulated_service("chat", od, max_replicas=10, startup_s=2)
    variant = dict(body["spec"]["variants"][0])
    body["spec"]["variants"] = [
        {**variant, "name": "od"},
        {**variant, "name": "spot", "nodePool": spot},
    ]
    return body


@pytest.mark.timeout(600)
def test_a_reclaimed_spot_node_is_replaced_and_the_slo_holds(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    namespace: str,
    on_demand: str,
    spot_pool: str,
    own_prometheus: PrometheusProcess,
    tmp_path: Path,
) -> None:
    operator = compressed_operator(tmp_path, own_prometheus.url, namespace, [on_demand, spot_pool])
    operator.start()
    emulator: subprocess.Popen[bytes] | None = None
    samples: list[dict[str, Any]] = []
    reclaimed: tuple[float, str] | None = None
    loss_index = 0
    replaced_after_s: float | None = None
    try:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "inferenceservices", chat(on_demand, spot_pool)
        )
        waiting.until(
            lambda: any((d.status.ready_replicas or 0) >= 1
                        for d in apps.list_namespaced_deployment(namespace).items),
            timeout_s=60, what="the first replica Ready",
        )  # fmt: skip
        emulator = start_emulator(
            tmp_path / "emulator.log", "--trace", LOAD, "--port", "0",
            "--targets-file", str(own_prometheus.targets_dir / "emulator.json"),
            namespaces=[namespace],
        )  # fmt: skip
        start = time.monotonic()
        while time.monotonic() - start < 235 and emulator.poll() is None:
            now = time.monotonic() - start
            body = custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "inferenceservices", "chat"
            )
            assert isinstance(body, dict)
            status = dict(body.get("status") or {})
            samples.append(status)
            spot_nodes = core.list_node(label_selector=f"infscale.dev/node-pool={spot_pool}").items
            names = {str(n.metadata.name) for n in spot_nodes}
            serving = any(v["name"] == "spot" and v.get("readyReplicas")
                          for v in status.get("variants") or [])  # fmt: skip
            if reclaimed is None and now > 60 and serving and spot_nodes:
                victim = sorted(names)[0]
                core.delete_node(victim)  # a spot interruption, as the provider would
                reclaimed = (now, victim)
                loss_index = len(samples)
            elif reclaimed is not None and replaced_after_s is None and names - {reclaimed[1]}:
                replaced_after_s = now - reclaimed[0]
            time.sleep(2)
    finally:
        stop_emulator(emulator)
        operator.stop()
        print(operator.log()[-4000:])

    assert reclaimed is not None, "a spot node must have run under the peaks"
    assert replaced_after_s is not None, "the reclaimed node must be replaced"
    assert replaced_after_s <= 2 * 2.0 + 3 + 4, "within one cycle and provisioning (and a poll)"
    events = core.list_event_for_all_namespaces(
        field_selector=f"involvedObject.name={spot_pool},reason=NodeInterrupted"
    ).items
    assert any(reclaimed[1] in str(e.message) for e in events), "an Event names it"
    # The SLO over the run, and in the minute after the loss: printed, not asserted. The rise
    # from 10 to 40 rps that puts capacity on spot queues requests of its own, so this run does
    # not tell the loss's misses from the rise's (0.91 over the run when last measured).
    for label, window in (("the run", samples), ("after the loss", samples[loss_index:][:30])):
        served = [(s["observedRps"], s["sloAttainment"]) for s in window
                  if s.get("observedRps") and s.get("sloAttainment") is not None]  # fmt: skip
        if served:
            attained = sum(r * a for r, a in served) / sum(r for r, _ in served)
            print(f"SLO attainment over {label}: {attained:.4f} (rate-weighted)")
    print(f"spot node replaced after {replaced_after_s:.0f} s")
