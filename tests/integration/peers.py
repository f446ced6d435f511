"""The real peer autoscalers as local processes: prometheus-adapter (the external metrics API that
kube-controller-manager's own HPA scales on) and Karpenter with its kwok provider. Binaries come
from the tools cache (``hack/tools.sh adapter karpenter``); ../shared/PEERS.md has the recipe."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

EXTERNAL_METRICS_API = "v1beta1.external.metrics.k8s.io"

ADAPTER_RULES = {
    "externalRules": [
        {
            # Completed requests per second of an InferenceService's pods, by namespace.
            "seriesQuery": 'vllm:request_success_total{namespace!="",infscale_dev_service!=""}',
            "resources": {"overrides": {"namespace": {"resource": "namespace"}}},
            "name": {
                "matches": "^vllm:request_success_total$",
                "as": "infscale_requests_per_second",
            },
            "metricsQuery": "sum(rate(<<.Series>>{<<.LabelMatchers>>}[30s])) by (<<.GroupBy>>)",
        }
    ]
}


def tool(name: str) -> Path:
    """A peer's binary from PATH (the tools cache); fails loudly when it was not built."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not on PATH: build it with `hack/tools.sh adapter karpenter`")
    return Path(found)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    print(f"---- {log.name} (last lines) ----\n{log.read_text(errors='replace')[-3000:]}")


@contextmanager
def prometheus_adapter(
    api_client: client.ApiClient, namespace: str, prometheus_url: str, workdir: Path
) -> Iterator[None]:
    """prometheus-adapter serving ``ADAPTER_RULES`` as the cluster's external metrics API: an
    ExternalName Service to localhost (no kube-proxy here, and Endpoints may not point at
    loopback) and the APIService, removed afterwards."""
    kubeconfig = os.environ["KUBECONFIG"]
    port = free_port()
    rules = workdir / "adapter-rules.yaml"
    rules.write_text(yaml.safe_dump(ADAPTER_RULES))
    log = workdir / "prometheus-adapter.log"
    process = subprocess.Popen(
        [
            str(tool("prometheus-adapter")),
            f"--prometheus-url={prometheus_url}",
            f"--config={rules}",
            f"--lister-kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--secure-port={port}",
            "--bind-address=127.0.0.1",
            f"--cert-dir={workdir / 'adapter-certs'}",
            "--metrics-relist-interval=5s",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    core = client.CoreV1Api(api_client)
    registration = client.ApiregistrationV1Api(api_client)
    try:
        core.create_namespaced_service(
            namespace,
            {
                "metadata": {"name": "prometheus-adapter"},
                "spec": {
                    "type": "ExternalName",
                    "externalName": "localhost",
                    "ports": [{"port": port, "targetPort": port}],
                },
            },
        )
        registration.create_api_service(
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": EXTERNAL_METRICS_API},
                "spec": {
                    "group": "external.metrics.k8s.io",
                    "version": "v1beta1",
                    "service": {"namespace": namespace, "name": "prometheus-adapter", "port": port},
                    "insecureSkipTLSVerify": True,
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                },
            }
        )
        yield
    finally:
        try:
            registration.delete_api_service(EXTERNAL_METRICS_API)
        except client.ApiException as error:
            if error.status != 404:
                raise
        stop(process, log)


def karpenter_crds_dir() -> Path:
    """The CRDs ``hack/tools.sh karpenter`` copied from Karpenter's module beside its binary."""
    return tool("karpenter-kwok").parent.parent / "crds"


def install_karpenter_crds(api_client: client.ApiClient) -> None:
    """Karpenter's CRDs (NodePool, NodeClaim, KWOKNodeClass, ...), created where missing."""
    extensions = client.ApiextensionsV1Api(api_client)
    for path in sorted(karpenter_crds_dir().glob("*.yaml")):
        for body in yaml.safe_load_all(path.read_text()):
            if not body:
                continue
            try:
                extensions.create_custom_resource_definition(body)
            except client.ApiException as error:
                if error.status != 409:  # already there: another run or worker installed it
                    raise


def instance_types(types: Mapping[str, tuple[Mapping[str, str], float]]) -> list[dict[str, Any]]:
    """Karpenter kwok's instance-types file: name -> (resources, on-demand $/h), one zone."""
    return [
        {
            "name": name,
            "architecture": "amd64",
            "operatingSystems": ["linux"],
            "resources": dict(resources),
            "offerings": [
                {
                    "Price": price,
                    "Available": True,
                    "Requirements": [
                        {
                            "key": "karpenter.sh/capacity-type",
                            "operator": "In",
                            "values": ["on-demand"],
                        },
                        {
                            "key": "topology.kubernetes.io/zone",
                            "operator": "In",
                            "values": ["test-zone-a"],
                        },
                    ],
                }
            ],
        }
        for name, (resources, price) in types.items()
    ]


@contextmanager
def karpenter(types: list[dict[str, Any]], workdir: Path) -> Iterator[None]:
    """Karpenter's kwok provider, offering ``types`` (see :func:`instance_types`)."""
    types_file = workdir / "instance-types.json"
    types_file.write_text(json.dumps(types))
    log = workdir / "karpenter.log"
    process = subprocess.Popen(
        [
            str(tool("karpenter-kwok")),
            "--disable-leader-election",
            f"--metrics-port={free_port()}",
            f"--health-probe-port={free_port()}",
            f"--instance-types-file-path={types_file}",
        ],
        env={**os.environ, "SYSTEM_NAMESPACE": "kube-system"},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield
    finally:
        stop(process, log)
