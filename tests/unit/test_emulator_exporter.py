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


def test_a_start_delay_exports_zero_counters_before_the_first_request() -> None:
    trace = np.arange(0.0, 60.0, 0.5)  # 2 requests/s from the trace's start
    emulator = server.Emulator(client.ApiClient(), trace, seed=1, start_delay_s=15.0)
    body = bench_scale.service_manifest(0)
    state = emulator.add((bench_scale.NAMESPACE, body["metadata"]["name"]), body)
    variant = body["spec"]["variants"][0]["name"]
    perf = state.perf(variant)
    assert perf is not None
    state.model.set_pods({"pod-a": (variant, perf)})
    emulator.started -= 10.0  # ten seconds in: still within the delay
    emulator.step()
    assert emulator.now_s() < 0
    assert state.model.arrived == 0
    registry = CollectorRegistry(auto_describe=False)
    registry.register(server.Exporter(emulator))
    assert "vllm:request_success_total{" in generate_latest(registry).decode()
    emulator.started -= 10.0  # five seconds of the trace: about ten requests
    emulator.step()
    assert 8 <= state.model.arrived <= 12


def test_an_emulated_replica_serves_as_the_simulator_replays_it() -> None:
    """The live bench compares the emulator with the simulator's replay of the same manifests:
    both take a replica's behaviour from manifests.derived_perf (they once differed: the
    emulator's L4 replica peaked at 8 rps, the replay's at 9.7)."""
    from infscale.sim import manifests

    for capacity_rps, threshold_s in ((6.0, 0.5), (30.0, 0.5), (20.0, 0.2), (5.0, None)):
        emulated = server.replica_perf(capacity_rps, threshold_s)
        replayed = manifests.derived_perf(capacity_rps, threshold_s)
        assert (emulated.slots, emulated.service_s, emulated.cv) == (
            replayed.slots,
            replayed.service_s,
            replayed.cv,
        )
