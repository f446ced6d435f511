"""The API server itself rejects invalid InferenceServices and InferenceNodePools, readably.

Every case starts from a valid example in examples/, breaks one thing, and is created with
dryRun=All so the real schema and CEL validation run and nothing is stored.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GROUP, VERSION = "infscale.dev", "v1alpha1"
Manifest = dict[str, Any]


def example_documents() -> list[Manifest]:
    documents: list[Manifest] = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):  # with examples/model-variants/
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return documents


def example(kind: str) -> Manifest:
    return next(d for d in example_documents() if d["kind"] == kind)


def create(custom: client.CustomObjectsApi, body: Manifest, namespace: str) -> Any:
    """Create `body` with dryRun=All; validation runs in full and nothing is stored."""
    body = {**body, "metadata": {k: v for k, v in body["metadata"].items() if k != "namespace"}}
    if body["kind"] == "InferenceService":
        return custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "inferenceservices", body, dry_run="All"
        )
    return custom.create_cluster_custom_object(
        GROUP, VERSION, "inferencenodepools", body, dry_run="All"
    )


Mutation = Callable[[Manifest], None]


def set_path(path: str, value: Any) -> Mutation:
    """A mutation that sets a dotted path (integers index lists); None deletes the key."""

    def mutate(manifest: Manifest) -> None:
        *parents, last = path.split(".")
        node: Any = manifest
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is None:
            del node[last]
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def each(*mutations: Mutation) -> Mutation:
    def mutate(manifest: Manifest) -> None:
        for mutation in mutations:
            mutation(manifest)

    return mutate


def duplicate_first_variant(manifest: Manifest) -> None:
    manifest["spec"]["variants"].append(copy.deepcopy(manifest["spec"]["variants"][0]))


def nine_variants(manifest: Manifest) -> None:
    base = manifest["spec"]["variants"][0]
    manifest["spec"]["variants"] = [{**base, "name": f"v{i}"} for i in range(9)]


ROUTE = {"httpRoute": {"parentRefs": [{"name": "inference-gateway"}]}, "port": 8000}

SERVICE_CASES: dict[str, tuple[Mutation, str]] = {
    "spot share above one": (
        set_path("spec.spot", {"maxShare": 1.5}),
        "maxShare in body should be less than or equal to 1",
    ),
    "min above max": (
        each(set_path("spec.replicas.min", 5), set_path("spec.replicas.max", 2)),
        "replicas.min must not exceed replicas.max",
    ),
    "no variants": (set_path("spec.variants", []), "should have at least 1 items"),
    "too many variants": (nine_variants, "must have at most 8 items"),
    "duplicate variant names": (duplicate_first_variant, "variant names must be unique"),
    "unknown preset": (set_path("spec.metrics.preset", "ollama"), 'Unsupported value: "ollama"'),
    "unknown mode": (set_path("spec.mode", "Manual"), 'Unsupported value: "Manual"'),
    "unknown SLO metric": (set_path("spec.slo.metric", "tpot"), 'Unsupported value: "tpot"'),
    "a routed Service name over 63 characters": (
        each(
            set_path("spec.routing", ROUTE),
            set_path("metadata.name", "c" * 40),
            set_path("spec.variants.0.name", "v" * 30),
        ),
        "with spec.routing each variant gets a Service named <service>-<variant>, a DNS label",
    ),
    "a routed Service name starting with a digit": (
        each(set_path("spec.routing", ROUTE), set_path("metadata.name", "7b-chat")),
        "it starts with a letter and has at most 63 characters",
    ),
    "an SLO metric the preset does not export": (
        set_path("spec.metrics", {"preset": "tei"}),  # the example's SLO is on ttft
        "the metrics preset does not export slo.metric (vllm: ttft, itl, e2e, queue-time;",
    ),
    "negative capacity": (
        set_path("spec.variants.0.capacityRps", -3),
        "capacityRps in body should be greater than 0",
    ),
    "zero capacity": (
        set_path("spec.variants.0.capacityRps", 0),
        "capacityRps in body should be greater than 0",
    ),
    "percentile zero": (
        set_path("spec.slo.percentile", 0),
        "percentile in body should be greater than 0",
    ),
    "percentile above 100": (
        set_path("spec.slo.percentile", 100.5),
        "percentile in body should be less than or equal to 100",
    ),
    "threshold zero": (
        set_path("spec.slo.thresholdSeconds", 0),
        "thresholdSeconds in body should be greater than 0",
    ),
    "missing SLO": (set_path("spec.slo", None), "spec.slo: Required value"),
    "interactive SLO without a threshold": (
        set_path("spec.slo.thresholdSeconds", None),
        "an Interactive SLO needs thresholdSeconds",
    ),
    "batch SLO without a deadline": (
        set_path("spec.slo", {"class": "Batch", "metric": "e2e"}),
        "a Batch SLO needs deadlineSeconds and metric: e2e",
    ),
    "batch deadline on time to first token": (
        set_path("spec.slo", {"class": "Batch", "metric": "ttft", "deadlineSeconds": 600}),
        "a Batch SLO needs deadlineSeconds and metric: e2e",
    ),
    "batch service on the generic preset without a queue gauge": (
        each(
            set_path("spec.slo", {"class": "Batch", "metric": "e2e", "deadlineSeconds": 600}),
            set_path(
                "spec.metrics",
                {"preset": "generic", "requestCounter": "req_total", "latencyHistogram": "lat"},
            ),
        ),
        "a Batch service is sized by what waits in its queue: with the generic preset set "
        "metrics.queueGauge",
    ),
    "deadline on an interactive SLO": (
        set_path("spec.slo.deadlineSeconds", 600),
        "deadlineSeconds is for class: Batch",
    ),
    "unknown SLO class": (set_path("spec.slo.class", "Offline"), 'Unsupported value: "Offline"'),
    "fixed fallback without replicas": (
        set_path("spec.fallback", {"policy": "Fixed"}),
        "fallback.replicas is required when fallback.policy is Fixed",
    ),
    "fallback replicas above max": (
        set_path("spec.fallback", {"policy": "Fixed", "replicas": 41}),
        "fallback.replicas must lie within [replicas.min, replicas.max]",
    ),
    "fixed replicas above max": (
        set_path("spec.replicas.fixed", 50),
        "replicas.fixed must lie within [replicas.min, replicas.max]",
    ),
    "variant name not a DNS label": (
        set_path("spec.variants.0.name", "H100_SXM"),
        "spec.variants[0].name in body should match",
    ),
    "resource name with spaces": (
        set_path("spec.variants.0.resources", {"nvidia gpu": 1}),
        "resources keys must be resource names such as cpu, memory or nvidia.com/gpu",
    ),
    "template without containers": (
        set_path("spec.template.spec.containers", []),
        "should have at least 1 items",
    ),
    "generic preset without metric names": (
        set_path("spec.metrics", {"preset": "generic"}),
        "the generic preset needs requestCounter and latencyHistogram",
    ),
    "PromQL injection in a metric name": (
        set_path("spec.metrics.requestCounter", 'vllm:x"} or vector(1) #'),
        "requestCounter in body should match",
    ),
    "negative startup time": (
        set_path("spec.variants.0.startupSeconds", -1),
        "startupSeconds in body should be greater than or equal to 0",
    ),
    "name too long": (
        set_path("metadata.name", "a" * 41),
        "an InferenceService name has at most 40 characters",
    ),
    "quality floor without the variants' scores": (
        set_path("spec.quality", {"floor": 0.9}),
        "quality.floor is set: every variant needs a quality score (variants[].quality)",
    ),
    "quality floor no variant reaches": (
        each(
            set_path("spec.quality", {"floor": 0.99, "mode": "Average"}),
            set_path("spec.variants.0.quality", 0.97),
            set_path("spec.variants.1.quality", 0.9),
        ),
        "no variant's quality reaches quality.floor",
    ),
    "quality above one": (
        set_path("spec.variants.0.quality", 1.5),
        "quality in body should be less than or equal to 1",
    ),
    "unknown quality mode": (
        each(
            set_path("spec.quality", {"floor": 0.5, "mode": "Median"}),
            set_path("spec.variants.0.quality", 0.9),
            set_path("spec.variants.1.quality", 0.9),
        ),
        'Unsupported value: "Median"',
    ),
    "server override with an empty image": (
        set_path("spec.variants.0.server", {"image": ""}),
        "image in body should be at least 1 chars long",
    ),
    "replicas max zero": (
        set_path("spec.replicas", {"min": 0, "max": 0}),
        "max in body should be greater than or equal to 1",
    ),
}

TWICE_AT_SIX = [{"fromHour": 6, "usdPerKwh": 0.3}, {"fromHour": 6, "usdPerKwh": 0.1}]
POOL_CASES: dict[str, tuple[Mutation, str]] = {
    "a power schedule with an hour twice": (
        set_path("spec.power", {"idleWatts": 24, "maxWatts": 92, "schedule": TWICE_AT_SIX}),
        "power.schedule: each fromHour at most once",
    ),
    "a power schedule hour past 23": (
        set_path("spec.power", {"idleWatts": 24, "maxWatts": 92, "schedule": [{"fromHour": 24}]}),
        "fromHour in body should be less than or equal to 23",
    ),
    "unknown capacity type": (
        set_path("spec.capacityType", "Preemptible"),
        'Unsupported value: "Preemptible"',
    ),
    "an interruption rate on an on-demand pool": (
        set_path("spec.interruptionsPerHour", 0.2),
        "interruptionsPerHour is for capacityType: Spot",
    ),
    "min nodes above max": (
        each(set_path("spec.minNodes", 9), set_path("spec.maxNodes", 3)),
        "minNodes must not exceed maxNodes",
    ),
    "standby above max nodes": (
        each(set_path("spec.standby", {"maxNodes": 5}), set_path("spec.maxNodes", 3)),
        "standby.maxNodes must not exceed maxNodes",
    ),
    "negative standby": (
        set_path("spec.standby", {"maxNodes": -1}),
        "maxNodes in body should be greater than or equal to 0",
    ),
    "negative price": (
        set_path("spec.usdPerHour", -0.5),
        "usdPerHour in body should be greater than or equal to 0",
    ),
    "two providers": (
        set_path("spec.provider", {"kwok": {}, "external": {}}),
        "set exactly one provider: kwok, clusterapi, external or static",
    ),
    "no provider": (
        set_path("spec.provider", {}),
        "set exactly one provider: kwok, clusterapi, external or static",
    ),
    "capacity without memory": (
        set_path("spec.node.capacity", {"cpu": "8"}),
        "node.capacity must include cpu and memory",
    ),
    "unknown taint effect": (
        set_path("spec.node.taints", [{"key": "gpu", "effect": "Sometimes"}]),
        'Unsupported value: "Sometimes"',
    ),
    "idle power above the maximum": (
        set_path("spec.power", {"idleWatts": 120, "maxWatts": 90}),
        "power.idleWatts must not exceed power.maxWatts",
    ),
    "clusterapi without a MachineDeployment": (
        set_path("spec.provider", {"clusterapi": {}}),
        "machineDeployment: Required value",
    ),
}


@pytest.mark.parametrize("case", sorted(SERVICE_CASES))
def test_invalid_inference_service_is_rejected_with_a_clear_message(
    custom: client.CustomObjectsApi, namespace: str, case: str
) -> None:
    mutate, expected = SERVICE_CASES[case]
    manifest = copy.deepcopy(example("InferenceService"))
    mutate(manifest)
    with pytest.raises(client.ApiException) as rejected:
        create(custom, manifest, namespace)
    assert rejected.value.status == 422, rejected.value.body
    message = json.loads(rejected.value.body)["message"]
    assert expected in message, message


@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_invalid_node_pool_is_rejected_with_a_clear_message(
    custom: client.CustomObjectsApi, case: str
) -> None:
    mutate, expected = POOL_CASES[case]
    manifest = copy.deepcopy(example("InferenceNodePool"))
    mutate(manifest)
    with pytest.raises(client.ApiException) as rejected:
        create(custom, manifest, "")
    assert rejected.value.status == 422, rejected.value.body
    message = json.loads(rejected.value.body)["message"]
    assert expected in message, message


def test_every_example_is_accepted(custom: client.CustomObjectsApi, namespace: str) -> None:
    kinds = []
    for document in example_documents():
        if document["kind"] in ("InferenceService", "InferenceNodePool"):
            created = create(custom, document, namespace)
            kinds.append(created["kind"])
    assert kinds.count("InferenceNodePool") == 4  # with examples/spot-batch/'s spot pool
    assert kinds.count("InferenceService") == 4


def test_defaults_are_applied_by_the_api_server(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    minimal = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": "minimal"},
        "spec": {
            "slo": {"thresholdSeconds": 1},
            "replicas": {"max": 3},
            "variants": [{"name": "a", "nodePool": "gpu-l4", "capacityRps": 2}],
            "template": {"spec": {"containers": [{"name": "server", "image": "x"}]}},
        },
    }
    spec = create(custom, minimal, namespace)["spec"]
    assert spec["mode"] == "Auto"
    assert spec["slo"] == {
        "class": "Interactive",
        "metric": "ttft",
        "percentile": 95,
        "thresholdSeconds": 1,
    }
    assert spec["metrics"] == {"preset": "vllm"}
    assert spec["replicas"]["min"] == 1
    assert spec["scaleDown"] == {"stabilizationSeconds": 300, "maxStepPercent": 25}
    assert spec["fallback"] == {"policy": "Hold"}
    assert spec["variants"][0]["startupSeconds"] == 60
    # Unknown pod fields survive: the template is a full PodTemplateSpec.
    assert spec["template"]["spec"]["containers"][0]["image"] == "x"
