"""API conflicts: while the operator scales, another writer bumps the resourceVersion of every
object it touches (the service, its Deployments, the pool's nodes) many times a second. The
operator's writes must still all land: the scale-out and scale-in finish exactly, with no
error in its log."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client

from tests.integration import waiting
from tests.integration.manifests import Cluster, service_manifest
from tests.integration.operator_process import OperatorProcess


class Bumper(threading.Thread):
    """Patches an annotation on the service, its Deployments and the pools' nodes in a loop."""

    def __init__(self, api: client.ApiClient, namespace: str, pools: tuple[str, str]) -> None:
        super().__init__(daemon=True)
        self.cluster = Cluster(api, namespace)
        self.namespace, self.pools = namespace, pools
        self.stopped = threading.Event()
        self.bumps = 0

    def run(self) -> None:
        while not self.stopped.is_set():
            patch = {"metadata": {"annotations": {"example.com/bump": str(self.bumps)}}}
            self.write(functools.partial(self.cluster.patch_service, "chat", patch))
            for d in self.cluster.apps.list_namespaced_deployment(self.namespace).items:
                self.write(
                    functools.partial(
                        self.cluster.apps.patch_namespaced_deployment,
                        d.metadata.name, self.namespace, patch,
                    )
                )  # fmt: skip
            for pool in self.pools:
                selector = f"infscale.dev/node-pool={pool}"
                for node in self.cluster.core.list_node(label_selector=selector).items:
                    self.write(
                        functools.partial(self.cluster.core.patch_node, node.metadata.name, patch)
                    )
            time.sleep(0.02)

    def write(self, call: Callable[[], object]) -> None:
        try:
            call()
            self.bumps += 1
        except client.ApiException:
            pass  # the object went away meanwhile


@pytest.mark.serial  # writes to the shared API server many times a second on purpose
def test_concurrent_writers_lose_nothing(
    api_client: client.ApiClient, namespace: str, pools: tuple[str, str], tmp_path: Path
) -> None:
    cluster = Cluster(api_client, namespace)
    manifest = service_manifest("chat", *pools)
    cluster.create_service(manifest)
    bumper = Bumper(api_client, namespace, pools)
    operator = OperatorProcess(
        tmp_path / "operator.log", 1.0, "--node-cooldown", "2", namespaces=[namespace], pools=pools
    )
    bumper.start()
    try:
        operator.start()
        waiting.until(lambda: cluster.replicas("chat-small") == 1, timeout_s=60, what="1 replica")
        for target in (4, 2):
            cluster.patch_service("chat", {"spec": {"replicas": {"fixed": target}}})

            def scaled(t: int = target) -> bool:
                status = cluster.service("chat").get("status") or {}
                return cluster.replicas("chat-small") == t and status.get("replicas") == t

            what = f"{target} replicas in the Deployment and the status"
            waiting.until(scaled, timeout_s=60, what=what)
        status = cluster.service("chat")["status"]
        assert status["observedGeneration"] == cluster.service("chat")["metadata"]["generation"]
    finally:
        bumper.stopped.set()
        bumper.join(timeout=10)
        operator.stop()
    print(f"{bumper.bumps} concurrent writes during the run")
    assert bumper.bumps > 50, "the concurrent writer must actually have written"
    errors = [
        line for line in operator.log().splitlines() if " ERROR " in line or "Traceback" in line
    ]
    assert not errors, "\n".join(errors[:20])
