"""The demo applies examples/ as a user would, with every duration divided by its speed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infscale.api import v1alpha1
from infscale.cli import demo

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def examples() -> list[dict[str, Any]]:
    return [
        d for p in sorted(EXAMPLES.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d
    ]


def by_name(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def test_examples_hold_three_pools_and_two_services_with_different_slos() -> None:
    documents = examples()
    pools = by_name(documents, "InferenceNodePool")
    services = by_name(documents, "InferenceService")
    assert len(pools) == 3
    assert any("nvidia.com/gpu" not in p["spec"]["node"]["capacity"] for p in pools.values())
    gpus = sorted(
        int(p["spec"]["node"]["capacity"].get("nvidia.com/gpu", 0)) for p in pools.values()
    )
    assert gpus == [0, 1, 8]
    assert len(services) == 2
    assert len({yaml.safe_dump(s["spec"]["slo"]) for s in services.values()}) == 2


def test_compress_divides_every_duration_and_keeps_the_rest() -> None:
    original = examples()
    compressed = demo.compress(original, speed=15)
    assert original == examples(), "the input is not modified"
    assert [d["kind"] for d in compressed] == [d["kind"] for d in original]
    pools = by_name(compressed, "InferenceNodePool")
    assert pools["gpu-h100"]["spec"]["provisioningSeconds"] == 40  # 600 s
    assert pools["gpu-l4"]["spec"]["usdPerHour"] == 0.8048
    services = by_name(compressed, "InferenceService")
    chat, embed = services["chat"]["spec"], services["embed"]["spec"]
    assert [v["startupSeconds"] for v in chat["variants"]] == [6, 8]  # 90 s, 120 s
    assert chat["scaleDown"] == {"stabilizationSeconds": 20, "maxStepPercent": 25}
    assert embed["scaleDown"] == {"stabilizationSeconds": 20}  # the 300 s default
    assert embed["replicas"]["idleTimeoutSeconds"] == 60  # 900 s
    assert chat["template"]["metadata"]["annotations"][demo.POD_READY_DELAY] == "8s"
    assert chat["slo"] == by_name(original, "InferenceService")["chat"]["spec"]["slo"]
    for document in compressed:  # still valid against the API's models
        if document["kind"] == "InferenceNodePool":
            v1alpha1.InferenceNodePool.model_validate(document)
        elif document["kind"] == "InferenceService":
            v1alpha1.InferenceService.model_validate(document)


def test_compress_never_turns_a_duration_into_zero_unless_it_was() -> None:
    service = by_name(examples(), "InferenceService")["chat"]
    service["spec"]["variants"][0]["startupSeconds"] = 0
    [compressed] = demo.compress([service], speed=1000)
    assert [v["startupSeconds"] for v in compressed["spec"]["variants"]] == [0, 1]


def _sample(t_s: float, ready: int, standby: int | None) -> demo.Sample:
    status: dict[str, Any] = {"readyNodes": ready, "usdPerHour": ready * 1.0}
    if standby is not None:
        status |= {"standbyNodes": standby, "standbyUsdPerHour": standby * 1.0}
    chat = {"spec": {"slo": {"thresholdSeconds": 0.5}}, "status": {"observedRps": 1.0}}
    pool = {"spec": {"usdPerHour": 1.0}, "status": status}
    return demo.Sample(t_s, {"team-a/chat": chat}, {"gpu": pool})


def test_the_report_prices_static_provisioning_for_the_replicas_peak_not_the_standby(
    tmp_path: Path,
) -> None:
    from rich.console import Console

    # Three nodes, two of them standby, for an hour; then four, one standby, for an hour.
    samples = [_sample(0.0, 3, 2), _sample(3600.0, 4, 1), _sample(7200.0, 4, 1)]
    console = Console(record=True, width=200)
    demo.report(samples, console, tmp_path / "timeline.png")
    text = console.export_text()
    assert "node cost: $7.0000" in text  # 3 $/h, then 4 $/h
    assert "{'gpu': 3}" in text  # the replicas needed at most 3 nodes, not 4
    assert "$6.0000: infscale paid 1.17x of it" in text
    assert (tmp_path / "timeline.png").exists()
    table = Console(record=True, width=200)
    table.print(demo.view(_sample(0.0, 3, 2)))
    assert "2 ($2.00/h)" in table.export_text()
