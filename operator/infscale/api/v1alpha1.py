"""The infscale.dev/v1alpha1 API: InferenceService and InferenceNodePool.

These pydantic models are the single source of truth: `infscale.api.crd` generates the CRDs in
`crds/` from them (schema, defaults, CEL rules, printer columns, subresources), and the operator
parses the objects it reads with them. Every rule the API server must enforce is declared here, with
a message a user understands; the docstring of each field becomes its `kubectl explain` text.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "infscale.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# A non-negative Kubernetes quantity: 1, "500m", "32Gi", "1.5e3" (the API server checks the
# pattern on strings and the minimum on integers; the operator reads only accepted objects).
QUANTITY = (
    r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
    r"([KMGTPE]i|[numkMGTPE]|[eE][+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+))?$"
)
Quantity = Annotated[
    int | str, Field(json_schema_extra={"pattern": QUANTITY, "maxLength": 64, "minimum": 0})
]
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A resource name such as cpu, memory or nvidia.com/gpu.
RESOURCE_NAME = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$"


def rule(expression: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One CEL rule for `x-kubernetes-validations`."""
    validation = {"rule": expression, "message": message}
    if field_path is not None:
        validation["fieldPath"] = field_path
    return validation


def resource_names_rule(field: str) -> dict[str, Any]:
    """Schema extra for a map keyed by resource names (CRDs do not support patternProperties)."""
    return {
        "x-kubernetes-validations": [
            rule(
                f"self.all(name, name.matches('{RESOURCE_NAME}'))",
                f"{field} keys must be resource names such as cpu, memory or nvidia.com/gpu",
            )
        ]
    }


class ApiModel(BaseModel):
    """Base of every API object: camelCase on the wire, attribute docstrings as descriptions."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="ignore",
        frozen=True,
    )
    validations: ClassVar[list[dict[str, str]]] = []

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema: dict[str, Any] = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        if cls.validations:
            target["x-kubernetes-validations"] = cls.validations
        return schema


# ---------------------------------------------------------------------------------------------
# InferenceNodePool (cluster-scoped, written by the platform team)


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Taint(ApiModel):
    """A taint every node of the pool carries; the pool's replicas get the matching toleration."""

    key: str = Field(min_length=1, max_length=253)
    """Taint key, such as nvidia.com/gpu."""
    value: str | None = Field(default=None, max_length=63)
    """Taint value; empty means any pod tolerating the key tolerates it."""
    effect: TaintEffect
    """NoSchedule, PreferNoSchedule or NoExecute."""


class NodeShape(ApiModel):
    """What one node of the pool looks like."""

    validations: ClassVar[list[dict[str, str]]] = [
        rule(
            "'cpu' in self.capacity && 'memory' in self.capacity",
            "node.capacity must include cpu and memory",
        ),
    ]

    capacity: dict[str, Quantity] = Field(
        max_length=32, json_schema_extra=resource_names_rule("node.capacity")
    )
    """Allocatable resources of one node: cpu, memory and extended ones such as nvidia.com/gpu."""
    labels: dict[str, str] = Field(default_factory=dict, max_length=32)
    """Labels every node of the pool carries; replicas select the pool by them."""
    taints: list[Taint] = Field(default_factory=list, max_length=16)
    """Taints every node of the pool carries."""


class KwokProvider(ApiModel):
    """Fake nodes managed by kwok: tests and demos."""

    name_prefix: str | None = Field(default=None, max_length=40, pattern=DNS_LABEL)
    """Prefix of the created Node names; defaults to the pool name."""


class MachineDeploymentRef(ApiModel):
    """The Cluster API MachineDeployment that backs the pool."""

    namespace: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    """Namespace of the MachineDeployment (cluster.x-k8s.io/v1beta1)."""
    name: str = Field(min_length=1, max_length=253)
    """Name of the MachineDeployment."""


class ClusterApiProvider(ApiModel):
    """Nodes are Machines of a Cluster API MachineDeployment, resized by its scale subresource."""

    machine_deployment: MachineDeploymentRef
    """The MachineDeployment whose Machines (with the pool's labels and taints) are the nodes."""


