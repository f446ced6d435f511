"""One decision for the whole cluster: metrics in one batched round, then one planner call.

The planner's memory (forecasts, stabilization windows, learned capacities) is kept between
cycles. What it has learned of each service (forecast, burst memory, capacities, SLO misses) is
also saved in the service's ``status.plannerMemory`` every few minutes, and a restarted
operator (or a new leader) takes it from there. The rest it rebuilds conservatively from the
cluster: the replicas the Deployments run now, and a stabilization window that starts now, so a
restart can never cause a scale-down that the window would not have allowed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import math
import statistics
import zlib
from collections.abc import Mapping, Sequence
from typing import Protocol

from infscale.api import v1alpha1
from infscale.controller import convert
from infscale.controller.decisions import OwnedDeployment, PoolPlan, ServiceDecision
from infscale.domain import model, planner, pricing
from infscale.domain import tuning as planner_settings
from infscale.ports import metrics

LOG = logging.getLogger(__name__)
Key = tuple[str, str]
MEMORY_FORMAT = "v1:"
MEMORY_MAX_BYTES = 1 << 20  # decompressed; a service's memory is a few KiB


def encode_memory(state: model.PlannerState, key: str, now_s: float) -> str:
    """One service's learned state as ``status.plannerMemory``: versioned, compressed, base64."""
    payload = json.dumps(
        {"savedAt": now_s, "state": model.state_to_json(model.learned(state, key))}
    )
    return MEMORY_FORMAT + base64.b64encode(zlib.compress(payload.encode(), 9)).decode()


