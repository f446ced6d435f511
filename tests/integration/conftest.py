"""Fixtures for tests against the real API server and Prometheus started by hack/cluster-up.sh.

These tests never skip: without a cluster they fail with a message saying how to start one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests.integration import crds as crd_files
from tests.integration import manifests, operator_process, waiting
from tests.integration.prometheus_process import PrometheusProcess

HOW_TO_START = (
    "start the local cluster with `hack/cluster-up.sh` (or run everything with `hack/test.sh`)"
)


def required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: {HOW_TO_START}", pytrace=False)
    return value


@pytest.fixture(scope="session", autouse=True)
def no_operator_outlives_the_tests() -> Iterator[None]:
    """A test that fails between starting an operator and its cleanup must not leave it running
    (a stray operator would fight the next test's)."""
    yield
    for process in operator_process.RUNNING:
        process.stop()


@pytest.fixture(scope="session")
def api_client() -> client.ApiClient:
    kubeconfig = required_env("KUBECONFIG")
    if not Path(kubeconfig).is_file():
        pytest.fail(f"KUBECONFIG={kubeconfig} does not exist: {HOW_TO_START}", pytrace=False)
    api = config.new_client_from_config(config_file=kubeconfig)
    try:
        client.VersionApi(api).get_code(_request_timeout=5)
    except Exception as error:
        pytest.fail(f"the API server in {kubeconfig} does not answer ({error}): {HOW_TO_START}")
    assert isinstance(api, client.ApiClient)
    return api


@pytest.fixture(scope="session")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture(scope="session")
def prometheus_url() -> str:
    return required_env("INFSCALE_PROMETHEUS_URL")


@pytest.fixture(scope="session")
def prometheus_targets_dir() -> Path:
    path = Path(required_env("INFSCALE_PROMETHEUS_TARGETS_DIR"))
    if not path.is_dir():
        pytest.fail(f"{path} is missing: {HOW_TO_START}", pytrace=False)
    return path


@pytest.fixture
def own_prometheus(tmp_path: Path) -> Iterator[PrometheusProcess]:
    """A Prometheus of the test's own, scraping only the emulator the test starts: no other
    test's targets, load or queries reach it while tests run in parallel."""
    process = PrometheusProcess(tmp_path / "prometheus")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def unique_name() -> str:
    """A short name no other test run uses, valid as a Kubernetes name and a label value."""
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def namespace(core: client.CoreV1Api, unique_name: str) -> Iterator[str]:
    """A fresh namespace, deleted after the test with everything in it."""
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=unique_name)))
    waiting.until(
        lambda: _default_service_account(core, unique_name),
        timeout_s=30,
        what=f"the default service account in namespace {unique_name}",
    )
    yield unique_name
    core.delete_namespace(unique_name, propagation_policy="Background")


def _default_service_account(core: client.CoreV1Api, namespace: str) -> Any:
    try:
        return core.read_namespaced_service_account("default", namespace)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


@pytest.fixture(scope="session")
def crds(api_client: client.ApiClient) -> None:
    """The infscale CRDs from crds/, installed and served."""
    crd_files.install(api_client)


@pytest.fixture(scope="session")
def gateway_crds(api_client: client.ApiClient) -> None:
    """Gateway API's standard CRDs (HTTPRoute), from the module hack/tools.sh pins."""
    directory = Path(required_env("INFSCALE_GATEWAY_API_CRDS"))
    documents = [
        d for p in sorted(directory.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())
    ]
    crd_files.install_bodies(
        api_client, [d for d in documents if d and d["kind"] == "CustomResourceDefinition"]
    )


@pytest.fixture(scope="session")
def custom(api_client: client.ApiClient, crds: None) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture
def pools(
    custom: client.CustomObjectsApi, core: client.CoreV1Api, unique_name: str
) -> Iterator[tuple[str, str]]:
    """Two kwok pools, `<name>-big` (8 GPUs a node) and `<name>-small` (1 GPU); deleted after the
    test with the nodes an operator made for them."""
    names = (f"{unique_name}-big", f"{unique_name}-small")
    bodies = [
        manifests.pool_manifest(name, gpus, price)
        for name, gpus, price in ((names[0], 8, 55.04), (names[1], 1, 0.8048))
    ]
    with manifests.created_pools(custom, core, *bodies):
        yield names


@pytest.fixture
def small_gpu_node(core: client.CoreV1Api, pools: tuple[str, str]) -> Iterator[str]:
    """One kwok node of the small pool, so the replicas there become Ready."""
    pool = pools[1]
    capacity = {"cpu": "32", "memory": "128Gi", "nvidia.com/gpu": "4", "pods": "110"}
    node = client.V1Node(
        metadata=client.V1ObjectMeta(
            name=f"node-{pool}",
            labels={"infscale.dev/pool": pool},
            annotations={"kwok.x-k8s.io/node": "fake"},
        ),
        spec=client.V1NodeSpec(taints=[client.V1Taint(key="nvidia.com/gpu", effect="NoSchedule")]),
        status=client.V1NodeStatus(capacity=capacity, allocatable=capacity),
    )
    core.create_node(node)
    yield f"node-{pool}"
    core.delete_node(f"node-{pool}")


@pytest.fixture
def operator(
    tmp_path: Path, crds: None, namespace: str, pools: tuple[str, str]
) -> Iterator[operator_process.OperatorProcess]:
    port = operator_process.free_port()
    process = operator_process.OperatorProcess(
        tmp_path / "operator.log", 1.0, "--metrics-address", f"127.0.0.1:{port}",
        namespaces=[namespace], pools=pools,
    )  # fmt: skip
    process.metrics_url = f"http://127.0.0.1:{port}/metrics"
    process.start()
    yield process
    process.stop()
    print(process.log()[-5000:])