class ExternalProvider(ApiModel):
    """Karpenter or Cluster Autoscaler own the nodes; infscale places replicas and counts cost."""


class StaticProvider(ApiModel):
    """A fixed set of nodes: counted and costed, never changed."""


class ProviderSpec(ApiModel):
    """What changes the pool's size. Set exactly one."""

    validations: ClassVar[list[dict[str, str]]] = [
        rule(
            "[has(self.kwok), has(self.clusterapi), has(self.external), has(self.static)]"
            ".filter(x, x).size() == 1",
            "set exactly one provider: kwok, clusterapi, external or static",
        ),
    ]
    model_config = ConfigDict(alias_generator=None)

    kwok: KwokProvider | None = None
    clusterapi: ClusterApiProvider | None = None
    external: ExternalProvider | None = None
    static: StaticProvider | None = None

    @property
    def kind(self) -> str:
        """The name of the provider that is set."""
        for name in ("kwok", "clusterapi", "external", "static"):
            if getattr(self, name) is not None:
                return name
        return "unset"


class CapacityType(StrEnum):
    ON_DEMAND = "OnDemand"
    SPOT = "Spot"


class PowerWindow(ApiModel):
    """From an hour of the day (UTC) until the next window's: the electricity's price and the
    grid's carbon intensity then (a field left out keeps the pool's constant figure)."""

    from_hour: int = Field(ge=0, le=23)
    """The hour of the day, UTC, the window starts at; it lasts until the next window's."""
    usd_per_kwh: float | None = Field(default=None, ge=0, le=100)
    """Price of electricity in this window."""
    grams_co2_per_kwh: float | None = Field(default=None, ge=0, le=5000)
    """Carbon intensity of the grid in this window."""


class NodePower(ApiModel):
    """What one node of the pool draws, and what its electricity costs and emits."""

    validations: ClassVar[list[dict[str, str]]] = [
        rule("self.idleWatts <= self.maxWatts", "power.idleWatts must not exceed power.maxWatts"),
        rule(
            "!has(self.schedule) || self.schedule.all(w, "
            "self.schedule.exists_one(x, x.fromHour == w.fromHour))",
            "power.schedule: each fromHour at most once",
        ),
    ]

    idle_watts: float = Field(ge=0, le=100000)
    """Watts one node draws with nothing to do (its models loaded, no requests)."""
    max_watts: float = Field(ge=0, le=100000)
    """Watts one node draws when every replica on it serves at its capacity."""
    usd_per_kwh: float = Field(default=0.0, ge=0, le=100)
    """Price of electricity not included in usdPerHour (0, the default: included, as in a
    cloud's node price; set it on premises)."""
    grams_co2_per_kwh: float | None = Field(default=None, ge=0, le=5000)
    """Carbon intensity of the grid the nodes run on; without it, no gCO2 is reported."""
    schedule: list[PowerWindow] | None = Field(default=None, max_length=24)
    """Figures that change through the day (a tariff, a grid's daily carbon curve): each window
    from its hour (UTC) until the next one's, the last until the first's the next day."""
    usd_per_kwh_query: str | None = Field(default=None, min_length=1, max_length=2000)
    """A PromQL expression whose value is the price of electricity now (a spot tariff an
    exporter publishes; several series are averaged), read every cycle. While it fails or has
    no value, its last answer holds; before any, the schedule's figure (else usdPerKwh: set it as
    the fallback) applies; status.energyFigures says which."""
    grams_co2_per_kwh_query: str | None = Field(default=None, min_length=1, max_length=2000)
    """A PromQL expression whose value is the grid's carbon intensity now (e.g. an exporter of
    Electricity Maps or WattTime data), read every cycle, with the same fallback."""

    def at_hour(self, hour_utc: int | None) -> tuple[float, float | None]:
        """(usdPerKwh, gramsCo2PerKwh) in force at ``hour_utc`` (None: the constant figures)."""
        if not self.schedule or hour_utc is None:
            return self.usd_per_kwh, self.grams_co2_per_kwh
        started = [w for w in self.schedule if w.from_hour <= hour_utc]
        window = max(started or self.schedule, key=lambda w: w.from_hour)  # else: since yesterday
        usd = self.usd_per_kwh if window.usd_per_kwh is None else window.usd_per_kwh
        grams = window.grams_co2_per_kwh
        return usd, self.grams_co2_per_kwh if grams is None else grams


