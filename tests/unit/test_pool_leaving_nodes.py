"""The pool controller with a provider whose nodes come and go later (clusterapi): a node whose
removal was asked for is leaving, never revived nor drained again, and its removal is re-asserted;
nodes asked for but not there yet count, so they are not bought twice."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

from infscale.api import v1alpha1
from infscale.controller import pool_reconciler
from infscale.controller.decisions import PoolPlan
from infscale.domain import nodes as node_rules
from infscale.labels import REMOVING_ANNOTATION

NOW = 10_000.0
POOL: dict[str, Any] = {
    "metadata": {"name": "p", "generation": 1},
    "spec": {
        "provider": {"clusterapi": {"machineDeployment": {"namespace": "capi", "name": "md"}}},
        "node": {"capacity": {"cpu": "8", "memory": "32Gi"}, "labels": {"pool": "p"}},
        "usdPerHour": 1.0,
        "maxNodes": 5,
    },
}
LIMITS = node_rules.PoolLimits(min_nodes=0, max_nodes=5, scale_down_cooldown_s=0)


@dataclasses.dataclass
class Recorder:
    calls: list[str] = dataclasses.field(default_factory=list)
    owns_nodes: bool = True
    pending: int = 0
    messages: list[str] = dataclasses.field(default_factory=list)

    def patch_node(self, name: str, patch: dict[str, Any]) -> None:
        self.calls.append(f"patch {name} {patch}")

    def evict(self, namespace: str, name: str) -> str | None:
        self.calls.append(f"evict {name}")
        return None

    def create_nodes(
        self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, count: int
    ) -> list[str]:
        self.calls.append(f"create {count}")
        return [f"new{i}" for i in range(count)]

    def pending_nodes(
        self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, listed: Collection[str]
    ) -> int:
        return self.pending

    def delete_node(self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, node: str) -> None:
        self.calls.append(f"delete {node}")

    def write_pool_status(self, name: str, status: dict[str, Any]) -> None:
        pass

    def record(self, involved: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        self.calls.append(f"event {reason}")
        self.messages.append(message)


def node(name: str, **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {"pool": "p"},
            "annotations": annotations,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"unschedulable": bool(annotations)},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def reconcile(
    members: list[dict[str, Any]], planned: int, pending: int = 0
) -> tuple[Recorder, pool_reconciler.PoolOutcome]:
    recorder = Recorder(pending=pending)
    ports = pool_reconciler.PoolPorts(recorder, {"clusterapi": recorder}, recorder, recorder)
    outcome = pool_reconciler.reconcile_pool(
        "p", POOL, members, {}, [], ports, LIMITS, NOW, PoolPlan(planned)
    )
    return recorder, outcome


def test_a_leaving_node_is_not_revived_and_its_removal_is_reasserted() -> None:
    leaving = node(
        "old",
        **{
            "infscale.dev/draining-since": "2026-01-01T00:00:00Z",
            REMOVING_ANNOTATION: "2026-01-01T00:00:00Z",
        },
    )
    recorder, outcome = reconcile([leaving], planned=1)
    assert "delete old" in recorder.calls
    assert not any(c.startswith("patch old") for c in recorder.calls), "not uncordoned"
    assert "create 1" in recorder.calls, "a replacement, since the leaving node does not count"
    assert outcome.deleted == []
    assert outcome.status["usdPerHour"] == 2.0, "the leaving node costs until it is gone"


def test_a_removed_node_is_marked_leaving() -> None:
    draining = node("idle", **{"infscale.dev/draining-since": "2026-01-01T00:00:00Z"})
    recorder, outcome = reconcile([draining], planned=0)
    assert outcome.deleted == ["idle"]
    assert recorder.calls.index("delete idle") < next(
        i for i, c in enumerate(recorder.calls) if REMOVING_ANNOTATION in c
    )


def test_nodes_still_provisioning_are_not_bought_again_and_cost() -> None:
    recorder, outcome = reconcile([node("a")], planned=3, pending=2)
    assert not any(c.startswith("create") for c in recorder.calls)
    assert outcome.status["usdPerHour"] == 3.0
    assert outcome.status["readyNodes"] == 1
    recorder, _ = reconcile([node("a")], planned=4, pending=2)
    assert "create 1" in recorder.calls


def test_the_ready_condition_says_whether_the_pool_has_what_it_is_asked_for() -> None:
    def ready(members: list[dict[str, Any]], planned: int, pending: int = 0) -> dict[str, Any]:
        [condition] = reconcile(members, planned, pending)[1].status["conditions"]
        return dict(condition)

    assert ready([node("a")], planned=1)["reason"] == "NodesReady"
    coming = ready([node("a")], planned=3, pending=2)
    assert (coming["status"], coming["reason"]) == ("False", "Provisioning")
    assert coming["message"] == "1 of 3 node(s) Ready, the rest provisioning"
    short = ready([node("a")], planned=7)  # maxNodes is 5
    assert (short["status"], short["reason"]) == ("False", "AtMaxNodes")
    assert short["message"].startswith("the plan needs 7 node(s) and spec.maxNodes is 5")


def test_a_drain_stuck_for_ten_minutes_is_named_in_a_warning() -> None:
    def drain_for(seconds: float) -> list[str]:
        since = pool_reconciler.format_time(NOW - seconds)
        stuck = node("stuck", **{"infscale.dev/draining-since": since})
        pod = {
            "metadata": {
                "namespace": "team-a",
                "name": "chat-l4-x",
                "labels": {"infscale.dev/service": "chat"},
                "deletionTimestamp": since,
            },
            "spec": {"nodeName": "stuck"},
            "status": {"phase": "Running"},
        }
        recorder = Recorder()
        ports = pool_reconciler.PoolPorts(recorder, {"clusterapi": recorder}, recorder, recorder)
        pool_reconciler.reconcile_pool(
            "p", POOL, [stuck], {"stuck": [pod]}, [pod], ports, LIMITS, NOW, PoolPlan(0)
        )
        return recorder.messages

    assert drain_for(300) == []  # a pod terminating for five minutes: no news yet
    assert drain_for(900) == [
        "node stuck has drained for over 10 min and is still billed: pods still terminating "
        "(team-a/chat-l4-x)"
    ]


def test_a_node_leaving_a_pool_sized_elsewhere_is_routine_not_a_warning() -> None:
    def left(owns_nodes: bool) -> tuple[list[str], int]:
        recorder = Recorder(owns_nodes=owns_nodes)
        ports = pool_reconciler.PoolPorts(recorder, {"clusterapi": recorder}, recorder, recorder)
        before = {**POOL, "status": {"interruptions": 2}}
        outcome = pool_reconciler.reconcile_pool(
            "p", before, [node("a")], {}, [], ports, LIMITS, NOW, PoolPlan(1),
            previous=frozenset({"a", "b"}),
        )  # fmt: skip
        events = [c for c in recorder.calls if c.startswith("event Node")]
        return events, outcome.status["interruptions"]

    # A spot reclaim or a deletion: counted in the pool's history (status.interruptions).
    assert left(owns_nodes=True) == (["event NodeInterrupted"], 3)
    assert left(owns_nodes=False) == (["event NodeLeft"], 2)  # Karpenter's or CA's scale-down
