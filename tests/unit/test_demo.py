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