class PoolStandby(ApiModel):
    """Nodes the pool keeps Ready ahead of need, so a new replica waits for its start-up only,
    not for a node as well. The planner decides how many, up to ``maxNodes``, from how fast the
    services on the pool may rise within its provisioning time (its maximum while a service has
    shown too little traffic to tell); they are billed as any node."""

    max_nodes: int = Field(ge=0, le=10000)
    """At most this many standby nodes (0: none)."""
    warm: bool = False
    """Run started replicas of the services they stand by for on the standby nodes, serving
    beside the planned ones: a rise finds them Ready, without waiting for a start-up (a model
    server's is minutes). Same node price; they draw power. Without it the nodes stay empty,
    free for any service of the pool."""


class InferenceNodePoolSpec(ApiModel):
    """A pool of identical nodes that infscale may place replicas on and resize."""

    validations: ClassVar[list[dict[str, str]]] = [
        rule("self.minNodes <= self.maxNodes", "minNodes must not exceed maxNodes"),
        rule(
            "!has(self.standby) || self.standby.maxNodes <= self.maxNodes",
            "standby.maxNodes must not exceed maxNodes",
        ),
        rule(
            "!has(self.interruptionsPerHour) || self.capacityType == 'Spot'",
            "interruptionsPerHour is for capacityType: Spot",
        ),
    ]

    provider: ProviderSpec
    """What changes the pool's size: kwok, clusterapi, external or static."""
    node: NodeShape
    """The shape of one node."""
    usd_per_hour: float = Field(ge=0, le=10000)
    """Price of one node per hour in US dollars; the planner minimises the sum over nodes."""
    min_nodes: int = Field(default=0, ge=0, le=10000)
    """Nodes the pool always keeps."""
    max_nodes: int = Field(ge=0, le=10000)
    """Nodes the pool never exceeds."""
    provisioning_seconds: int = Field(default=300, ge=0, le=7200)
    """Time from asking for a node to its resources being allocatable (default 5 min)."""
    capacity_type: CapacityType = CapacityType.ON_DEMAND
    """Spot: nodes cheaper but reclaimable at short notice (spot, preemptible). A service keeps
    enough capacity off each spot pool to carry what arrives now through its loss (its
    spec.spot)."""
    interruptions_per_hour: float | None = Field(default=None, ge=0, le=60)
    """Spot: the reclaims expected per node-hour (the provider's interruption-frequency figures,
    or the pool's own count in status.interruptions). The planner pays each reclaim as a
    replacement billed through its provisioning time: usdPerHour x (1 + interruptionsPerHour x
    provisioningSeconds / 3600) per node-hour."""
    power: NodePower | None = None
    """What one node draws. Without it, a CPU node's draw is estimated from its vCPUs and
    memory (Cloud Carbon Footprint's AWS coefficients) and a GPU node's is unknown."""
    standby: PoolStandby | None = None
    """Headroom: nodes kept Ready ahead of need, empty or running warm replicas (none without
    it)."""


class Condition(ApiModel):
    """A Kubernetes-style condition."""

    type: str
    status: str
    """True, False or Unknown."""
    reason: str = ""
    """One CamelCase word a program can match."""
    message: str = ""
    """What a person needs to know."""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class Decision(ApiModel):
    """The last decision and why it was made."""

    time: str
    reason: str


