"""The pods the cycle lists are kept slim: every rule that reads a pod reads the same from both."""

from __future__ import annotations

import json
from typing import Any

from infscale.adapters import cluster_nodes
from infscale.controller import cycle, pool_reconciler
from infscale.labels import SERVICE_LABEL, VARIANT_LABEL

NOW_S = 1_780_000_000.0


def _pod(name: str, ready: bool, unschedulable: bool = False) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = [
        {"type": "Ready", "status": "True" if ready else "False", "lastProbeTime": None},
    ]
    if unschedulable:
        conditions.append({
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            "lastTransitionTime": "2026-06-01T00:00:00Z",
        })  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "ml", "uid": "u-" + name,
            "labels": {SERVICE_LABEL: "chat", VARIANT_LABEL: "l4"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{" * 2000},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "chat-l4-abc", "uid": "r"}],
            "creationTimestamp": "2026-06-01T00:00:00Z",
            "managedFields": [{"manager": "kube-controller-manager", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {
            "nodeName": "" if unschedulable else "node-a",
            "nodeSelector": {"infscale.dev/pool": "gpu"},
            "containers": [{
                "name": "server", "image": "vllm/vllm-openai",
                "env": [{"name": f"E{i}", "value": "x" * 50} for i in range(40)],
                "resources": {"requests": {"cpu": "4", "nvidia.com/gpu": "1"}},
            }],
            "volumes": [{"name": "cache", "emptyDir": {}}],
        },
        "status": {"phase": "Running" if ready else "Pending", "conditions": conditions},
    }  # fmt: skip


def test_a_slim_pod_reads_the_same_to_every_rule_at_a_tenth_of_the_size() -> None:
    pods = [_pod("a", ready=True), _pod("b", ready=False), _pod("c", False, unschedulable=True)]
    slim = [cluster_nodes.slim_pod(p) for p in pods]
    assert len(json.dumps(slim)) * 10 < len(json.dumps(pods))
    for full, thin in zip(pods, slim, strict=True):
        assert pool_reconciler.pod_requests(thin) == pool_reconciler.pod_requests(full)
        assert pool_reconciler.parse_time(thin["metadata"]["creationTimestamp"]) is not None
    node = {"metadata": {"name": "node-a"}, "status": {"conditions": []}}
    assert pool_reconciler.facts(node, slim) == pool_reconciler.facts(node, pods)
    assert cycle.stuck_pods(slim, NOW_S) == cycle.stuck_pods(pods, NOW_S)
    assert cycle.stuck_pods(slim, NOW_S)[("ml", "chat")][0].message.startswith("0/3 nodes")
