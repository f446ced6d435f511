"""Planner memory across a restart: what the planner learned of a service (its forecast and
per-minute burst memory) is saved in the service's status on the real API server, and an
operator started after a SIGKILL goes on from it instead of learning from nothing."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from kubernetes import client

from infscale.controller import decide
from infscale.domain import model
from tests.integration import manifests, waiting
from tests.integration.manifests import Cluster
from tests.integration.operator_process import OperatorProcess, start_emulator, stop_emulator
from tests.integration.prometheus_process import PrometheusProcess

pytestmark = pytest.mark.integration

SAVE_S = 3.0


pool = manifests.kwok_pool_fixture("memory", max_nodes=10, provisioning_s=1, tainted=False)


@pytest.mark.timeout(400)
def test_a_restarted_operator_goes_on_from_the_saved_memory(
    api_client: client.ApiClient, namespace: str, pool: str, tmp_path: Path
) -> None:
    cluster = Cluster(api_client, namespace)
    prometheus = PrometheusProcess(tmp_path / "prometheus")
    prometheus.start()
    args = ("--prometheus-url", prometheus.url, "--rate-window", "10",
            "--memory-save-seconds", str(SAVE_S))  # fmt: skip
    first, second = (
        OperatorProcess(tmp_path / log, 1.0, *args, namespaces=[namespace], pools=[pool])
        for log in ("first.log", "second.log")
    )
    emulator: subprocess.Popen[bytes] | None = None

    def memory() -> tuple[model.ForecastState, float] | None:
        text = (cluster.service("chat").get("status") or {}).get("plannerMemory")
        if not text:
            return None
        state, saved_s = decide.decode_memory(text)
        forecast = state.forecasts.get(f"{namespace}/chat")
        return (forecast, saved_s) if forecast is not None and forecast.minutes else None

    try:
        first.start()
        cluster.create_service(manifests.emulated_service("chat", pool))
        emulator = start_emulator(
            tmp_path / "emulator.log", "--trace", "poisson:8", "--port", "0",
            "--targets-file", str(prometheus.targets_dir / "emulator.json"),
            namespaces=[namespace],
        )  # fmt: skip
        before, saved_s = waiting.until(
            memory, timeout_s=120, what="status.plannerMemory with an observed rate"
        )
        first_minute = before.minutes[0][0]
        print(f"saved at {saved_s:.0f}: level {before.level_rps:.2f} rps, minutes {before.minutes}")
        assert before.level_rps > 0
        # Restart in a later minute, so memory of the earlier one can only come from status.
        waiting.until(
            lambda: time.time() // 60 > first_minute, timeout_s=70, what="the next minute"
        )
        first.kill()
        killed_s = time.time()
        second.start()
        waiting.until(
            lambda: "planner memory restored" in second.log(), timeout_s=60, what="a restore"
        )

        def saved_by_second() -> tuple[model.ForecastState, float] | None:
            found = memory()
            return found if found is not None and found[1] > killed_s else None

        after, saved_again_s = waiting.until(
            saved_by_second, timeout_s=60, what="memory saved by the second operator"
        )
        print(f"saved again at {saved_again_s:.0f}: minutes {after.minutes}")
        assert after.minutes[0][0] == first_minute  # learned before the restart
        assert "Traceback" not in first.log() + second.log()
    finally:
        stop_emulator(emulator)
        first.stop()
        second.stop()
        prometheus.stop()
        print(second.log()[-3000:])
