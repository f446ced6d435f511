"""One decision over all services: metrics and planner wired as the operator uses them."""

from __future__ import annotations

from collections.abc import Sequence

from infscale.api import v1alpha1
from infscale.controller import decide, reconciler
from infscale.ports import metrics

POOL = v1alpha1.InferenceNodePoolSpec.model_validate(
    {
        "provider": {"kwok": {}},
        "node": {"capacity": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"}},
        "usdPerHour": 0.8,
        "maxNodes": 10,
        "provisioningSeconds": 60,
    }
)
SPEC = v1alpha1.InferenceServiceSpec.model_validate(
    {
        "slo": {"thresholdSeconds": 0.5},
        "replicas": {"min": 1, "max": 10},
        "variants": [
            {"name": "l4", "nodePool": "gpu", "capacityRps": 10, "resources": {"nvidia.com/gpu": 1}}
        ],
        "template": {"spec": {"containers": [{"name": "server"}]}},
    }
)
KEY = ("team-a", "chat")


class FakeMetrics:
    """A metrics source with a fixed answer; counts its calls."""

    def __init__(self, rps: float | None, latency_s: float | None = 0.2) -> None:
        self.signals = metrics.Signals(rps=rps, latency_s=latency_s)
        self.calls = 0

    @property
    def queries_issued(self) -> int:
        return self.calls

    def observe(
        self, queries: Sequence[metrics.ServiceQuery]
    ) -> dict[tuple[str, str], metrics.ServiceMetrics]:
        self.calls += 1
        unknown = () if self.signals.rps is not None else ("Prometheus query failed",)
        return {
            q.key: metrics.ServiceMetrics(
                total=self.signals,
                variants={"l4": self.signals},
                pods={},
                pod_variant={},
                unknown=unknown,
            )
            for q in queries
        }


def owned(replicas: int) -> dict[tuple[str, str], list[reconciler.OwnedDeployment]]:
    return {KEY: [reconciler.OwnedDeployment("chat-l4", "l4", replicas, replicas, "h")]}


def test_load_above_capacity_scales_up_and_sizes_the_pool() -> None:
    decider = decide.Decider(FakeMetrics(rps=35.0))
    decisions, nodes = decider.decide(
        [decide.ServiceInput(KEY, SPEC, held=False)], {"gpu": POOL}, owned(1), 1000.0
    )
    assert decisions[KEY].replicas["l4"] >= 4
    assert nodes["gpu"] >= decisions[KEY].replicas["l4"]
    assert "demand" in decisions[KEY].reason


def test_recommend_mode_reports_but_keeps_replicas() -> None:
    decider = decide.Decider(FakeMetrics(rps=35.0))
    decisions, _ = decider.decide(
        [decide.ServiceInput(KEY, SPEC, held=True)], {"gpu": POOL}, owned(1), 1000.0
    )
    assert decisions[KEY].replicas == {"l4": 1}
    assert decisions[KEY].recommended["l4"] >= 4


def test_a_restarted_operator_does_not_scale_down_before_a_full_window() -> None:
    decider = decide.Decider(FakeMetrics(rps=1.0))
    inputs = [decide.ServiceInput(KEY, SPEC, held=False)]
    first, _ = decider.decide(inputs, {"gpu": POOL}, owned(6), 1000.0)
    assert first[KEY].replicas["l4"] == 6
    later, _ = decider.decide(inputs, {"gpu": POOL}, owned(6), 1000.0 + 400)
    assert later[KEY].replicas["l4"] < 6


def test_unknown_metrics_never_scale_down_and_say_why() -> None:
    decider = decide.Decider(FakeMetrics(rps=None, latency_s=None))
    inputs = [decide.ServiceInput(KEY, SPEC, held=False)]
    for step in range(5):
        decisions, _ = decider.decide(inputs, {"gpu": POOL}, owned(4), 1000.0 + 400 * step)
        assert decisions[KEY].replicas["l4"] == 4
    assert "Prometheus query failed" in decisions[KEY].reason
