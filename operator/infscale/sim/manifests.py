"""A scenario from a user's own manifests: one InferenceService and the InferenceNodePools it uses.

``infscale whatif`` replays a trace against what a team would apply. The documents are checked as
the API server would where the pydantic models (``infscale.api.v1alpha1``) say so, plus the CEL
rules the simulation depends on (bounds in order, unique variant names, one provider), and every
variant's pool must be among the documents, with a node a replica fits on.

The manifests say what the planner sees, not how a replica behaves under load, which the
simulator needs (``scenario.Perf``). :func:`derived_perf` takes ``capacityRps`` as true, in the
bundled scenarios' sense: it is 80 % of the rate at which four replicas keep 99 % of requests
within the SLO threshold. A replica serves ``slots`` requests at once (gamma service times,
cv 0.35); the slots and the service time are chosen to make that so.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pathlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

import pydantic
import yaml
from scipy import integrate, stats

from infscale.api import quantity, v1alpha1
from infscale.domain import pricing
from infscale.sim import queueing, scenario
from infscale.sim.servers import BATCH_REFERENCE_S

KINDS = ("InferenceService", "InferenceNodePool")
SERVICE_FRACTION = 0.25  # of the SLO threshold: the service time that sizes a replica's slots
SPEC_SHARE = 0.8  # capacityRps over the rate a replica sustains at the SLO
ATTAINMENT = 0.99  # "sustains": this share of requests within the threshold (the bench's bar)
CALIBRATION_REPLICAS = 4  # replicas sharing the queue when the rate is measured
SERVICE_CV = 0.35  # as the bundled scenarios
NEVER_FITS = 10**9  # pricing.nodes_needed for a replica no node holds


class ManifestError(ValueError):
    """Manifests that cannot be simulated; the message names the file, document and field."""


@dataclasses.dataclass(frozen=True)
class Document:
    """One YAML document: where it came from and what it holds."""

    source: str
    index: int  # 1-based within its file
    body: Any
    item: int | None = None  # its index in the items of a `kind: List` (kubectl get -o yaml)

    def where(self) -> str:
        """File and document index, with kind and name where known."""
        text = f"{self.source}: document {self.index}"
        if self.item is not None:
            text += f", items[{self.item}]"
        if isinstance(self.body, dict) and isinstance(self.body.get("kind"), str):
            meta = self.body.get("metadata")
            name = meta.get("name") if isinstance(meta, dict) else None
            namespace = meta.get("namespace") if isinstance(meta, dict) else None
            shown = f"{namespace}/{name}" if namespace and name else name
            text += f" ({self.body['kind']}{f' {shown}' if shown else ''})"
        return text


@dataclasses.dataclass(frozen=True)
class Service:
    """An InferenceService from the documents."""

    namespace: str
    name: str
    spec: v1alpha1.InferenceServiceSpec
    document: Document

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True)
class Manifests:
    """What the documents declare (other kinds, as Namespaces, are ignored)."""

    services: list[Service]
    pools: dict[str, tuple[v1alpha1.InferenceNodePoolSpec, Document]]
    ignored: list[str]


def files(paths: Iterable[str]) -> list[pathlib.Path]:
    """The files named, a directory standing for its *.yaml and *.yml files (sorted)."""
    found: list[pathlib.Path] = []
    for given in paths:
        path = pathlib.Path(given)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
            if not inside:
                raise ManifestError(f"{path}: no .yaml or .yml files in this directory")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise ManifestError(f"{path}: no such file or directory")
    return found


def read_documents(paths: Iterable[pathlib.Path]) -> list[Document]:
    """Every non-empty YAML document of the files, in order; the items of a `kind: List` (as
    `kubectl get -o yaml` prints several objects) each count as one."""
    documents: list[Document] = []
    for path in paths:
        try:
            loaded = list(yaml.safe_load_all(path.read_text()))
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            raise ManifestError(f"{path}: {where}not valid YAML: {error.problem}") from None
        except (yaml.YAMLError, OSError, UnicodeDecodeError) as error:
            raise ManifestError(f"{path}: cannot read: {error}") from None
        for i, body in enumerate(loaded, 1):
            items = body.get("items") if isinstance(body, dict) else None
            if isinstance(body, dict) and body.get("kind") == "List" and isinstance(items, list):
                documents.extend(Document(str(path), i, item, j) for j, item in enumerate(items))
            elif body is not None:
                documents.append(Document(str(path), i, body))
    return documents


def _power(power: v1alpha1.NodePower | None) -> dict[str, Any]:
    """A pool's spec.power as the scenario's (none: the simulator's CPU estimate or unknown)."""
    if power is None:
        return {}
    return {
        "power": {
            "idle_w": power.idle_watts,
            "max_w": power.max_watts,
            "g_co2_per_kwh": power.grams_co2_per_kwh,
        }
    }


def _standby(standby: v1alpha1.PoolStandby | None) -> dict[str, Any]:
    """The pool's spec.standby, as the scenario's fields (none without it)."""
    if standby is None:
        return {}
    return {"standby_max_nodes": standby.max_nodes, "standby_warm": standby.warm}


def _path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def _fail(document: Document, field: str, message: str) -> ManifestError:
    return ManifestError(f"{document.where()}: {field}: {message}")


def _validated(document: Document, model_cls: type[pydantic.BaseModel]) -> Any:
    try:
        return model_cls.model_validate(document.body)
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"{_path(e['loc'])}: {e['msg']}"
            + (f" (got {e['input']!r})" if not isinstance(e["input"], dict | list) else "")
            for e in error.errors()
        )
        raise ManifestError(f"{document.where()}: {problems}") from None