class InferenceNodePoolStatus(ApiModel):
    """What the operator observed and decided for the pool."""

    observed_generation: int | None = None
    provider: str | None = None
    desired_nodes: int | None = None
    ready_nodes: int | None = None
    usd_per_hour: float | None = None
    """Current cost of the pool's nodes per hour."""
    standby_nodes: int | None = None
    """Of the desired nodes, those kept ahead of need (spec.standby)."""
    standby_usd_per_hour: float | None = None
    """What they cost per hour."""
    standby_reason: str | None = None
    """Why that many."""
    power_watts: float | None = None
    """What the pool's nodes draw now: the replicas' share at their load, idle for the rest;
    absent when unknown."""
    usd_per_kwh: float | None = None
    """The electricity price the planner uses now (absent without spec.power)."""
    grams_co2_per_kwh: float | None = None
    """The carbon intensity the planner uses now (absent when none is declared)."""
    energy_figures: str | None = None
    """Where those figures come from: a query's answer, the schedule's window or the constant,
    and why a query did not answer."""
    energy_kwh: float | None = None
    """Energy the pool's nodes have drawn since infscale first wrote its status (powerWatts over
    time; rewritten with the rest of the status or once it has grown by a quarter)."""
    energy_accrued_at: str | None = None
    """When energyKwh was last brought up to date."""
    allocatable: dict[str, Quantity] = Field(default_factory=dict)
    """Sum of the allocatable resources of the pool's Ready nodes."""
    conditions: list[Condition] = Field(default_factory=list)
    last_change: Decision | None = None
    last_scale_up_time: str | None = None
    """When the pool last grew; nodes are not removed within the cool-down after it."""
    interruptions: int | None = None
    """Nodes that left the pool without infscale removing them (spot reclaims, deletions by
    someone else) since interruptionsSince: the pool's own history for interruptionsPerHour."""
    interruptions_since: str | None = None
    """When the count began (the first cycle that saw the pool)."""


class InferenceNodePool(ApiModel):
    """A cluster-scoped pool of identical nodes with a price."""

    spec: InferenceNodePoolSpec
    status: InferenceNodePoolStatus | None = None


# ---------------------------------------------------------------------------------------------
# InferenceService (namespaced, written by the application team)


class Mode(StrEnum):
    AUTO = "Auto"
    RECOMMEND = "Recommend"


class SloMetric(StrEnum):
    TTFT = "ttft"
    ITL = "itl"
    E2E = "e2e"
    QUEUE_TIME = "queue-time"


class SloClass(StrEnum):
    INTERACTIVE = "Interactive"
    BATCH = "Batch"


class Slo(ApiModel):
    """The latency objective: the given percentile of the metric stays at or under the threshold
    (Interactive), or requests finish within their deadline (Batch: they may queue)."""

    validations: ClassVar[list[dict[str, str]]] = [
        rule(
            "self.class != 'Interactive' || has(self.thresholdSeconds)",
            "an Interactive SLO needs thresholdSeconds",
        ),
        rule(
            "self.class != 'Batch' || (has(self.deadlineSeconds) && self.metric == 'e2e')",
            "a Batch SLO needs deadlineSeconds and metric: e2e (the deadline is on the whole "
            "request, queueing included)",
        ),
        rule(
            "self.class == 'Batch' || !has(self.deadlineSeconds)",
            "deadlineSeconds is for class: Batch; an Interactive SLO has thresholdSeconds",
        ),
    ]

    slo_class: SloClass = Field(default=SloClass.INTERACTIVE, alias="class")
    """Interactive (a latency percentile) or Batch (requests may queue and must be done within
    deadlineSeconds; the planner drains the queue at the lowest cost, on spot if it may)."""
    metric: SloMetric = SloMetric.TTFT
    """ttft (time to first token), itl (inter-token latency), e2e (whole request) or queue-time."""
    percentile: float = Field(default=95, gt=0, le=100)
    """Percentile of the latency distribution, in (0, 100]; for Batch, the share of requests
    that must meet their deadline."""
    threshold_seconds: float | None = Field(default=None, gt=0, le=3600)
    """The latency the percentile must not exceed, in seconds (Interactive)."""
    deadline_seconds: float | None = Field(default=None, gt=0, le=604800)
    """Batch: each request must be done this long after it arrives, in seconds (up to 7 days)."""

    @property
    def limit_seconds(self) -> float:
        """The latency a request must meet: the threshold, or a Batch request's deadline."""
        batch = self.slo_class is SloClass.BATCH
        limit = self.deadline_seconds if batch else self.threshold_seconds
        if limit is None:  # the CRD's rules require it; a Python caller may skip them
            raise ValueError(f"slo needs {'deadlineSeconds' if batch else 'thresholdSeconds'}")
        return limit


class MetricsPreset(StrEnum):
    VLLM = "vllm"
    TGI = "tgi"
    TEI = "tei"
    SGLANG = "sglang"
    TRITON = "triton"
    GENERIC = "generic"


METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"

PRESET_SLO_METRICS: dict[str, tuple[str, ...]] = {
    "vllm": ("ttft", "itl", "e2e", "queue-time"),
    "tgi": ("itl", "e2e", "queue-time"),
    "tei": ("e2e", "queue-time"),
    "sglang": ("ttft", "itl", "e2e"),
    "triton": ("e2e", "queue-time"),
}
"""The SLO metrics each preset's server exports (``adapters.prometheus.PRESETS``, which a unit
test keeps equal); ``generic`` names its own histogram."""


def _preset_reads_slo_metric() -> dict[str, str]:
    """The rule that a service's SLO metric is one its preset exports, or has its own histogram."""
    reads = " || ".join(
        f"(self.metrics.preset == '{preset}' && self.slo.metric in {list(metrics)})"
        for preset, metrics in PRESET_SLO_METRICS.items()
    )
    told = "; ".join(f"{p}: {', '.join(m)}" for p, m in PRESET_SLO_METRICS.items())
    return rule(
        f"!has(self.metrics) || has(self.metrics.latencyHistogram) || {reads}",
        f"the metrics preset does not export slo.metric ({told}): choose one of its metrics "
        "or name the histogram in metrics.latencyHistogram",
    )


class MetricsSpec(ApiModel):
    """Where the model server's metrics come from: a preset, with optional overrides."""

    validations: ClassVar[list[dict[str, str]]] = [
        rule(
            "self.preset != 'generic' || (has(self.requestCounter) && has(self.latencyHistogram))",
            "the generic preset needs requestCounter and latencyHistogram",
        ),
    ]

    preset: MetricsPreset = MetricsPreset.VLLM
    """vllm, tgi, tei, sglang, triton (its latency is a mean: no histogram) or generic."""
    request_counter: str | None = Field(default=None, max_length=200, pattern=METRIC_NAME)
    """Counter of finished requests (overrides the preset's)."""
    latency_histogram: str | None = Field(default=None, max_length=200, pattern=METRIC_NAME)
    """Histogram of the SLO metric, without the _bucket suffix (overrides the preset's)."""
    queue_gauge: str | None = Field(default=None, max_length=200, pattern=METRIC_NAME)
    """Gauge of requests waiting in the server's queue (overrides the preset's)."""
    arrival_rate_query: str | None = Field(default=None, min_length=1, max_length=2000)
    """PromQL for the requests/s arriving for this service in front of its model servers (a
    gateway, ingress or load-balancer counter), e.g.
    `sum(rate(istio_requests_total{destination_service_name="embed"}[1m]))`. It exists while the
    service has no replicas, so a service scaled to zero wakes when requests arrive; while it has
    replicas, the planner takes the larger of this and the servers' completed requests/s. An
    empty result is unknown, not zero (append `or vector(0)` to read no series as no traffic)."""


class Replicas(ApiModel):
    """Bounds on the total number of replicas over all variants."""

    validations: ClassVar[list[dict[str, str]]] = [
        rule("self.min <= self.max", "replicas.min must not exceed replicas.max"),
        rule(
            "!has(self.fixed) || (self.fixed >= self.min && self.fixed <= self.max)",
            "replicas.fixed must lie within [replicas.min, replicas.max]",
        ),
    ]

    min: int = Field(default=1, ge=0, le=10000)
    """Replicas always kept; 0 allows scale to zero after idleTimeoutSeconds without traffic."""
    max: int = Field(ge=1, le=10000)
    """Replicas never exceeded."""
    fixed: int | None = Field(default=None, ge=0, le=10000)
    """A manual total (set by `kubectl scale`): when present, infscale keeps exactly this many."""
    idle_timeout_seconds: int = Field(default=600, ge=0, le=86400)
    """With min 0: seconds without any request before the last replica goes."""


class ScaleDown(ApiModel):
    """How carefully capacity is removed. Capacity is always added at once."""

    stabilization_seconds: int = Field(default=300, ge=0, le=3600)
    """A scale-down happens only if every recommendation in this window allowed it."""
    max_step_percent: int = Field(default=25, ge=1, le=100)
    """At most this share of the replicas goes in one decision (always at least one replica)."""


