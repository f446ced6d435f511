"""The emulator's running totals: the ground truth a live benchmark scores attainment on."""

from __future__ import annotations

from infscale.emulator import model
from infscale.sim import servers


def test_totals_count_arrivals_completions_and_those_within_the_slo() -> None:
    service = model.EmulatedService("ns", "chat", ["small"], seed=1, threshold_s=0.5)
    perf = servers.Perf(slots=1, service_s=0.2, cv=0.0)
    service.set_pods({"pod-a": ("small", perf)})
    for i in range(4):  # four requests at once on one slot: 0.2, 0.4, 0.6, 0.8 s
        service.arrive(10.0 + i * 1e-6)
    service.advance(11.0)
    totals = service.totals(95.0)
    assert totals["arrived"] == 4
    assert totals["completed"] == 4
    assert totals["within_slo"] == 2
    assert totals["latency_s"] == 1.0  # the bucket holding 0.8 s


def test_totals_before_any_completion_have_no_latency_and_count_the_queue_as_arrived() -> None:
    service = model.EmulatedService("ns", "chat", ["small"], seed=1, threshold_s=0.5)
    service.arrive(1.0)  # no Ready pod: it waits
    service.advance(2.0)
    assert service.totals(95.0) == {
        "arrived": 1, "completed": 0, "within_slo": 0, "latency_s": None,
    }  # fmt: skip
