"""The Helm chart's values as a typed model: the source of charts/infscale/values.schema.json."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from infscale.api.v1alpha1 import DNS_LABEL
from infscale.controller.settings import PlannerTuning

DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
"""A Prometheus duration such as 30s or 1m30s (the Prometheus Operator CRDs' `Duration` pattern)."""


class _Values(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, use_attribute_docstrings=True,
        extra="forbid",
    )  # fmt: skip


class Image(_Values):
    repository: str = "ghcr.io/infscale/operator"
    """Operator image (build it from operator/Dockerfile)."""
    tag: str = ""
    """Image tag; empty means the chart's appVersion."""
    pull_policy: str = Field(default="IfNotPresent", pattern="^(Always|IfNotPresent|Never)$")


class Prometheus(_Values):
    url: str = ""
    """Prometheus base URL; empty means no metrics are read and services run replicas.min."""
    bearer_token_secret: str = ""
    """Secret (in the release namespace) whose key `token` is sent as a bearer token."""
    basic_auth_secret: str = ""
    """Secret whose key `auth` holds `user:password` for basic auth."""
    ca_secret: str = ""
    """Secret whose key `ca.crt` signs Prometheus' TLS certificate."""
    rate_window_seconds: int = Field(default=60, ge=5, le=3600)
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """Seconds one PromQL query may take; a slower answer reads as unknown (nothing scales
    down on it)."""
    arrival_rate_query: str = Field(default="", max_length=2000)
    """PromQL of each service's arrival rate at a gateway, with `$namespace` and `$service`;
    with it a service scaled to zero wakes when requests arrive. Empty: none."""
    service_arrival_queries: bool = True
    """Run services' own spec.metrics.arrivalRateQuery (PromQL with the operator's Prometheus
    credentials); false where tenants must not read each other's series."""


class Operator(_Values):
    interval_seconds: float = Field(default=15.0, gt=0, le=3600)
    """Seconds between reconcile cycles."""
    node_scale_down_cooldown_seconds: float = Field(default=120.0, ge=0)
    """Seconds a node stays empty before it is removed."""
    max_node_changes_per_cycle: int = Field(default=2, ge=1, le=100)
    """Nodes removed per pool per cycle at most; added at most this many or the pool's nodes,
    whichever is more (a ramp doubles the pool each cycle; a stuck node stops that)."""
    write_concurrency: int = Field(default=8, ge=1, le=64)
    """Services whose Deployments and status are written at once (a fleet of hundreds of
    services: more is faster, within the API server's priority-and-fairness share)."""
    planner_memory_save_seconds: float = Field(default=300.0, ge=0, le=86400)
    """Seconds between saves of the planner's memory in each service's status (0: never)."""
    namespaces: list[str] = Field(default_factory=list)
    """Namespaces to manage; empty means all."""
    pools: list[str] = Field(default_factory=list)
    """InferenceNodePools whose nodes this release sizes; empty means all. Shards: one release
    per group of namespaces, each with the pools only its services use."""


class Rbac(_Values):
    create_nodes: bool = False
    """Allow creating and deleting Node objects: only the kwok provider (tests, demos) needs it."""


class ServiceMonitor(_Values):
    enabled: bool = False
    """Create a Prometheus Operator ServiceMonitor for the operator's /metrics (port 8081)."""
    interval: str = Field(default="30s", min_length=1, pattern=DURATION)
    """How often Prometheus scrapes the operator."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra labels, e.g. the `release` label your Prometheus' serviceMonitorSelector matches."""


class GrafanaDashboard(_Values):
    enabled: bool = False
    """Create a ConfigMap holding the infscale Grafana dashboard (for Grafana's sidecar)."""
    namespace: str = ""
    """Namespace of the ConfigMap; empty means the release namespace."""
    labels: dict[str, str] = Field(default_factory=lambda: {"grafana_dashboard": "1"})
    """Labels the Grafana sidecar selects dashboards by."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Annotations, e.g. `grafana_folder` for the sidecar's folder."""


class LeaderElection(_Values):
    """Every replica competes for one Lease; only its holder acts (client-go's defaults)."""

    lease_duration_seconds: float = Field(default=15.0, gt=0, le=300)
    """How long a standby waits on an unrenewed Lease before it takes over."""
    renew_deadline_seconds: float = Field(default=10.0, gt=0, le=300)
    """How long the leader may fail to renew before it stops acting (below the duration)."""
    retry_period_seconds: float = Field(default=2.0, gt=0, le=60)
    """How often every replica renews or tries to acquire (below the deadline)."""
    id: str = Field(default="infscale-leader", min_length=1, max_length=63, pattern=DNS_LABEL)
    """Name of the Lease; shards installed in one namespace need one each."""


class PodDisruptionBudget(_Values):
    """With more than one replica: how many may be evicted at once (node drains, upgrades)."""

    enabled: bool = True
    """Create it (only with ``replicas`` above 1: one pod alone has nothing to keep)."""
    max_unavailable: int = Field(default=1, ge=1)
    """Pods a voluntary eviction may take at once; the others keep the Lease or take it over."""


class ChartValues(_Values):
    """Values of the infscale chart."""

    image: Image = Image()
    replicas: int = Field(default=1, ge=0)
    """Operator pods; 0 installs CRDs, RBAC and settings only (the operator runs elsewhere, as in
    hack/demo.sh). Above 1, one replica leads and the others stand by (leaderElection)."""
    leader_election: LeaderElection = LeaderElection()
    prometheus: Prometheus = Prometheus()
    operator: Operator = Operator()
    planner: PlannerTuning = PlannerTuning()
    """The planner's tuning (a few of its knobs); what is left unset keeps its defaults."""
    rbac: Rbac = Rbac()
    service_monitor: ServiceMonitor = ServiceMonitor()
    grafana_dashboard: GrafanaDashboard = GrafanaDashboard()
    resources: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        }
    )
    """Resources of the operator container."""
    priority_class_name: str = Field(default="", max_length=253)
    """PriorityClass of the operator pod, e.g. `system-cluster-critical` as node autoscalers
    run: under pressure on its node it is not the pod that goes first. Empty: none."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    """Labels of the nodes the operator may run on, e.g. a system pool's. It never removes a
    node that holds a pod it does not own, but one of its own pools is no home for it."""
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    """Tolerations of the operator pod (Kubernetes' own schema), e.g. a system pool's taint."""
    affinity: dict[str, Any] = Field(default_factory=dict)
    """Affinity of the operator pod (Kubernetes' own schema). Empty: with ``replicas`` above 1,
    replicas prefer different nodes, so one node's loss does not take the leader and its
    standby at once."""
    topology_spread_constraints: list[dict[str, Any]] = Field(default_factory=list)
    """Topology spread of the operator pods (Kubernetes' own schema), e.g. across zones; the
    chart fills in the label selector when it is left out."""
    pod_disruption_budget: PodDisruptionBudget = PodDisruptionBudget()


def schema() -> dict[str, Any]:
    """The JSON schema Helm validates values against."""
    result = ChartValues.model_json_schema(by_alias=True)
    result["$schema"] = "https://json-schema.org/draft-07/schema#"
    return result


def render() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"
