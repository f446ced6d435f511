"""bench-live's pure parts: the scenario it takes from examples/, the instance type it hands
Karpenter, and the comparison it prints."""

from __future__ import annotations

from pathlib import Path

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