class FallbackPolicy(StrEnum):
    HOLD = "Hold"
    FIXED = "Fixed"


class Fallback(ApiModel):
    """What happens while metrics are unavailable. Replicas are never lowered on unknown data."""

    validations: ClassVar[list[dict[str, str]]] = [
        rule(
            "self.policy != 'Fixed' || has(self.replicas)",
            "fallback.replicas is required when fallback.policy is Fixed",
        ),
    ]

    policy: FallbackPolicy = FallbackPolicy.HOLD
    """Hold keeps the last safe plan; Fixed raises the service to fallback.replicas."""
    replicas: int | None = Field(default=None, ge=0, le=10000)
    """The total replicas for the Fixed policy."""


class EnvVar(ApiModel):
    """An environment variable of the model server; its fields follow core/v1 EnvVar."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}, extra="allow"
    )

    name: str = Field(min_length=1, max_length=253)


class ServerOverride(ApiModel):
    """What this variant's model server runs differently from the service's template: another
    image, command, arguments or environment (a quantized build, a smaller model, a CPU build).
    It changes the template's first container, the model server, and nothing else: the server
    keeps its name, ports and probes, so its metrics are read as the service's."""

    image: str | None = Field(default=None, min_length=1, max_length=1024)
    """The server's image for this variant."""
    command: list[str] | None = Field(default=None, max_length=64)
    """Replaces the server's command."""
    args: list[str] | None = Field(default=None, max_length=256)
    """Replaces the server's arguments, e.g. [--model, my-org/chat-8b-awq, --quantization, awq]."""
    env: list[EnvVar] = Field(default_factory=list, max_length=64)
    """Set on the server, replacing the template's variables of the same name."""


class Variant(ApiModel):
    """One way to run the service: a node pool, per-replica resources and a capacity estimate;
    optionally another model (``server``) with its answer ``quality``."""

    name: str = Field(min_length=1, max_length=40, pattern=DNS_LABEL)
    """Short DNS label; the Deployment is named <service>-<variant>."""
    node_pool: str = Field(min_length=1, max_length=253)
    """Name of the InferenceNodePool the replicas run on."""
    resources: dict[str, Quantity] = Field(
        default_factory=dict, max_length=16, json_schema_extra=resource_names_rule("resources")
    )
    """Resources of one replica (requests = limits), e.g. {nvidia.com/gpu: 1, cpu: 4}; when set,
    they replace the template's model-server container resources (the plan places pods by them)."""
    capacity_rps: float = Field(gt=0, le=1e6)
    """Requests per second one replica sustains while the SLO holds; refined online."""
    startup_seconds: int = Field(default=60, ge=0, le=7200)
    """Time from pod creation to Ready (image pull and model load) on a warm node."""
    server: ServerOverride | None = None
    """What this variant's model server runs differently from the service's template."""
    quality: float | None = Field(default=None, ge=0, le=1)
    """Answer quality of this variant, 0-1, from the team's own evaluation (a benchmark
    accuracy, a win-rate against the reference model). Required on every variant when
    spec.quality sets a floor."""
    quality_source: str | None = Field(default=None, max_length=500)
    """Where the quality figure comes from (the evaluation, its date): for the reader."""


class Container(ApiModel):
    """A container of the pod template; its fields follow core/v1 Container."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}, extra="allow"
    )

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)


class PodSpecShape(ApiModel):
    """The pod spec of the template; its fields follow core/v1 PodSpec."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}, extra="allow"
    )

    containers: list[Container] = Field(min_length=1, max_length=32)
    """At least one container: the model server."""


class PodTemplate(ApiModel):
    """The model-server pod template (a core/v1 PodTemplateSpec)."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}, extra="allow"
    )

    metadata: dict[str, Any] = Field(
        default_factory=dict, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    spec: PodSpecShape


class QualityMode(StrEnum):
    PER_REQUEST = "PerRequest"
    AVERAGE = "Average"


class QualitySpec(ApiModel):
    """The least answer quality the product accepts, over the variants' quality scores."""

    floor: float = Field(ge=0, le=1)
    """The quality floor, 0-1, on the same scale as the variants' quality."""
    mode: QualityMode = QualityMode.PER_REQUEST
    """PerRequest: every variant that serves traffic is at or above the floor. Average: the
    traffic-weighted mean quality of the variants serving is at or above it (cheaper variants
    may take a share, balanced by better ones)."""


