"""Two shards on the real cluster: each operator writes only its namespaces' services and sizes
only its own node pool (one release per group of namespaces, README "Scale")."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.integration import manifests, waiting
from tests.integration.conftest import _default_service_account
from tests.integration.operator_process import OperatorProcess, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def second_namespace(core: client.CoreV1Api, unique_name: str) -> Iterator[str]:
    name = f"{unique_name}-b"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    waiting.until(
        lambda: _default_service_account(core, name), timeout_s=30, what=f"namespace {name}"
    )
    yield name
    core.delete_namespace(name, propagation_policy="Background")


def shard(tmp_path: Path, name: str, namespace: str, pool: str) -> OperatorProcess:
    port = free_port()
    process = OperatorProcess(
        tmp_path / f"{name}.log", 1.0, "--metrics-address", f"127.0.0.1:{port}",
        namespaces=[namespace], pools=[pool],
    )  # fmt: skip
    process.metrics_url = f"http://127.0.0.1:{port}/metrics"
    return process


def exposition(process: OperatorProcess) -> str:
    with urllib.request.urlopen(process.metrics_url) as response:
        return str(response.read().decode())


def test_two_shards_each_write_their_services_and_size_their_pool(
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    second_namespace: str,
    unique_name: str,
    tmp_path: Path,
) -> None:
    pools = {
        ns: f"{tag}-{unique_name}" for ns, tag in ((namespace, "sa"), (second_namespace, "sb"))
    }
    bodies = [manifests.kwok_pool(p, provisioning_s=1) for p in pools.values()]
    shards = [shard(tmp_path, f"shard{i}", ns, p) for i, (ns, p) in enumerate(pools.items())]
    with manifests.created_pools(custom, core, *bodies):
        for ns, pool in pools.items():
            custom.create_namespaced_custom_object(
                manifests.GROUP, manifests.VERSION, ns, "inferenceservices",
                manifests.fixed_service(pool, 2),
            )  # fmt: skip
        for process in shards:
            process.start()
        try:

            def ready_nodes(pool: str) -> int:
                body = custom.get_cluster_custom_object(
                    manifests.GROUP, manifests.VERSION, "inferencenodepools", pool
                )
                assert isinstance(body, dict)
                return int((body.get("status") or {}).get("readyNodes") or 0)

            def ready_replicas(namespace: str) -> int:
                listed = apps.list_namespaced_deployment(namespace).items
                ready: list[int] = [d.status.ready_replicas or 0 for d in listed]
                return sum(ready)

            def settled() -> bool:
                return all(
                    ready_replicas(ns) == 2 and ready_nodes(pool) == 2 for ns, pool in pools.items()
                )

            waiting.until(settled, timeout_s=90, what="both services Ready on their own pool")
            for process, (ns, pool) in zip(shards, pools.items(), strict=True):
                text = exposition(process)
                others = [(n, p) for n, p in pools.items() if n != ns]
                assert f'infscale_pool_nodes{{pool="{pool}"' in text
                assert f'namespace="{ns}"' in text
                for other_ns, other_pool in others:
                    assert f'pool="{other_pool}"' not in text, "sized another shard's pool"
                    assert f'namespace="{other_ns}"' not in text, "wrote another shard's service"
            for pool in pools.values():
                nodes = core.list_node(label_selector=f"{manifests.POOL_LABEL}={pool}").items
                assert len(nodes) == 2, [n.metadata.name for n in nodes]
        finally:
            for process in shards:
                process.stop()
                print(process.log()[-3000:])