def _quantities(document: Document, field: str, amounts: dict[str, int | str]) -> None:
    """The CRD's quantity pattern and bounds (pydantic leaves them to the API server)."""
    for key, value in amounts.items():
        good = (
            value >= 0
            if isinstance(value, int)
            else len(value) <= 64 and re.match(v1alpha1.QUANTITY, value) is not None
        )
        if not good:
            raise _fail(
                document, f"{field}.{key}", f"{value!r} is not a non-negative Kubernetes quantity"
            )


def _check_pool(document: Document, spec: v1alpha1.InferenceNodePoolSpec) -> None:
    if (
        spec.provider.kind == "unset"
        or sum(
            getattr(spec.provider, n) is not None
            for n in ("kwok", "clusterapi", "external", "static")
        )
        != 1
    ):
        raise _fail(
            document,
            "spec.provider",
            "set exactly one provider: kwok, clusterapi, external or static",
        )
    if "cpu" not in spec.node.capacity or "memory" not in spec.node.capacity:
        raise _fail(document, "spec.node.capacity", "node.capacity must include cpu and memory")
    _quantities(document, "spec.node.capacity", spec.node.capacity)
    if spec.min_nodes > spec.max_nodes:
        raise _fail(document, "spec.minNodes", "minNodes must not exceed maxNodes")


def _check_service(document: Document, spec: v1alpha1.InferenceServiceSpec) -> None:
    bounds = spec.replicas
    if bounds.min > bounds.max:
        raise _fail(document, "spec.replicas", "replicas.min must not exceed replicas.max")
    if bounds.fixed is not None and not bounds.min <= bounds.fixed <= bounds.max:
        raise _fail(
            document,
            "spec.replicas.fixed",
            "replicas.fixed must lie within [replicas.min, replicas.max]",
        )
    names = [v.name for v in spec.variants]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise _fail(document, f"spec.variants[{i}].name", "variant names must be unique")
        _quantities(document, f"spec.variants[{i}].resources", spec.variants[i].resources)


