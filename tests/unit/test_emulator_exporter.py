"""The emulator's /metrics: every family of the chosen preset, or only what the SLOs read."""

from __future__ import annotations

import numpy as np
from kubernetes import client
from prometheus_client import CollectorRegistry, generate_latest

from infscale.cli import bench_scale
from infscale.emulator import server


def _rendered(slo_histograms_only: bool) -> str:
    emulator = server.Emulator(client.ApiClient(), np.zeros(0), seed=1)
    body = bench_scale.service_manifest(0)  # vllm preset, SLO on ttft
    state = server.ServiceState(body, seed=1)
    variant = body["spec"]["variants"][0]["name"]
    perf = state.perf(variant)
    assert perf is not None
    state.model.set_pods({"pod-a": (variant, perf)})
    emulator.services[(bench_scale.NAMESPACE, body["metadata"]["name"])] = state
    registry = CollectorRegistry(auto_describe=False)
    registry.register(server.Exporter(emulator, slo_histograms_only=slo_histograms_only))
    return generate_latest(registry).decode()


def test_every_histogram_of_the_preset_by_default() -> None:
    text = _rendered(slo_histograms_only=False)
    for histogram in ("time_to_first_token", "e2e_request_latency", "request_queue_time"):
        assert f"vllm:{histogram}_seconds_bucket{{" in text


def test_only_the_slo_histogram_when_asked_with_the_counters_and_gauges() -> None:
    text = _rendered(slo_histograms_only=True)
    assert "vllm:time_to_first_token_seconds_bucket{" in text
    assert "vllm:e2e_request_latency_seconds" not in text
    assert "vllm:request_queue_time_seconds" not in text
    assert "vllm:request_success_total{" in text
    assert "vllm:num_requests_waiting{" in text
