"""bench-live's pure parts: the scenario it takes from examples/, the instance type it hands
Karpenter, and the comparison it prints."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

from infscale.cli import bench_live

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_scenario_is_the_chat_service_and_its_gpu_pools_time_compressed() -> None:
    documents = bench_live.scenario(EXAMPLES, 15.0)
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in documents)
    assert kinds == [
        ("InferenceNodePool", "gpu-h100"), ("InferenceNodePool", "gpu-l4"),
        ("InferenceService", "chat"), ("Namespace", "team-a"),
    ]  # fmt: skip
    pools = {d["metadata"]["name"]: d for d in documents if d["kind"] == "InferenceNodePool"}
    assert pools["gpu-l4"]["spec"]["provisioningSeconds"] == 20  # 300 s / 15


def test_karpenter_gets_the_pools_shape_price_and_pod_slots() -> None:
    pool = {
        "metadata": {"name": "gpu-l4"},
        "spec": {"node": {"capacity": {"cpu": "4", "nvidia.com/gpu": "1"}}, "usdPerHour": 0.8048},
    }
    offered = bench_live.instance_type(pool)
    assert offered["name"] == "gpu-l4"
    assert offered["resources"] == {"pods": "110", "cpu": "4", "nvidia.com/gpu": "1"}
    [offering] = offered["offerings"]
    assert offering["Price"] == 0.8048


def record(policy: str, cost: float, attainment: float) -> dict[str, object]:
    return {"policy": policy, "cost_usd": cost, "slo_attainment": attainment}


def test_the_verdict_compares_with_the_cheapest_hpa_reaching_infscales_attainment() -> None:
    records = [
        record("infscale", 3.0, 0.995),
        record("hpa(target=3rps)+karpenter", 5.0, 0.999),
        record("hpa(target=4.5rps)+karpenter", 4.0, 0.991),
        record("hpa(target=6rps)+karpenter", 2.0, 0.90),
    ]
    text = bench_live.verdict(records)
    assert "hpa(target=4.5rps)+karpenter: $4.000" in text
    assert "+25.0% saving" in text


def test_the_verdict_says_when_no_hpa_setting_reaches_infscale() -> None:
    records = [record("infscale", 3.0, 0.95), record("hpa(target=6rps)+karpenter", 2.0, 0.90)]
    assert bench_live.verdict(records).startswith("no HPA setting reached")


def test_the_hpas_rate_limits_are_compressed_like_every_other_duration() -> None:
    # The default behavior limits each change per 15 s; at speed 15 that is per 1 s of wall time,
    # so the live HPA may move as fast per trace second as the simulator's does.
    hpa = bench_live.hpa_manifest("chat-l4", (1, 20), 3.0, 20.0, 15.0)
    behavior = hpa["spec"]["behavior"]
    periods = [p["periodSeconds"] for p in behavior["scaleUp"]["policies"]]
    periods += [p["periodSeconds"] for p in behavior["scaleDown"]["policies"]]
    assert periods == [1, 1, 1]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 20
    assert hpa["spec"]["metrics"][0]["external"]["target"]["averageValue"] == "3.000"
    assert (
        bench_live.hpa_manifest("d", (1, 20), 3.0, 300.0, 1.0)["spec"]["behavior"]["scaleUp"][
            "policies"
        ][0]["periodSeconds"]
        == 15
    )


def test_each_target_runs_live_at_the_window_its_replay_ranks_best() -> None:
    args = argparse.Namespace(hpa_fractions="0.5,1.0", hpa_windows="60,300")
    settings = bench_live.hpa_settings(args)
    assert len(settings) == 4
    simulated = {
        "infscale": (4.0, 0.95),
        # target 5 rps: both windows reach infscale's attainment, 60 s is cheaper
        settings[0].name(10.0): (3.0, 0.96),
        settings[1].name(10.0): (3.5, 0.97),
        # target 10 rps: neither reaches it, 300 s comes closest
        settings[2].name(10.0): (2.0, 0.80),
        settings[3].name(10.0): (2.5, 0.85),
    }
    chosen = bench_live.best_windows(settings, simulated, 10.0)
    assert chosen == [bench_live.HpaSetting(0.5, 60.0), bench_live.HpaSetting(1.0, 300.0)]
    assert chosen[0].name(10.0) == "hpa(target=5rps,window=60s)+karpenter"


def test_the_replays_karpenter_runs_the_binarys_periods_stretched_by_the_speed() -> None:
    model = bench_live.karpenter_model(15.0)
    assert model.consolidate_after_s == 8 * 15  # consolidateAfter 8 s of wall time
    assert (model.validation_s, model.termination_s, model.poll_s) == (225.0, 75.0, 150.0)


def test_karpenters_machines_are_billed_from_their_nodeclaims() -> None:
    def node(labels: dict[str, str]) -> SimpleNamespace:
        return SimpleNamespace(metadata=SimpleNamespace(labels=labels))

    nodes = [
        node({"infscale.dev/pool": "gpu-l4"}),  # infscale's, provisioning or Ready
        node({"infscale.dev/pool": "gpu-l4", "karpenter.sh/nodepool": "gpu-l4"}),  # registered
    ]
    claims = [
        {"metadata": {"labels": {"karpenter.sh/nodepool": "gpu-l4"}}},  # its Node registered
        {"metadata": {"labels": {"karpenter.sh/nodepool": "gpu-l4"}}},  # launched, not yet
    ]
    assert bench_live.billed_pools(nodes, claims) == ["gpu-l4"] * 3