def decode_memory(text: str) -> tuple[model.PlannerState, float]:
    """The state and save time in ``status.plannerMemory``; ValueError if it is not readable."""
    if not text.startswith(MEMORY_FORMAT):
        raise ValueError(f"unknown format (expected a {MEMORY_FORMAT!r} prefix)")
    try:
        inflate = zlib.decompressobj()
        raw = inflate.decompress(base64.b64decode(text[len(MEMORY_FORMAT) :]), MEMORY_MAX_BYTES)
        if inflate.unconsumed_tail:
            raise ValueError(f"larger than {MEMORY_MAX_BYTES} bytes")
        payload = json.loads(raw)
        return model.state_from_json(payload["state"]), float(payload["savedAt"])
    except (binascii.Error, zlib.error, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{type(error).__name__}: {error}") from error


MEMORY_MAX_AGE = 12
"""A memory unchanged but for noise is still saved after this many periods (1 h by default)."""


MEMORY_PARTS = ("held peak", "capacities", "headroom", "too slow", "ceilings", "bursts")
"""What each part of :func:`memory_digest` is, in the log of a save."""


def memory_digest(
    state: model.PlannerState, key: str, cfg: planner_settings.PlannerSettings
) -> tuple[object, ...]:
    """What a restart would miss of a service's memory, coarsely: its held peak (in replicas of
    its smallest learned capacity, else in steps of 2x) and capacities (25 %), its SLO headroom,
    its confirmed too-slow variants and its ceiling variants, and which minutes of the hour held
    a burst. Equal digests: nothing worth a write was learned. The rate level is left out: the
    forecast relearns it within a minute, and a quiet service's level moves by a quarter from
    one minute to the next; so does its peak, which a restart misses only when it needs another
    replica. So is a too-slow span not yet confirmed: a quiet service's p95 (a dozen requests a
    window) crosses the SLO now and then, and a restart costs such a span only its
    confirmation time again (`hack/bench-scale.sh`: 47 of 153 saves in three steady minutes
    at 1,000 services were such spans starting or ending)."""
    forecast = state.forecasts.get(key, model.ForecastState())
    rates = [r for _, r in forecast.minutes]
    usual = statistics.median(rates) if rates else 0.0
    bursts = frozenset(
        int(i % max(1.0, cfg.season_s / cfg.season_bucket_s)) if cfg.season_bucket_s > 0 else i
        for i, r in forecast.minutes
        if r >= max(cfg.season_min_ratio * usual, cfg.season_min_burst_rps)
    )
    capacities = state.capacity_rps.get(key, {})
    peak = max((r for _, r in forecast.peaks), default=0.0)
    smallest = min((c for c in capacities.values() if c > 0), default=0.0)
    spans = state.too_slow.get(key, {}).items()
    confirmed = tuple(sorted(v for v, (_, s, e) in spans if e - s >= cfg.too_slow_confirm_s))
    return (
        math.ceil(peak / smallest - 1e-9) if smallest > 0 else _coarse(peak, 2.0),
        tuple(sorted((v, _coarse(c)) for v, c in capacities.items())),
        round(state.headroom.get(key, 1.0), 1),
        confirmed,
        tuple(sorted(state.capacity_ceiling.get(key, {}))),
        bursts,
    )


def _coarse(value: float, step: float = 1.25) -> int:
    """``value`` in steps of ``step`` (25 % by default; 0 for anything below 0.01)."""
    return 0 if value < 0.01 else 1 + round(math.log(value / 0.01) / math.log(step))


class PlannedService(Protocol):
    """What the planner reads of a service (`service_view.ServiceView`, or a `ServiceInput`)."""

    @property
    def key(self) -> Key: ...
    @property
    def spec(self) -> v1alpha1.InferenceServiceSpec: ...
    @property
    def held(self) -> bool: ...
    @property
    def memory(self) -> str | None: ...


@dataclasses.dataclass(frozen=True)
class ServiceInput:
    key: Key
    spec: v1alpha1.InferenceServiceSpec
    held: bool
    """Recommend mode or paused: the plan is reported, the current replicas stay."""
    memory: str | None = None
    """``status.plannerMemory`` as last saved."""


ASLEEP_WITHOUT_ARRIVALS = (
    "at zero replicas no server reports requests, so only a burst due on the schedule wakes "
    "this service: set spec.metrics.arrivalRateQuery (or the operator's arrivalRateQuery) to a "
    "gateway's request rate to wake it when requests arrive"
)
IGNORED_ARRIVAL_QUERY = (
    "spec.metrics.arrivalRateQuery ignored: this operator runs no per-service PromQL "
    "(it runs with --forbid-service-arrival-queries)"
)


class Decider:
    """Keeps the planner state and runs one decision per cycle."""

    def __init__(
        self,
        source: metrics.MetricsSource | None,
        cfg: planner_settings.PlannerSettings | None = None,
        save_memory_s: float = 300.0,
        arrival_template: str | None = None,
        service_arrival_queries: bool = True,
        rate_window_s: float = 0.0,
    ) -> None:
        self.source = source
        self.rate_window_s = rate_window_s  # the source's rate() range: see Observation
        self.arrival_template = arrival_template  # OperatorSettings.arrival_rate_query
        self.service_arrival_queries = service_arrival_queries
        self.cfg = cfg or planner_settings.PlannerSettings()
        self.state = model.PlannerState()
        self.save_memory_s = save_memory_s  # 0: never saved
        self._saved_s: dict[str, float] = {}
        self._saved_digest: dict[str, tuple[object, ...]] = {}
        self._checked_s: dict[str, float] = {}  # the last cycle that saw each service

    def decide(
        self,
        services: Sequence[PlannedService],
        pools: Mapping[str, v1alpha1.InferenceNodePoolSpec],
        owned: Mapping[Key, Sequence[OwnedDeployment]],
        now_s: float,
    ) -> tuple[dict[Key, ServiceDecision], dict[str, PoolPlan]]:
        """Decisions per service and what each pool is asked for (from the same plan)."""
        planned = [s for s in services if s.spec.replicas.fixed is None]
        arrivals = {
            s.key: convert.arrival_query(
                *s.key, s.spec, self.arrival_template, self.service_arrival_queries
            )
            for s in planned
        }
        queries = [convert.service_query(*s.key, s.spec, arrivals[s.key]) for s in planned]
        observed: dict[Key, metrics.ServiceMetrics] = {}
        if self.source is not None and queries:
            observed = self.source.observe(queries)
        current = {s.key: {d.variant: d.replicas for d in owned.get(s.key, ())} for s in services}
        ready = {
            s.key: {d.variant: d.ready_replicas for d in owned.get(s.key, ())} for s in services
        }
        asleep = {s.key: convert.is_asleep(s.spec, ready[s.key], current[s.key]) for s in planned}
        specs, observations = [], {}
        for service in planned:
            now_replicas = current[service.key]
            total = sum(now_replicas.values())
            spec = convert.service_spec(*service.key, service.spec, total, not service.held)
            specs.append(spec)
            seen = observed.get(service.key) if self.source else None
            observations[spec.key] = dataclasses.replace(
                convert.observation(
                    seen,
                    [v.name for v in service.spec.variants],
                    ready[service.key],
                    now_replicas,
                    arrivals_expected=arrivals[service.key] is not None,
                    asleep=asleep[service.key],
                ),
                missing=missing_pod_rates(seen, ready[service.key]),
                rate_window_s=self.rate_window_s,
            )
            self._seed(spec, now_replicas, now_s, service.memory)
        hour = convert.hour_utc(now_s)  # a pool's power schedule: the figures now
        pool_specs = [convert.pool_spec(name, spec, hour) for name, spec in pools.items()]
        plan, new_state = planner.plan(specs, pool_specs, observations, self.state, now_s, self.cfg)
        decisions: dict[Key, ServiceDecision] = {}
        last_replicas = dict(new_state.last_replicas)
        for service in planned:
            key_text = f"{service.key[0]}/{service.key[1]}"
            recommended = dict(plan.replicas.get(key_text, {}))
            applied = current[service.key] if service.held else recommended
            if service.held:
                last_replicas[key_text] = dict(current[service.key])
            reasons = self._reasons(
                service,
                plan.reasons.get(key_text, ())[-5:],  # what drove demand, then the moves
                observed.get(service.key),
                awake=bool(sum(applied.values()) or arrivals[service.key]),
            )
            memory, memory_changes = self._memory_due(new_state, key_text, now_s) or (None, ())
            decisions[service.key] = ServiceDecision(
                replicas={v.name: applied.get(v.name, 0) for v in service.spec.variants},
                reason="; ".join(reasons)[:900],
                recommended=recommended,
                metrics=observed.get(service.key),
                memory=memory,
                memory_changes=memory_changes,
                quality=plan.quality.get(key_text),
                weights=plan.weights.get(key_text),
                floor_usd_per_hour=plan.floor_usd_per_hour.get(key_text),
                asleep=asleep[service.key] and arrivals[service.key] is None,
                capacity_rps={
                    v.name: new_state.capacity_rps.get(key_text, {}).get(v.name, v.capacity_rps)
                    for v in service.spec.variants
                },
            )
        self.state = dataclasses.replace(new_state, last_replicas=last_replicas)
        planned_keys = {s.key for s in specs}
        self._saved_s = {k: t for k, t in self._saved_s.items() if k in planned_keys}
        self._saved_digest = {k: d for k, d in self._saved_digest.items() if k in planned_keys}
        self._checked_s = {k: t for k, t in self._checked_s.items() if k in planned_keys}
        # Nodes for the replicas decided now: pools grow ahead of the pods that will need them,
        # and shrink under the pool controller's own safety rules (cool-down, drain).
        # Warm replicas stand on standby nodes: the nodes beyond the demand's are the standby.
        held = {s.key for s in planned if s.held}
        by_service: dict[str, dict[str, int]] = {}
        for k, d in decisions.items():
            key = f"{k[0]}/{k[1]}"
            warm = {} if k in held else plan.warm.get(key, {})
            by_service[key] = {v: n - warm.get(v, 0) for v, n in d.replicas.items()}
        pool_map = {p.name: p for p in pool_specs}
        needed = pricing.pool_nodes_needed(by_service, specs, pool_map)
        pool_plans = {}
        for name, nodes in needed.items():
            spare, why = plan.standby.get(name, (0, ""))
            pool_plans[name] = PoolPlan(nodes + spare, spare, why)
        return decisions, pool_plans

    def _reasons(
        self,
        service: PlannedService,
        reasons: Sequence[str],
        observed: metrics.ServiceMetrics | None,
        awake: bool,
    ) -> tuple[str, ...]:
        """The planner's reasons, after what limits them: no source, unknown metrics, asleep
        without an arrival rate, an ignored arrival query."""
        reasons = tuple(reasons)
        if self.source is None:
            reasons = ("no metrics source configured (--prometheus-url)", *reasons)
        elif observed is not None and observed.unknown:
            reasons = (f"metrics: {observed.unknown[0]}", *reasons)
        if not awake:
            reasons = (ASLEEP_WITHOUT_ARRIVALS, *reasons)
        if service.spec.metrics.arrival_rate_query and not self.service_arrival_queries:
            reasons = (IGNORED_ARRIVAL_QUERY, *reasons)
        return reasons

    def _memory_due(
        self, state: model.PlannerState, key_text: str, now_s: float
    ) -> tuple[str, tuple[str, ...]] | None:
        """The service's memory to save in status, when a save is due: once per
        ``save_memory_s`` if what it has learned moved (:func:`memory_digest`), and at least every
        ``MEMORY_MAX_AGE`` periods. A steady service's memory changes only in noise, and
        saving it anyway would cost each service a write every period (50 per 15 s cycle at
        1,000 services) for nothing a restart would miss.

        A save comes only in the cycle that passes the service's own phase of the period (from
        its name): what a whole fleet learns at once (its first minutes, a restart, a shared
        change of traffic) is saved over one period, a share of the fleet each cycle, never all
        in one cycle. Returns the memory and what moved since the last save."""
        if self.save_memory_s <= 0:
            return None
        period = self.save_memory_s
        phase_s = zlib.crc32(key_text.encode()) / 2**32 * period
        checked_s = self._checked_s.get(key_text)
        self._checked_s[key_text] = now_s
        if checked_s is None or (now_s - phase_s) // period == (checked_s - phase_s) // period:
            return None
        saved_s = self._saved_s.setdefault(key_text, checked_s)
        digest = memory_digest(state, key_text, self.cfg)
        stale = now_s >= saved_s + MEMORY_MAX_AGE * period
        before = self._saved_digest.get(key_text)
        if digest == before and not stale:
            return None
        self._saved_s[key_text] = now_s
        self._saved_digest[key_text] = digest
        if before is None:
            moved: tuple[str, ...] = ("first",)
        else:
            moved = tuple(p for p, a, b in zip(MEMORY_PARTS, before, digest, strict=True) if a != b)
        return encode_memory(state, key_text, now_s), moved or ("age",)

    def _seed(
        self,
        spec: model.ServiceSpec,
        replicas: Mapping[str, int],
        now_s: float,
        memory: str | None,
    ) -> None:
        """First sight of a service (or a restart): start from what runs, with a fresh window,
        and with what the planner had learned of it when it last saved its memory."""
        if spec.key in self.state.last_replicas:
            return
        if memory:
            try:
                learned, saved_s = decode_memory(memory)
            except ValueError as error:
                LOG.warning(
                    "%s: status.plannerMemory unreadable (%s): starting fresh", spec.key, error
                )
            else:
                self.state = model.with_learned(self.state, spec.key, learned)
                LOG.info(
                    "%s: planner memory restored (saved %.0f s ago)", spec.key, now_s - saved_s
                )
        self.state = planner.adopt(self.state, spec, replicas, now_s)


def missing_pod_rates(
    observed: metrics.ServiceMetrics | None, ready: Mapping[str, int]
) -> tuple[str, ...]:
    """Per-pod gaps behind a known service rate: the planner then scales up only.

    A pod whose rate is NaN/Inf, and Ready pods of a variant without a fresh series (stale or
    never scraped): the service's rate then undercounts, so it must not drive a scale-down.
    The same for a pod without a queue reading while others have one: the backlog undercounts.
    Checked only where the source reports pods at all; a wholly unknown rate is the planner's
    plain "unknown" case.
    """
    if observed is None or not observed.available:
        return ()
    gaps = [
        f"request rate of pod {pod}"
        for pod, sig in sorted(observed.pods.items())
        if sig.rps is None
    ]
    if any(sig.queue is not None for sig in observed.pods.values()):
        gaps += [
            f"queue of pod {p}" for p, sig in sorted(observed.pods.items()) if sig.queue is None
        ]
    if observed.pod_variant:
        reporting: dict[str, int] = {}
        for pod, variant in observed.pod_variant.items():
            sig = observed.pods.get(pod)
            if sig is not None and sig.rps is not None:
                reporting[variant] = reporting.get(variant, 0) + 1
        for variant, count in sorted(ready.items()):
            if count > reporting.get(variant, 0):
                gaps.append(
                    f"request rate of {count - reporting.get(variant, 0)} of {count} Ready "
                    f"{variant} pod(s) (stale or missing series)"
                )
    return tuple(gaps)
