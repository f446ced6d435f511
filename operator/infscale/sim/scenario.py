"""Scenario files: node pools, variants and the simulated replica performance, from YAML.

A scenario holds the planner's view (pools, one service with its variants and SLO) and the
simulator's ground truth per variant (``perf``: batch slots per replica, mean service time and its
coefficient of variation), which the policies never see.
"""

from __future__ import annotations

import pathlib

import pydantic
import yaml

from infscale.domain import energy, model
from infscale.sim import traces

SCENARIO_DIR = pathlib.Path(__file__).parent / "scenarios"


class _Res(pydantic.BaseModel):
    cpu: float = 0.0
    memory_gib: float = 0.0
    extended: dict[str, float] = pydantic.Field(default_factory=dict)

    def domain(self) -> model.Resources:
        return model.Resources(self.cpu, self.memory_gib, dict(self.extended))


class _Power(pydantic.BaseModel):
    """One node's draw idle and at full load, and its grid's carbon intensity."""

    idle_w: float = pydantic.Field(ge=0.0)
    max_w: float = pydantic.Field(ge=0.0)
    g_co2_per_kwh: float | None = pydantic.Field(default=None, ge=0.0)

    def domain(self) -> model.Power:
        return model.Power(self.idle_w, self.max_w, 0.0, self.g_co2_per_kwh)


class _Pool(pydantic.BaseModel):
    name: str
    instance: str = ""
    node: _Res
    usd_per_hour: float
    min_nodes: int = 0
    max_nodes: int = 20
    provisioning_s: float = 300.0
    power: _Power | None = None  # None: a CPU node's estimate (energy.node_power)
    spot: bool = False  # nodes reclaimable at short notice
    standby_max_nodes: int = pydantic.Field(default=0, ge=0)
    """Nodes the planner may keep Ready ahead of need (spec.standby.maxNodes)."""
    standby_warm: bool = False
    """Standby nodes run started replicas (spec.standby.warm)."""
    interruptions_per_hour: float = pydantic.Field(default=0.0, ge=0.0)
    """Spot: the rate at which each node is reclaimed (the simulator draws each node's time)."""


class Perf(pydantic.BaseModel):
    """Simulated truth of one replica: ``slots`` requests at once, each taking ``service_s``."""

    slots: int = 1
    service_s: float = 0.2
    cv: float = 0.5  # coefficient of variation of the service time (gamma); 1.0 = exponential


class _Variant(pydantic.BaseModel):
    name: str
    pool: str
    resources: _Res
    capacity_rps: float
    startup_s: float = 60.0
    perf: Perf = Perf()
    quality: float | None = pydantic.Field(default=None, ge=0.0, le=1.0)


class _Service(pydantic.BaseModel):
    min_replicas: int = 1
    max_replicas: int = 100
    scale_down_stabilization_s: float = 300.0
    scale_down_max_step: int = 0
    idle_timeout_s: float = 600.0
    quality_floor: float | None = pydantic.Field(default=None, ge=0.0, le=1.0)
    quality_average: bool = False  # the floor holds on average over the traffic
    spot_max_share: float | None = pydantic.Field(default=None, ge=0.0, le=1.0)
    """At most this share of the capacity on spot pools (None: 0.5, or 1 for a batch SLO)."""
    routing: model.Routing = "shared"
    """``shared``: one queue in front of every replica (a balancer that hands each request to a
    free slot); ``weighted``: a route that splits the requests over a queue per variant by the
    policy's weights (a Gateway API HTTPRoute); ``spread``: a plain Service, every Ready pod the
    same share (the planner then keeps one variant serving)."""


class _Slo(pydantic.BaseModel):
    latency_s: float = 1.0
    percentile: float = 95.0
    deadline_s: float | None = pydantic.Field(default=None, gt=0.0)
    """Batch: requests may queue and meet the SLO when done within this long (``latency_s`` is
    then unused)."""


class _Traffic(pydantic.BaseModel):
    """How much of a trace the service carries: ``tenants`` shifted copies of it."""

    tenants: int = pydantic.Field(default=1, ge=1)
    shift_s: float = pydantic.Field(default=60.0, ge=0.0)
    mean_rps: float | None = pydantic.Field(default=None, gt=0.0)
    """A shared scenario's interactive service: each tenant draws the case's generated trace at
    this mean rate (its shape, not its rate); None: the case's own rate."""


