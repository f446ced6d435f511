"""The committed CRDs match the models, and the generated schemas are structural."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infscale.api import crd, v1alpha1

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("filename", sorted(crd.CRDS))
def test_committed_crd_matches_the_models(filename: str) -> None:
    committed = (CRD_DIR / filename).read_text()
    assert committed == crd.render(crd.CRDS[filename]()), (
        f"crds/{filename} is stale: run hack/gen-crds.sh and commit the result"
    )


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, child in node.items():
            found.extend(walk(child, f"{path}.{key}"))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found.extend(walk(child, f"{path}[{index}]"))
    return found


@pytest.mark.parametrize("build", list(crd.CRDS.values()))
def test_schema_is_structural(build: Any) -> None:
    schema = build()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in walk(schema):
        assert "$ref" not in node, path
        assert node.get("type") != "null", path
        assert "title" not in node or not isinstance(node["title"], str), path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True, path
            assert "minimum" in node, path


def test_quantities_are_int_or_string() -> None:
    schema = crd.inference_node_pool_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    capacity = schema["properties"]["spec"]["properties"]["node"]["properties"]["capacity"]
    values = capacity["additionalProperties"]
    assert values["x-kubernetes-int-or-string"] is True
    assert values["minimum"] == 0
    pattern = re.compile(values["pattern"])
    for good in ("1", "500m", "32Gi", "1.5", "1e3", "+2", ".5", "2E-3"):
        assert pattern.match(good), good
    for bad in ("", "-1", "1GiB", "abc", "1 Gi", "0x10"):
        assert not pattern.match(bad), bad


def test_inference_service_has_the_scale_subresource() -> None:
    version = crd.inference_service_crd()["spec"]["versions"][0]
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas.fixed"
    assert "status" in version["subresources"]


def test_examples_parse_with_the_models() -> None:
    kinds: dict[str, type[v1alpha1.ApiModel]] = {
        "InferenceService": v1alpha1.InferenceService,
        "InferenceNodePool": v1alpha1.InferenceNodePool,
    }
    parsed = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document["kind"] in kinds:
                parsed.append(kinds[document["kind"]].model_validate(document))
    services = [p for p in parsed if isinstance(p, v1alpha1.InferenceService)]
    assert {v.name for s in services for v in s.spec.variants} >= {"h100", "l4", "cpu"}
    assert services[0].spec.scale_down.stabilization_seconds == 300