class ParentRef(ApiModel):
    """The Gateway (or one of its listeners) the service's HTTPRoute attaches to."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the Gateway."""
    namespace: str | None = Field(default=None, max_length=63, pattern=DNS_LABEL)
    """Its namespace; defaults to the service's."""
    section_name: str | None = Field(default=None, max_length=253)
    """One listener of the Gateway, by name."""


class HttpRouteRouting(ApiModel):
    """A Gateway API HTTPRoute in front of the variants, its weights kept in step with the plan."""

    parent_refs: list[ParentRef] = Field(min_length=1, max_length=32)
    """The Gateways the route attaches to."""
    hostnames: list[str] = Field(default_factory=list, max_length=16)
    """Host names the route serves; empty serves every host of the Gateway's listeners."""


class Routing(ApiModel):
    """How requests reach the variants. Without it, a Service of the team's own (over every
    variant's pods) spreads requests evenly per pod, fast or slow, so one variant serves at a
    time (with those of its speed)."""

    http_route: HttpRouteRouting
    """One Service per variant (<service>-<variant>) and an HTTPRoute <service> whose backend
    weights are each variant's share of the planned traffic, owned by the InferenceService."""
    port: int = Field(default=8000, ge=1, le=65535)
    """The model server's port the Services route to."""


class SpotPolicy(ApiModel):
    """How much of the service may run on spot pools."""

    max_share: float | None = Field(default=None, ge=0, le=1)
    """At most this share of the planned capacity on spot pools (default 0.5 for Interactive,
    1 for Batch). An Interactive service's capacity off each one spot pool also carries the
    rate arriving now: losing a spot pool costs the headroom above it (held peaks, margins)
    until replacements are Ready, not the SLO. A Batch service's queue waits out a loss."""


class Objective(ApiModel):
    """What the planner minimises for the service, besides the dollars it pays."""

    carbon_usd_per_tonne: float = Field(default=0.0, ge=0, le=100000)
    """An internal carbon price: each tonne of CO2 the service's replicas would emit at full
    load (on pools with gramsCo2PerKwh) counts as this many dollars. 0, the default: dollars
    only. Electricity a pool's usdPerKwh prices is always counted: it is paid."""


class InferenceServiceSpec(ApiModel):
    """One model endpoint with a latency SLO, and the ways it may run."""

    validations: ClassVar[list[dict[str, str]]] = [
        rule(
            "self.variants.all(v, self.variants.exists_one(w, w.name == v.name))",
            "variant names must be unique",
        ),
        rule(
            "!has(self.fallback) || !has(self.fallback.replicas) || "
            "(self.fallback.replicas >= self.replicas.min "
            "&& self.fallback.replicas <= self.replicas.max)",
            "fallback.replicas must lie within [replicas.min, replicas.max]",
        ),
        _preset_reads_slo_metric(),
        rule(
            "!has(self.quality) || self.variants.all(v, has(v.quality))",
            "quality.floor is set: every variant needs a quality score (variants[].quality)",
        ),
        rule(
            "!has(self.quality) || self.variants.exists(v, has(v.quality) "
            "&& v.quality >= self.quality.floor)",
            "no variant's quality reaches quality.floor: lower the floor or add a variant "
            "that meets it",
        ),
        rule(
            "!has(self.slo.class) || self.slo.class != 'Batch' "
            "|| self.metrics.preset != 'generic' || has(self.metrics.queueGauge)",
            "a Batch service is sized by what waits in its queue: with the generic preset set "
            "metrics.queueGauge (without it, it could never scale down)",
        ),
    ]

    mode: Mode = Mode.AUTO
    """Auto scales; Recommend computes and reports the plan but never changes replicas."""
    slo: Slo
    """The latency objective."""
    metrics: MetricsSpec = MetricsSpec()
    """Which metrics the model server exports."""
    replicas: Replicas
    """Bounds on the total replicas over all variants."""
    scale_down: ScaleDown = ScaleDown()
    """How carefully capacity is removed."""
    fallback: Fallback = Fallback()
    """What happens while metrics are unavailable."""
    variants: list[Variant] = Field(min_length=1, max_length=8)
    """The ways to run the service (at least one); each becomes one Deployment."""
    template: PodTemplate
    """The model-server pod template shared by every variant (its first container is the model
    server; a variant's ``server`` changes only that container)."""
    quality: QualitySpec | None = None
    """A quality floor the plan keeps: which variants may serve, or what mix of them."""
    routing: Routing | None = None
    """Weighted routing that gives each variant the share of traffic the plan gives it. Without
    it, a plain Service spreads requests evenly over the pods and one variant serves at a time
    (with those of its speed)."""
    objective: Objective | None = None
    """What else the planner weighs besides dollars (default: dollars only)."""
    spot: SpotPolicy = Field(default_factory=SpotPolicy)
    """How much of the service may run on spot pools (capacityType: Spot)."""


