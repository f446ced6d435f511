"""The kwok node-pool provider on the real cluster: nodes follow the pods, and go only safely."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration import manifests, waiting
from tests.integration.manifests import ready_pods
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_chart import tool

pytestmark = pytest.mark.integration

GROUP, VERSION = "infscale.dev", "v1alpha1"
NODE_POOL_LABEL = "infscale.dev/node-pool"


def pool(name: str) -> dict[str, Any]:
    return manifests.kwok_pool(name)


@pytest.fixture
def pool_name(
    custom: client.CustomObjectsApi, core: client.CoreV1Api, unique_name: str
) -> Iterator[str]:
    name = f"l4-{unique_name}"
    custom.create_cluster_custom_object(GROUP, VERSION, "inferencenodepools", pool(name))
    yield name
    custom.delete_cluster_custom_object(GROUP, VERSION, "inferencenodepools", name)
    for node in core.list_node(label_selector=f"{NODE_POOL_LABEL}={name}").items:
        core.delete_node(node.metadata.name)


def pool_nodes(core: client.CoreV1Api, name: str) -> list[client.V1Node]:
    return list(core.list_node(label_selector=f"{NODE_POOL_LABEL}={name}").items)


def test_nodes_follow_replicas_and_only_empty_nodes_go(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    pool_name: str,
    tmp_path: Path,
) -> None:
    operator = OperatorProcess(
        tmp_path / "operator.log", 1.0, "--node-cooldown", "3",
        namespaces=[namespace], pools=[pool_name],
    )  # fmt: skip
    operator.start()
    try:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "inferenceservices", manifests.fixed_service(pool_name, 3)
        )
        # Three one-GPU replicas need three nodes, added at most two per cycle.
        waiting.until(lambda: len(ready_pods(core, namespace)) == 3, timeout_s=60, what="3 ready")
        nodes = pool_nodes(core, pool_name)
        assert len(nodes) == 3
        for node in nodes:
            assert node.metadata.labels["infscale.dev/pool"] == pool_name
            taints = {(t.key, t.effect) for t in node.spec.taints or []}
            assert ("nvidia.com/gpu", "NoSchedule") in taints
            assert ("infscale.dev/provisioning", "NoSchedule") not in taints

        def pool_status() -> dict[str, Any]:
            body = custom.get_cluster_custom_object(GROUP, VERSION, "inferencenodepools", pool_name)
            assert isinstance(body, dict)
            return dict(body.get("status") or {})

        waiting.until(lambda: pool_status().get("readyNodes") == 3, timeout_s=30, what="ready=3")
        status = {"status": pool_status()}
        assert status["status"]["provider"] == "kwok"
        assert status["status"]["allocatable"]["nvidia.com/gpu"] == 3
        [ready] = status["status"]["conditions"]  # kept by the API server's status schema
        assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "NodesReady")
        assert ready["message"] == "3 of 3 node(s) Ready"
        waited = subprocess.run(  # what the README tells users to run
            [tool("kubectl"), "wait", "--for=condition=Ready", f"infpool/{pool_name}",
             "--timeout=10s"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert waited.returncode == 0, waited.stderr

        # A pod infscale does not own lands on one node: that node must never be removed.
        foreign_node = ready_pods(core, namespace)[0].spec.node_name
        core.create_namespaced_pod(namespace, manifests.foreign_pod(foreign_node))
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "inferenceservices", "chat",
            {"spec": {"replicas": {"fixed": 0}}},
        )  # fmt: skip

        def only_foreign_node_left() -> bool:
            return [n.metadata.name for n in pool_nodes(core, pool_name)] == [foreign_node]

        waiting.until(only_foreign_node_left, timeout_s=60, what="the empty nodes removed")
        events = core.list_namespaced_event(
            "default", field_selector=f"involvedObject.name={pool_name}"
        )
        assert any(e.reason == "PoolResized" for e in events.items)
    finally:
        operator.stop()
        print(operator.log()[-4000:])


def make_member_node(core: client.CoreV1Api, name: str, pool_name: str) -> None:
    capacity = {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1", "pods": "110"}
    core.create_node(
        client.V1Node(
            metadata=client.V1ObjectMeta(
                name=name,
                labels={
                    NODE_POOL_LABEL: pool_name,
                    "infscale.dev/pool": pool_name,
                    "kubernetes.io/hostname": name,
                },
                annotations={"kwok.x-k8s.io/node": "fake"},
            ),
            status=client.V1NodeStatus(capacity=capacity, allocatable=capacity),
        )
    )


def test_a_pod_disruption_budget_holds_a_node_until_it_allows_eviction(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    api_client: client.ApiClient,
    namespace: str,
    pool_name: str,
    tmp_path: Path,
) -> None:
    # Two nodes, one slow-starting replica on each; one node would do, so one must be drained,
    # but a PodDisruptionBudget forbids evicting the (not yet healthy) replicas.
    for suffix in ("a", "b"):
        make_member_node(core, f"{pool_name}-{suffix}", pool_name)
    body = manifests.fixed_service(pool_name, 2)
    body["spec"]["variants"][0]["resources"] = {"cpu": "1"}
    # Running but never Ready, as with a failing readiness probe: such pods are evicted only
    # when the budget allows (Pending pods would be evictable regardless of any budget).
    body["spec"]["template"]["metadata"] = {"annotations": {"kwok.infscale.dev/unready": "true"}}
    spread = {
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"infscale.dev/service": "chat"}},
    }
    body["spec"]["template"]["spec"]["topologySpreadConstraints"] = [spread]
    policy = client.PolicyV1Api(api_client)
    policy.create_namespaced_pod_disruption_budget(
        namespace,
        client.V1PodDisruptionBudget(
            metadata=client.V1ObjectMeta(name="chat"),
            spec=client.V1PodDisruptionBudgetSpec(
                min_available=2,
                selector=client.V1LabelSelector(match_labels={"infscale.dev/service": "chat"}),
            ),
        ),
    )
    operator = OperatorProcess(
        tmp_path / "operator.log", 1.0, "--node-cooldown", "8",
        namespaces=[namespace], pools=[pool_name],
    )  # fmt: skip
    operator.start()
    try:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "inferenceservices", body)

        def scheduled() -> int:
            pods = core.list_namespaced_pod(namespace, label_selector="infscale.dev/service=chat")
            return len({p.spec.node_name for p in pods.items if p.spec.node_name})

        waiting.until(lambda: scheduled() == 2, timeout_s=30, what="one replica on each node")

        def draining() -> list[client.V1Node]:
            return [
                n for n in pool_nodes(core, pool_name)
                if "infscale.dev/draining-since" in (n.metadata.annotations or {})
            ]  # fmt: skip

        held = waiting.until(draining, timeout_s=30, what="a node chosen for draining")[0]
        assert held.spec.unschedulable
        waiting.until(
            lambda: "refused by a PodDisruptionBudget" in operator.log(),
            timeout_s=30,
            what="an eviction refused by the budget",
        )
        time.sleep(3)
        assert len(pool_nodes(core, pool_name)) == 2, "the budget must hold the node"

        policy.delete_namespaced_pod_disruption_budget("chat", namespace)
        waiting.until(
            lambda: len(pool_nodes(core, pool_name)) == 1, timeout_s=30, what="the node removed"
        )
        assert held.metadata.name not in [n.metadata.name for n in pool_nodes(core, pool_name)]
    finally:
        operator.stop()
        print(operator.log()[-4000:])


def test_an_operator_killed_during_a_scale_down_neither_loses_nor_duplicates_nodes(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    pool_name: str,
    tmp_path: Path,
) -> None:
    seen: set[str] = set()

    def nodes_now() -> set[str]:
        names = {str(n.metadata.name) for n in pool_nodes(core, pool_name)}
        seen.update(names)
        return names

    log = tmp_path / "operator.log"

    def new_operator() -> OperatorProcess:
        return OperatorProcess(
            log, 1.0, "--node-cooldown", "3", namespaces=[namespace], pools=[pool_name]
        )

    operator = new_operator()
    operator.start()
    try:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "inferenceservices", manifests.fixed_service(pool_name, 3)
        )
        waiting.until(lambda: len(ready_pods(core, namespace)) == 3, timeout_s=60, what="3 ready")
        assert len(nodes_now()) == 3
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "inferenceservices", "chat",
            {"spec": {"replicas": {"fixed": 1}}},
        )  # fmt: skip

        def cooling_down() -> bool:
            nodes_now()
            return any(
                "infscale.dev/empty-since" in (n.metadata.annotations or {})
                for n in pool_nodes(core, pool_name)
            )

        # Killed while empty nodes cool down (their markers live on the nodes), and again
        # right after the first node went.
        waiting.until(cooling_down, timeout_s=30, what="an empty node cooling down")
        operator.kill()
        operator = new_operator()
        operator.start()
        waiting.until(lambda: len(nodes_now()) < 3, timeout_s=60, what="a node removed")
        operator.kill()
        operator = new_operator()
        operator.start()
        serving = ready_pods(core, namespace)
        assert len(serving) == 1
        keep = {serving[0].spec.node_name}
        waiting.until(lambda: nodes_now() == keep, timeout_s=60, what=f"only {keep} left")
        time.sleep(3)
        assert nodes_now() == keep
        assert len(seen) == 3, f"no node bought during the scale-down: {sorted(seen)}"
        assert [p.metadata.name for p in ready_pods(core, namespace)] == [
            serving[0].metadata.name
        ], "the serving replica was never disturbed"
    finally:
        operator.stop()
        print(operator.log()[-4000:])


def test_an_interrupted_node_is_replaced_and_the_events_say_so(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    pool_name: str,
    tmp_path: Path,
) -> None:
    """A node deleted from under the pool (a spot interruption) and one given a termination
    notice (the AWS Node Termination Handler's taint) are each replaced in the next cycle."""
    operator = OperatorProcess(
        tmp_path / "operator.log", 1.0, namespaces=[namespace], pools=[pool_name]
    )
    operator.start()
    try:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "inferenceservices", manifests.fixed_service(pool_name, 2)
        )
        waiting.until(lambda: len(ready_pods(core, namespace)) == 2, timeout_s=60, what="2 ready")
        first, second = sorted(str(n.metadata.name) for n in pool_nodes(core, pool_name))
        core.delete_node(first)

        def replaced() -> bool:
            names = {n.metadata.name for n in pool_nodes(core, pool_name)}
            return first not in names and len(names) == 2

        waiting.until(replaced, timeout_s=30, what="a node in place of the deleted one")

        def counted() -> int:
            pool = custom.get_cluster_custom_object(GROUP, VERSION, "inferencenodepools", pool_name)
            assert isinstance(pool, dict)
            return int((pool.get("status") or {}).get("interruptions") or 0)

        waiting.until(lambda: counted() == 1, timeout_s=30, what="status.interruptions 1")
        notice = {"key": "aws-node-termination-handler/spot-itn", "effect": "NoSchedule"}
        core.patch_node(second, {"spec": {"taints": [notice]}})
        waiting.until(
            lambda: len(pool_nodes(core, pool_name)) == 3,
            timeout_s=30,
            what="a replacement while the noticed node still serves",
        )
        assert second in {n.metadata.name for n in pool_nodes(core, pool_name)}, (
            "never ours to remove"
        )
        waiting.until(lambda: len(ready_pods(core, namespace)) == 2, timeout_s=60, what="2 ready")
    finally:
        operator.stop()
    messages = [
        str(e.message)
        for e in core.list_event_for_all_namespaces(
            field_selector=f"involvedObject.name={pool_name},reason=NodeInterrupted"
        ).items
    ]
    assert any(f"node {first} left the pool without infscale removing it" in m for m in messages)
    assert any(f"node {second} has a termination notice" in m for m in messages)
