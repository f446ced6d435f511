"""API throttling: the operator runs as a ServiceAccount whose requests API Priority and
Fairness squeezes into a tiny priority level that rejects (HTTP 429, Retry-After) what does not
fit, while a noisy neighbour with the same identity floods it. The operator's requests are
retried with backoff: the scale-out and scale-in still finish exactly. (The flood starts once the
operator runs: kopf's start-up discovery, ~25 parallel GETs, gives up under this squeeze.)"""

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
    # Something heavy for the neighbour to list: APF charges a LIST by the objects it returns
    # (up to 10 seats), so a few hundred ConfigMaps make each of its requests expensive.
    for index in range(300):
        core.create_namespaced_config_map(
            namespace, {"metadata": {"name": f"ballast-{index}"}, "data": {"x": "y" * 2048}}
        )
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
    """Lists the ballast as fast as it can from many threads, with the operator's identity."""

    def __init__(self, kubeconfig: Path, namespace: str, threads: int = 3) -> None:
        super().__init__(daemon=True)
        from kubernetes import config

        self.api = config.new_client_from_config(str(kubeconfig))
        self.namespace, self.threads, self.stopped = namespace, threads, threading.Event()
        self.rejected = self.served = 0
        self.failures: list[str] = []

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
                answer = core.list_namespaced_config_map(self.namespace, _preload_content=False)
                answer.read()  # type: ignore[attr-defined]  # an unread answer holds its seat
                self.served += 1
            except client.ApiException as error:
                if error.status == 429:
                    self.rejected += 1
                else:
                    self.failures.append(f"{error.status} {error.reason}")
            except Exception as error:  # a dead flooding thread would silently stop the flood
                self.failures.append(repr(error))


def rejections(level: str) -> float:
    """apiserver_flowcontrol_rejected_requests_total of one priority level, from /metrics."""
    text = subprocess.run(
        ["kubectl", "get", "--raw", "/metrics"], capture_output=True, text=True, check=True
    ).stdout
    name = "apiserver_flowcontrol_rejected_requests_total"
    level_label = f'priority_level="{level}"'
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and level_label in line
    )


@pytest.mark.timeout(400)
@pytest.mark.serial  # floods the shared API server on purpose
def test_throttled_operator_still_converges(
    api_client: client.ApiClient,
    namespace: str,
    pools: tuple[str, str],
    account_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    cluster = Cluster(api_client, namespace)
    cluster.create_service(service_manifest("chat", *pools))
    neighbour = NoisyNeighbour(account_kubeconfig, namespace)
    operator = OperatorProcess(
        tmp_path / "operator.log", 1.0, "--verbose", namespaces=[namespace], pools=pools
    )
    operator.env = {"KUBECONFIG": str(account_kubeconfig)}
    started = time.monotonic()

    def scaled_to(replicas: int) -> None:
        def scaled() -> bool:
            status = cluster.service("chat").get("status") or {}
            return cluster.replicas("chat-small") == replicas and status.get("replicas") == replicas

        waiting.until(scaled, timeout_s=120, what=f"{replicas} replicas")

    try:
        operator.start()
        scaled_to(1)
        neighbour.start()  # throttle the running operator (its start-up is not the subject)
        for target in (4, 2):
            cluster.patch_service("chat", {"spec": {"replicas": {"fixed": target}}})
            scaled_to(target)
    finally:
        neighbour.stopped.set()
        neighbour.join(timeout=30)
        operator.stop()
    log = operator.log()
    retried = log.count("Retry: ") + log.count("will retry")
    print(f"{time.monotonic() - started:.0f} s: the neighbour got {neighbour.rejected} x 429 and "
          f"{neighbour.served} answers ({len(neighbour.failures)} other failures: "
          f"{neighbour.failures[:3]}); the operator retried {retried} requests")  # fmt: skip
    rejected = rejections(f"{namespace}-squeeze")
    print(f"API Priority and Fairness rejected {rejected:.0f} requests of the squeezed level")
    assert rejected > 0, "the priority level must actually have rejected requests"
    assert "Traceback" not in log
