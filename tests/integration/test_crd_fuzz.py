"""CRD fuzzing against the real API server: hypothesis mutates valid manifests at random
paths; every object the server accepts (dry run) must go through the operator's models,
planner and reconciler without a crash, and every rejection must carry a readable message."""

from __future__ import annotations

import copy
import json
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, event, given, settings
from kubernetes import client

from infscale.api import v1alpha1
from infscale.controller import decide, service_reconciler
from infscale.ports import metrics
from tests import fakes
from tests.integration.manifests import GROUP, VERSION, kwok_pool, service_manifest

NAMESPACE = "default"
Path = tuple[str | int, ...]

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from(["", "x", "ttft", "vllm", "Auto", "1Gi", "-1", "0.5", "a" * 300, "1e400"]),
    st.text(max_size=12),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.sampled_from(["name", "min", "max", "x"]), st.integers(-3, 3), max_size=2),
)


def service_base() -> dict[str, Any]:
    body = service_manifest("fuzz", "pool-big", "pool-small")
    spec = body["spec"]
    spec["replicas"].update(idleSeconds=300)
    spec["scaleDown"] = {"stabilizationSeconds": 300, "maxStepPercent": 50}
    spec["metrics"] = {"preset": "vllm"}
    spec["mode"] = "Auto"
    return body


def leaves(value: Any, path: Path = ()) -> list[Path]:
    """Every path into the manifest's spec (objects, list items and scalars)."""
    found = [path] if path else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += leaves(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += leaves(child, (*path, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(base)
    paths = leaves(body["spec"])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        parent: Any = body["spec"]
        try:
            for step in path[:-1]:
                parent = parent[step]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or retyped this path
    return body


def submit(custom: client.CustomObjectsApi, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The object as the server would store it (dry run: pruned and defaulted), or its
    rejection message."""
    try:
        if body["kind"] == "InferenceService":
            stored = custom.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, "inferenceservices", body, dry_run="All"
            )
        else:
            stored = custom.create_cluster_custom_object(
                GROUP, VERSION, "inferencenodepools", body, dry_run="All"
            )
    except client.ApiException as error:
        if error.status not in (400, 422):
            raise
        return {}, str(json.loads(error.body)["message"])
    assert isinstance(stored, dict)
    return stored, ""


def assert_readable(message: str) -> None:
    assert "spec" in message, f"the message names no field: {message}"
    assert len(message) < 4000
    for noise in ("panic", "goroutine", "runtime error"):
        assert noise not in message, message


class SomeMetrics:
    """Every service seen at 7 rps within its SLO: drives the planner's known-data path."""

    queries_issued = 0

    def observe(
        self, queries: list[metrics.ServiceQuery]
    ) -> dict[tuple[str, str], metrics.ServiceMetrics]:
        signals = metrics.Signals(rps=7.0, latency_s=0.1, slo_attainment=1.0)
        return {
            q.key: metrics.ServiceMetrics(total=signals, variants={}, pods={}, pod_variant={})
            for q in queries
        }


def pools_for(spec: v1alpha1.InferenceServiceSpec) -> dict[str, v1alpha1.InferenceNodePoolSpec]:
    return {
        v.node_pool: v1alpha1.InferenceNodePool.model_validate(kwok_pool(v.node_pool)).spec
        for v in spec.variants
    }


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzed_services_are_rejected_readably_or_handled(
    custom: client.CustomObjectsApi, data: st.DataObject
) -> None:
    stored, message = submit(custom, data.draw(mutated(service_base())))
    event("rejected" if message else "accepted")
    if message:
        assert_readable(message)
        return
    # Accepted: the operator's own model must read it, plan it and reconcile it.
    body = {**stored, "metadata": {**stored["metadata"], "uid": "uid-fuzz", "generation": 1}}
    spec = v1alpha1.InferenceService.model_validate(body).spec
    pools = pools_for(spec)
    decisions, _ = decide.Decider(SomeMetrics()).decide(
        [decide.ServiceInput((NAMESPACE, "fuzz"), spec, held=False)], pools, {}, 1_000_000.0
    )
    cluster = fakes.FakeCluster()
    ports = service_reconciler.Ports(workloads=cluster, status=cluster, events=cluster)
    outcome = service_reconciler.reconcile_service(
        body, pools, [], ports, "2026-01-01T00:00:00Z", decisions.get((NAMESPACE, "fuzz"))
    )
    assert outcome.status["replicas"] >= 0


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzed_pools_are_rejected_readably_or_read(
    custom: client.CustomObjectsApi, data: st.DataObject
) -> None:
    stored, message = submit(custom, data.draw(mutated(kwok_pool("fuzz-pool", gpus=2))))
    event("rejected" if message else "accepted")
    if message:
        assert_readable(message)
        return
    v1alpha1.InferenceNodePool.model_validate(stored)


@pytest.mark.parametrize(
    "hostile",
    ['chat"} or vector(1) #', 'x",namespace=~".*', "a|.*", 'vllm:x{namespace="b"}'],
)
def test_promql_in_spec_fields_is_rejected_or_inert(
    custom: client.CustomObjectsApi, hostile: str
) -> None:
    body = service_base()
    body["spec"]["metrics"] = {"preset": "generic", "requestCounter": hostile}
    _, message = submit(custom, body)
    if not message:
        pytest.fail(f"a metric name {hostile!r} with PromQL syntax was accepted")
    assert_readable(message)