def parse(documents: Iterable[Document]) -> Manifests:
    """The services and pools of the documents, validated; raises :class:`ManifestError`."""
    services: list[Service] = []
    pools: dict[str, tuple[v1alpha1.InferenceNodePoolSpec, Document]] = {}
    ignored: list[str] = []
    for document in documents:
        body = document.body
        if not isinstance(body, dict):
            raise _fail(document, "(document)", "expected a mapping with apiVersion and kind")
        kind = body.get("kind")
        if kind not in KINDS:
            ignored.append(f"{document.where()}")
            continue
        if body.get("apiVersion") != v1alpha1.API_VERSION:
            raise _fail(
                document,
                "apiVersion",
                f"expected {v1alpha1.API_VERSION} for {kind}, got {body.get('apiVersion')!r}",
            )
        meta = body.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            raise _fail(document, "metadata.name", "required")
        if kind == "InferenceNodePool":
            pool = _validated(document, v1alpha1.InferenceNodePool)
            _check_pool(document, pool.spec)
            if name in pools:
                raise _fail(
                    document,
                    "metadata.name",
                    f"InferenceNodePool {name!r} is declared twice (first in "
                    f"{pools[name][1].where()})",
                )
            pools[name] = (pool.spec, document)
        else:
            svc = _validated(document, v1alpha1.InferenceService)
            _check_service(document, svc.spec)
            namespace = str(meta.get("namespace") or "default") if isinstance(meta, dict) else ""
            services.append(Service(namespace, name, svc.spec, document))
    return Manifests(services, pools, ignored)


def pick(manifests: Manifests, wanted: str | None) -> Service:
    """The one service to replay: the only one, or ``wanted`` (name or namespace/name)."""
    services = manifests.services
    if not services:
        raise ManifestError("no InferenceService in the manifests (give one with -f)")
    if wanted:
        chosen = [s for s in services if wanted in (s.name, s.key)]
        if len(chosen) != 1:
            have = ", ".join(s.key for s in services)
            why = "matches several" if chosen else "matches none"
            raise ManifestError(f"--service {wanted} {why} of the InferenceServices ({have})")
        return chosen[0]
    if len(services) > 1:
        have = ", ".join(s.key for s in services)
        raise ManifestError(
            f"{len(services)} InferenceServices ({have}): whatif replays one; "
            "pick it with --service NAME"
        )
    return services[0]


def _miss(servers: int, service_s: float, rate: float, threshold_s: float) -> float:
    """Share of requests over ``threshold_s`` (wait + service) at ``servers`` slots in one FCFS
    queue: the M/M/c wait (Erlang C), its decay slowed by (1 + cv^2) / 2 for the gamma service
    (Allen-Cunneen), plus the gamma service time itself."""
    offered = rate * service_s
    if offered >= servers:
        return 1.0
    shape, scale = 1.0 / SERVICE_CV**2, service_s * SERVICE_CV**2
    decay = (servers / service_s - rate) / ((1.0 + SERVICE_CV**2) / 2.0)
    waits = queueing.erlang_c(servers, offered)

    def late(s: float) -> float:  # P(wait > threshold - s) x density of service s
        return math.exp(-decay * (threshold_s - s)) * float(stats.gamma.pdf(s, shape, scale=scale))

    within, _ = integrate.quad(late, 0.0, threshold_s, limit=200)
    return float(stats.gamma.sf(threshold_s, shape, scale=scale)) + waits * float(within)


@functools.cache
def derived_perf(capacity_rps: float, threshold_s: float | None) -> scenario.Perf:
    """How a replica behaves, in the simulator and the emulator alike, from its spec (see the
    module's docstring); ``threshold_s`` is the SLO's (None: a batch service's reference).

    Slots: enough for ``capacity_rps / SPEC_SHARE`` at 75 % busy with a service time of a
    quarter of the threshold. Service time: the longest with which ``CALIBRATION_REPLICAS``
    replicas at ``capacity_rps / SPEC_SHARE`` each still meet ``ATTAINMENT`` (the bundled
    scenarios' definition of a cautious spec; tests/unit/test_whatif.py checks it in the
    simulator).
    """
    threshold = threshold_s or BATCH_REFERENCE_S
    rate = capacity_rps / SPEC_SHARE
    slots = max(1, math.ceil(rate * SERVICE_FRACTION * threshold / 0.75))
    servers, total = CALIBRATION_REPLICAS * slots, CALIBRATION_REPLICAS * rate
    low, high = 0.0, threshold
    for _ in range(40):
        mid = (low + high) / 2
        if _miss(servers, mid, total, threshold) <= 1.0 - ATTAINMENT:
            low = mid
        else:
            high = mid
    return scenario.Perf(slots=slots, service_s=round(max(low, 1e-4), 6), cv=SERVICE_CV)


