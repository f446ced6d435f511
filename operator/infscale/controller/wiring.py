"""Start-up: the adapters the operator runs on, built from its settings.

The one place that reads credential files, names the node-pool providers and builds the
planner's Decider; `infscale operator` (cli/main.py) calls it, then hands the result to kopf.
"""

from __future__ import annotations

import dataclasses

from kubernetes import client

from infscale.adapters import (
    cluster_nodes,
    leases,
    pools_clusterapi,
    pools_fixed,
    pools_kwok,
    prometheus,
)
from infscale.adapters import deployments as deployments_adapter
from infscale.adapters import reporting as reporting_adapter
from infscale.adapters import routes as routes_adapter
from infscale.controller import decide, leader, pool_reconciler, service_reconciler
from infscale.controller.settings import OperatorSettings
from infscale.ports import metrics, nodepools


@dataclasses.dataclass(frozen=True)
class Adapters:
    """Everything a reconcile cycle reads and writes through."""

    deployments: deployments_adapter.KubernetesDeployments
    service_ports: service_reconciler.Ports
    nodes: cluster_nodes.ClusterNodes
    pool_ports: pool_reconciler.PoolPorts
    decider: decide.Decider


def pool_providers(api_client: client.ApiClient) -> dict[str, nodepools.NodePoolProvider]:
    """The provider of each `spec.provider.kind` an InferenceNodePool may name."""
    return {
        "kwok": pools_kwok.KwokPools(api_client),
        "external": pools_fixed.FixedPools("external"),
        "static": pools_fixed.FixedPools("static"),
        "clusterapi": pools_clusterapi.ClusterApiPools(api_client),
    }


def metrics_source(settings: OperatorSettings) -> metrics.MetricsSource | None:
    """Prometheus with the mounted credentials; None without `prometheus_url`."""
    if not settings.prometheus_url:
        return None
    token = None
    if settings.prometheus_bearer_token_file:
        with open(settings.prometheus_bearer_token_file) as handle:
            token = handle.read().strip()
    basic_auth = None
    if settings.prometheus_basic_auth_file:
        with open(settings.prometheus_basic_auth_file) as handle:
            user, _, password = handle.read().strip().partition(":")
        basic_auth = (user, password)
    return prometheus.PrometheusMetrics(
        prometheus.connect(
            settings.prometheus_url,
            bearer_token=token,
            basic_auth=basic_auth,
            ca_file=settings.prometheus_ca_file,
            timeout_s=settings.prometheus_timeout_seconds,
        ),
        rate_window_s=settings.metrics_rate_window_seconds,
        staleness_s=settings.metrics_staleness_seconds,
    )


def adapters(settings: OperatorSettings, api_client: client.ApiClient) -> Adapters:
    """The Kubernetes and Prometheus adapters, and the Decider with the planner's tuning."""
    reporter = reporting_adapter.KubernetesReporter(api_client)
    workloads = deployments_adapter.KubernetesDeployments(api_client)
    nodes = cluster_nodes.ClusterNodes(api_client)
    return Adapters(
        deployments=workloads,
        service_ports=service_reconciler.Ports(
            workloads=workloads,
            status=reporter,
            events=reporter,
            routes=routes_adapter.KubernetesRoutes(api_client),
        ),
        nodes=nodes,
        pool_ports=pool_reconciler.PoolPorts(
            nodes=nodes, providers=pool_providers(api_client), status=reporter, events=reporter
        ),
        decider=decide.Decider(
            metrics_source(settings),
            cfg=settings.planner.apply(),
            save_memory_s=settings.planner_memory_save_seconds,
            arrival_template=settings.arrival_rate_query,
            service_arrival_queries=settings.service_arrival_queries,
            rate_window_s=settings.metrics_rate_window_seconds,
        ),
    )


def leader_elector(
    api_client: client.ApiClient, namespace: str, lease: str, identity: str, timing: leader.Timing
) -> leader.LeaderElector:
    """A candidate for the Lease `namespace/lease`."""
    return leader.LeaderElector(
        leases.KubernetesLeases(api_client, namespace, lease), identity, timing
    )