class Scenario(pydantic.BaseModel):
    """One scenario file."""

    name: str
    description: str = ""
    sources: list[str] = pydantic.Field(default_factory=list)
    slo: _Slo = _Slo()
    pools: list[_Pool]
    variants: list[_Variant]
    service: _Service = _Service()
    traffic: _Traffic = _Traffic()

    def workload(self, trace: traces.Trace, seed: int = 0) -> traces.Trace:
        """The trace as this scenario's service receives it (see :func:`traces.superpose`)."""
        return traces.superpose(trace, self.traffic.tenants, self.traffic.shift_s, seed)

    def domain_pools(self) -> list[model.PoolSpec]:
        """The pools as the planner sees them."""
        return [
            model.PoolSpec(
                p.name,
                p.node.domain(),
                p.usd_per_hour,
                p.min_nodes,
                p.max_nodes,
                p.provisioning_s,
                energy.node_power(p.power.domain() if p.power else None, p.node.domain()),
                p.spot,
                p.standby_max_nodes,
                p.standby_warm,
                p.interruptions_per_hour if p.spot else 0.0,
            )
            for p in self.pools
        ]

    def domain_service(self, only_variant: str | None = None) -> model.ServiceSpec:
        """The service as the planner sees it, optionally restricted to one variant."""
        variants = tuple(
            model.VariantSpec(
                v.name, v.pool, v.resources.domain(), v.capacity_rps, v.startup_s, v.quality
            )
            for v in self.variants
            if only_variant is None or v.name == only_variant
        )
        deadline_s = self.slo.deadline_s
        spot_share = self.service.spot_max_share
        return model.ServiceSpec(
            "bench",
            self.name,
            variants,
            slo_latency_s=self.slo.latency_s if deadline_s is None else deadline_s,
            slo_percentile=self.slo.percentile,
            min_replicas=self.service.min_replicas,
            max_replicas=self.service.max_replicas,
            scale_down_stabilization_s=self.service.scale_down_stabilization_s,
            scale_down_max_step=self.service.scale_down_max_step,
            idle_timeout_s=self.service.idle_timeout_s,
            quality_floor=self.service.quality_floor,
            quality_average=self.service.quality_average,
            routing=self.service.routing,
            spot_max_share=spot_share
            if spot_share is not None
            else 0.5
            if deadline_s is None
            else 1.0,
            deadline_s=deadline_s,
        )

    def without_spot(self) -> Scenario:
        """This scenario without its spot pools and the variants on them."""
        spot = {p.name for p in self.pools if p.spot}
        return self.model_copy(
            update={
                "pools": [p for p in self.pools if p.name not in spot],
                "variants": [v for v in self.variants if v.pool not in spot],
            }
        )

    def perf(self) -> dict[str, Perf]:
        """Simulated performance per variant."""
        return {v.name: v.perf for v in self.variants}


class BatchJobs(pydantic.BaseModel):
    """Batch work as jobs: each a number of requests submitted over a few minutes, at seeded
    times (:func:`infscale.sim.tracegen.batch_jobs`)."""

    per_hour: float = pydantic.Field(gt=0.0)
    requests: tuple[int, int]  # each job's size, log-uniform between
    submit_s: tuple[float, float]  # how long a job's submission lasts, uniform between


class _SharedService(pydantic.BaseModel):
    name: str
    slo: _Slo = _Slo()
    service: _Service = _Service()
    traffic: _Traffic = _Traffic()  # an interactive service: tenants of the case's trace
    jobs: BatchJobs | None = None  # a batch service: generated jobs instead
    variants: list[_Variant]


class SharedScenario(pydantic.BaseModel):
    """Several services on one set of pools (``economics``): each is a :class:`Scenario` of its
    own, replayed side by side on the same nodes (``engine.Group``)."""

    name: str
    description: str = ""
    sources: list[str] = pydantic.Field(default_factory=list)
    pools: list[_Pool]
    services: list[_SharedService]

    def lanes(self) -> list[Scenario]:
        """One scenario per service, every one with all the pools."""
        return [
            Scenario(
                name=s.name,
                slo=s.slo,
                pools=self.pools,
                variants=s.variants,
                service=s.service,
                traffic=s.traffic,
            )
            for s in self.services
        ]

    def without_spot(self) -> SharedScenario:
        """This scenario without its spot pools and the variants on them."""
        spot = {p.name for p in self.pools if p.spot}
        return self.model_copy(
            update={
                "pools": [p for p in self.pools if p.name not in spot],
                "services": [
                    s.model_copy(update={"variants": [v for v in s.variants if v.pool not in spot]})
                    for s in self.services
                ],
            }
        )


def _path(path_or_name: str | pathlib.Path) -> pathlib.Path:
    path = pathlib.Path(path_or_name)
    return path if path.exists() else SCENARIO_DIR / f"{path_or_name}.yaml"


def load(path_or_name: str | pathlib.Path) -> Scenario:
    """Load a scenario from a path, or by name from the bundled ``scenarios/`` directory."""
    return Scenario.model_validate(yaml.safe_load(_path(path_or_name).read_text()))


def load_shared(path_or_name: str | pathlib.Path) -> SharedScenario:
    """Load a scenario of several services (a path, or a bundled one's name)."""
    return SharedScenario.model_validate(yaml.safe_load(_path(path_or_name).read_text()))