def to_scenario(service: Service, manifests: Manifests, peak_rps: float = 0.0) -> scenario.Scenario:
    """The service and the pools its variants name, as a simulator scenario.

    ``scaleDown.maxStepPercent`` becomes a step in replicas of the trace's peak (``peak_rps`` on
    the variant of largest capacity), as the live operator takes it of the current total.
    """
    spec = service.spec
    document = service.document
    used: list[str] = []
    variants = []
    for i, variant in enumerate(spec.variants):
        field = f"spec.variants[{i}]"
        if variant.node_pool not in manifests.pools:
            have = ", ".join(sorted(manifests.pools)) or "none"
            raise _fail(
                document,
                f"{field}.nodePool",
                f"no InferenceNodePool {variant.node_pool!r} in the manifests (have: {have})",
            )
        pool_spec = manifests.pools[variant.node_pool][0]
        resources = quantity.pod_resources(variant.resources)
        node = quantity.node_resources(pool_spec.node.capacity)
        if not any(quantity.parse(v) > 0 for v in variant.resources.values()):
            raise _fail(
                document,
                f"{field}.resources",
                "a replica must request some cpu, memory or device to be placed and costed",
            )
        if pricing.nodes_needed([(resources, 1)], node) >= NEVER_FITS:
            raise _fail(
                document,
                f"{field}.resources",
                f"one replica ({_shown(variant.resources)}) does not fit a node of pool "
                f"{variant.node_pool!r} ({_shown(pool_spec.node.capacity)})",
            )
        if variant.node_pool not in used:
            used.append(variant.node_pool)
        variants.append(
            {
                "name": variant.name,
                "pool": variant.node_pool,
                "resources": dataclasses.asdict(resources),
                "capacity_rps": variant.capacity_rps,
                "startup_s": float(variant.startup_seconds),
                "perf": derived_perf(variant.capacity_rps, spec.slo.threshold_seconds),
                "quality": variant.quality,
            }
        )
    pools = []
    for name in used:
        pool_spec = manifests.pools[name][0]
        pools.append(
            {
                "name": name,
                "node": dataclasses.asdict(quantity.node_resources(pool_spec.node.capacity)),
                "usd_per_hour": pool_spec.usd_per_hour,
                "min_nodes": pool_spec.min_nodes,
                "max_nodes": pool_spec.max_nodes,
                "provisioning_s": float(pool_spec.provisioning_seconds),
                **_power(pool_spec.power),
                **_standby(pool_spec.standby),
            }
        )
    percent = spec.scale_down.max_step_percent
    biggest = max(v.capacity_rps for v in spec.variants)
    typical = max(1, math.ceil(peak_rps / biggest))
    step = 0 if percent >= 100 else max(1, math.floor(typical * percent / 100))
    return scenario.Scenario.model_validate(
        {
            "name": service.name,
            "description": f"{service.key} from {document.source}",
            "slo": {
                "latency_s": spec.slo.limit_seconds,
                "percentile": spec.slo.percentile,
            },
            "pools": pools,
            "variants": variants,
            "service": {
                "min_replicas": spec.replicas.min,
                "max_replicas": spec.replicas.max,
                "scale_down_stabilization_s": float(spec.scale_down.stabilization_seconds),
                "scale_down_max_step": step,
                "idle_timeout_s": float(spec.replicas.idle_timeout_seconds),
                "quality_floor": spec.quality.floor if spec.quality else None,
                "quality_average": bool(
                    spec.quality and spec.quality.mode is v1alpha1.QualityMode.AVERAGE
                ),
                # What the operator meets: its own route, or the team's plain Service.
                "routing": "weighted" if spec.routing is not None else "spread",
            },
        }
    )


def _shown(amounts: dict[str, int | str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in amounts.items()) or "nothing"
