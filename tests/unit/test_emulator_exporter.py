"""The emulator's /metrics (every family of the chosen preset, or only what the SLOs read) and
its services' arrivals (one curve for all, or each from its own point of the trace)."""

from __future__ import annotations

import numpy as np
from kubernetes import client
from prometheus_client import CollectorRegistry, generate_latest

from infscale.cli import bench_scale
from infscale.emulator import server


def _rendered(slo_histograms_only: bool) -> str:
    emulator = server.Emulator(client.ApiClient(), np.zeros(0), seed=1)
    body = bench_scale.service_manifest(0)  # vllm preset, SLO on ttft
    state = emulator.add((bench_scale.NAMESPACE, body["metadata"]["name"]), body)
    variant = body["spec"]["variants"][0]["name"]
    perf = state.perf(variant)
    assert perf is not None
    state.model.set_pods({"pod-a": (variant, perf)})
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


def _arrivals(stagger_s: float) -> list[int]:
    """Arrivals each of two services received in the emulator's first minute."""
    trace = np.sort(np.random.default_rng(3).uniform(0, 7200.0, 1440))  # 0.2 requests/s
    emulator = server.Emulator(client.ApiClient(), trace, seed=1, stagger_s=stagger_s)
    states = [emulator.add(("ns", f"svc-{i}"), bench_scale.service_manifest(i)) for i in (0, 1)]
    emulator.started -= 60.0  # a minute has passed
    emulator.step()
    return [state.model.arrived for state in states]


def test_services_follow_one_curve_or_each_its_own_point_of_the_trace() -> None:
    alike = _arrivals(stagger_s=0.0)
    assert alike[0] == alike[1] > 0
    staggered = _arrivals(stagger_s=3600.0)
    assert staggered[0] != staggered[1]