class VariantStatus(ApiModel):
    """Replicas of one variant."""

    name: str
    desired_replicas: int = 0
    ready_replicas: int = 0
    capacity_rps: float | None = None
    """The capacity estimate currently used for one replica."""
    power_watts: float | None = None
    """What the variant's Ready replicas draw: their share of a node, at their load."""
    weight: int | None = None
    """With spec.routing: the variant's share of the traffic in percent (its HTTPRoute
    backend weight)."""


class InferenceServiceStatus(ApiModel):
    """What the operator observed and decided; the `why` of every change."""

    observed_generation: int | None = None
    replicas: int | None = None
    """Desired replicas over all variants (the scale subresource reads it)."""
    ready_replicas: int | None = None
    selector: str | None = None
    """Label selector of the service's pods (the scale subresource reads it)."""
    observed_rps: float | None = None
    """Request rate over all variants; absent when unknown."""
    arrival_rps: float | None = None
    """Requests/s arriving in front of the servers (spec.metrics.arrivalRateQuery); absent when
    unknown or not asked for."""
    observed_latency_seconds: float | None = None
    """The SLO metric at the SLO percentile; absent when unknown."""
    slo_attainment: float | None = None
    """Fraction of recent requests within the SLO."""
    usd_per_hour: float | None = None
    """Cost of the nodes the service's replicas occupy."""
    power_watts: float | None = None
    """What the service's Ready replicas draw (their share of their nodes, at their load);
    absent when unknown (a pool without power, or a load not measured)."""
    usd_per_million_requests: float | None = None
    """Node cost plus electricity not included in it, per million requests at the current
    rate."""
    kwh_per_million_requests: float | None = None
    """Energy per million requests at the current rate."""
    grams_co2_per_million_requests: float | None = None
    """Emissions per million requests at the current rate (pools with a carbon intensity)."""
    energy_kwh: float | None = None
    """Energy the service's Ready replicas have drawn since infscale first wrote its status
    (powerWatts over time; rewritten with the rest of the status or once it has grown by a
    quarter, so it may trail by that much)."""
    energy_accrued_at: str | None = None
    """When energyKwh was last brought up to date."""
    quality: float | None = None
    """With spec.quality: the traffic-weighted quality of the mix the plan aims at (each
    variant's share of the traffic is its share of the planned capacity). Replicas the scale-down
    window keeps a while longer are not in it; behind a plain Service they still take an even
    share of requests until they go."""
    quality_floor_usd_per_hour: float | None = None
    """With spec.quality: what the floor costs, per hour: the plan's node cost over the cheapest
    plan for the same demand without the floor."""
    variants: list[VariantStatus] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    last_decision: Decision | None = None
    recommendation: str | None = None
    """In Recommend mode: what Auto mode would do."""
    planner_memory: str | None = None
    """What the planner has learned of this service (forecast, hourly bursts, capacities),
    compressed; saved every few minutes so that a restarted operator goes on from it. Opaque;
    removing it only makes the planner learn again."""


class InferenceService(ApiModel):
    """A model endpoint that infscale scales to meet its SLO at the lowest cost."""

    spec: InferenceServiceSpec
    status: InferenceServiceStatus | None = None
