"""API throttling: the operator runs as a ServiceAccount whose requests API Priority and
Fairness squeezes into a tiny priority level that rejects (HTTP 429, Retry-After) what does not
fit, while a noisy neighbour with the same identity floods it. The operator's requests are
retried with backoff: the scale-out and scale-in still finish exactly."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.integration import waiting
from tests.integration.manifests import Cluster, service_manifest
from tests.integration.operator_process import OperatorProcess

pytestmark = pytest.mark.integration
ACCOUNT = "throttled-operator"


def kubectl_apply(text: str) -> None:
    subprocess.run(["kubectl", "apply", "-f", "-"], input=text.encode(), check=True,
                   capture_output=True)  # fmt: skip


def kubectl_delete(text: str) -> None:
    subprocess.run(["kubectl", "delete", "--ignore-not-found", "-f", "-"], input=text.encode(),
                   check=False, capture_output=True)  # fmt: skip


def squeeze(namespace: str) -> str:
    """A priority level with one concurrency share and no queue, for the account's requests."""
    return f"""
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata: {{name: {namespace}-squeeze}}
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 1
    lendablePercent: 0
    borrowingLimitPercent: 0
    limitResponse: {{type: Reject}}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {{name: {namespace}-squeeze}}
spec:
  priorityLevelConfiguration: {{name: {namespace}-squeeze}}
  matchingPrecedence: 500
  distinguisherMethod: {{type: ByUser}}
  rules:
  - subjects:
    - {{kind: ServiceAccount, serviceAccount: {{name: {ACCOUNT}, namespace: {namespace}}}}}
    resourceRules: [{{verbs: ["*"], apiGroups: ["*"], resources: ["*"], clusterScope: true,
                      namespaces: ["*"]}}]
    nonResourceRules: [{{verbs: ["*"], nonResourceURLs: ["*"]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {namespace}-throttled}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}
subjects: [{{kind: ServiceAccount, name: {ACCOUNT}, namespace: {namespace}}}]
"""


@pytest.fixture
def account_kubeconfig(core: client.CoreV1Api, namespace: str, tmp_path: Path) -> Iterator[Path]:
    """A kubeconfig holding a token of the squeezed ServiceAccount."""
    core.create_namespaced_service_account(namespace, {"metadata": {"name": ACCOUNT}})
    objects = squeeze(namespace)
    kubectl_apply(objects)
    token = core.create_namespaced_service_account_token(
        ACCOUNT, namespace, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    admin = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    cluster = admin["clusters"][0]
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "clusters": [cluster],
        "users": [{"name": ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": ACCOUNT, "context": {"cluster": cluster["name"], "user": ACCOUNT}}],
        "current-context": ACCOUNT,
    }))  # fmt: skip
    yield path
    kubectl_delete(objects)


class NoisyNeighbour(threading.Thread):
    """Lists every Event as fast as it can from many threads, with the operator's identity."""

    def __init__(self, kubeconfig: Path, threads: int = 24) -> None:
        super().__init__(daemon=True)
        from kubernetes import config

        self.api = config.new_client_from_config(str(kubeconfig))
        self.threads, self.stopped = threads, threading.Event()
        self.rejected = self.served = 0

    def run(self) -> None:
        workers = [threading.Thread(target=self.flood, daemon=True) for _ in range(self.threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def flood(self) -> None:
        core = client.CoreV1Api(self.api)
        while not self.stopped.is_set():
            try:
                core.list_event_for_all_namespaces(_preload_content=False)
                self.served += 1
            except client.ApiException as error:
                if error.status != 429:
                    raise
                self.rejected += 1


@pytest.mark.timeout(300)
def test_throttled_operator_still_converges(
    api_client: client.ApiClient,
    namespace: str,
    pools: tuple[str, str],
    account_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    cluster = Cluster(api_client, namespace)
    cluster.create_service(service_manifest("chat", *pools))
    neighbour = NoisyNeighbour(account_kubeconfig)
    operator = OperatorProcess(tmp_path / "operator.log", 1.0, "--verbose")
    operator.env = {"KUBECONFIG": str(account_kubeconfig)}
    neighbour.start()
    started = time.monotonic()
    try:
        operator.start()
        for target in (1, 4, 2):
            if target != 1:
                cluster.patch_service("chat", {"spec": {"replicas": {"fixed": target}}})

            def scaled(t: int = target) -> bool:
                status = cluster.service("chat").get("status") or {}
                return cluster.replicas("chat-small") == t and status.get("replicas") == t

            waiting.until(scaled, timeout_s=90, what=f"{target} replicas under throttling")
    finally:
        neighbour.stopped.set()
        neighbour.join(timeout=30)
        operator.stop()
    log = operator.log()
    retried = log.count("Retry: ") + log.count("will retry")
    print(f"{time.monotonic() - started:.0f} s: the neighbour got {neighbour.rejected} x 429 and "
          f"{neighbour.served} answers; the operator retried {retried} requests")  # fmt: skip
    assert neighbour.rejected > 0, "the priority level must actually have rejected requests"
    assert "Traceback" not in log
