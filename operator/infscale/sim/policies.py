"""The policies under test: infscale's planner, and the baselines as BASELINES.md describes them.

- ``Infscale``: the same ``domain.planner.plan`` as the live operator, every 15 s, owning pools
  (``JointInfscale``: one plan for several services sharing the pools, as the operator makes it).
- ``Hpa``: Kubernetes HPA v2 on a per-replica request-rate target (15 s loop, tolerance 0.1,
  not-ready pods count 0 on scale-up, scale-up max(100 %, 4 pods) per period, 300 s scale-down
  stabilization on the highest recommendation, min 1, missing metric: no change).
- ``Keda``: KEDA Prometheus scaler on ``sum(num_requests_waiting)`` with an AverageValue threshold
  per replica, i.e. the HPA rules on that metric; ``ignoreNullValues`` true (missing reads as 0);
  minReplicaCount 1 (at 0 the queue metric disappears with the pods and never reactivates).
- ``Kpa``: Knative KPA on concurrency: 2 s tick, 60 s stable and 6 s panic windows, panic at 200 %,
  no scale-down in panic, max scale-up rate 1000, max scale-down rate 2, target = 70 % of the
  container concurrency (the replica's batch slots), scale to zero after 60 s without traffic plus
  a 30 s grace period; the activator buffers requests at zero (the queue).
- ``Static``: fixed replicas for the trace's peak minute, pre-provisioned.
- ``Schedule``: replays a precomputed plan (the oracle's).
The pod baselines run on the variant with the lowest node cost per rps and leave nodes to the
Cluster Autoscaler (``autoscaler``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence

from infscale.domain import model, planner, pricing, traffic, tuning
from infscale.sim import engine


def cheapest_variant(
    service: model.ServiceSpec, pools: Sequence[model.PoolSpec], rate_rps: float
) -> str:
    """The variant a careful operator would pick for a single Deployment serving ``rate_rps``:
    the lowest node cost for that rate, whole nodes counted (an 8-GPU node is not divisible);
    with a quality floor, one that meets it alone; on demand (a Deployment all on spot loses
    everything at once), unless only spot is there."""
    by_name = {p.name: p for p in pools}
    eligible = [v for v in service.variants if not service.below_floor(v)] or service.variants
    eligible = [v for v in eligible if not by_name[v.pool].spot] or eligible

    def cost(v: model.VariantSpec) -> tuple[float, float]:
        pool = by_name[v.pool]
        replicas = max(1, math.ceil(rate_rps / v.capacity_rps))
        nodes = pricing.nodes_needed([(v.resources, replicas)], pool.node)
        return nodes * pool.usd_per_hour, pricing.usd_per_rps_hour(v, pool, v.capacity_rps)

    return min(eligible, key=cost).name


class JointInfscale:
    """The planner under test, deciding for every service of an ``engine.Group`` at once: one
    plan over all of them and the pools, as the operator makes it."""

    def __init__(
        self,
        services: Sequence[model.ServiceSpec],
        pools: Sequence[model.PoolSpec],
        cfg: tuning.PlannerSettings | None = None,
        name: str = "infscale",
        tick_s: float = 15.0,
    ) -> None:
        self.name = name
        self.tick_s = tick_s
        self.services = list(services)
        self.pools = list(pools)
        self.cfg = cfg or tuning.PlannerSettings()
        self.state = model.PlannerState()
        self.decision_s: list[float] = []

    def decide_all(self, views: Mapping[str, engine.View]) -> dict[str, engine.Decision]:
        """One planner cycle; the nodes go with the first service's decision."""
        start = time.perf_counter()
        now_s = next(iter(views.values())).now_s
        observations = {key: view.observation for key, view in views.items()}
        plan, self.state = planner.plan(
            self.services, self.pools, observations, self.state, now_s, self.cfg
        )
        self.decision_s.append(time.perf_counter() - start)
        return {
            svc.key: engine.Decision(
                {v.name: plan.replicas[svc.key].get(v.name, 0) for v in svc.variants},
                dict(plan.nodes) if i == 0 else None,
                plan.weights.get(svc.key),
            )
            for i, svc in enumerate(self.services)
        }


class Infscale(JointInfscale):
    """The planner under test, for one service."""

    def __init__(
        self,
        service: model.ServiceSpec,
        pools: Sequence[model.PoolSpec],
        cfg: tuning.PlannerSettings | None = None,
        name: str = "infscale",
        tick_s: float = 15.0,
    ) -> None:
        super().__init__([service], pools, cfg, name, tick_s)
        self.service = service

    def decide(self, view: engine.View) -> engine.Decision:
        """One planner cycle."""
        return self.decide_all({self.service.key: view})[self.service.key]

    def seed_state(self, replicas: Mapping[str, int], nodes: Mapping[str, int]) -> None:
        """Start from the same warm allocation as the other policies, adopted as the operator
        adopts running Deployments (``planner.adopt``): the stabilization window starts now
        with the replicas that run."""
        current = {v.name: replicas.get(v.name, 0) for v in self.service.variants}
        fresh = model.PlannerState(last_nodes=dict(nodes))
        self.state = planner.adopt(fresh, self.service, current, 0.0)


@dataclasses.dataclass
class _HpaCore:
    """The HPA v2 algorithm and default behavior for one Deployment."""

    min_replicas: int
    max_replicas: int
    tolerance: float = 0.1
    down_window_s: float = 300.0
    history: list[tuple[float, int]] = dataclasses.field(default_factory=list)

    def step(
        self,
        now_s: float,
        current: int,
        ready: int,
        total: float | None,
        target: float,
        per_pod: bool,
        pending: int = 0,
    ) -> int:
        if not self.history:  # the controller seeds its window with the replicas it first sees
            self.history.append((now_s, current))
        if total is None:
            return current  # missing metric: no scale-down, nothing to scale up on, no history
        if per_pod:
            rec = self._per_pod(current, ready, pending, total, target)
        else:  # AverageValue over the Deployment's replicas (external metric)
            ratio = total / (max(current, 1) * target)
            rec = current if abs(ratio - 1.0) <= self.tolerance else math.ceil(total / target)
        rec = max(self.min_replicas, min(self.max_replicas, rec))
        self.history = [(t, r) for t, r in self.history if now_s - t < self.down_window_s]
        self.history.append((now_s, rec))
        if rec < current:
            rec = min(current, max(r for _, r in self.history))
        else:
            rec = min(rec, max(2 * current, current + 4))
        return rec

    def _per_pod(self, current: int, ready: int, pending: int, total: float, target: float) -> int:
        """The replica calculator on a per-pod metric: the ready pods' average over the target;
        pods Pending (waiting for a node) count as 0 % on scale-up and are left out on
        scale-down, pods running without a metric yet (starting) as 0 % on scale-up and 100 %
        on scale-down, and the recomputed ratio must not flip the direction."""
        ratio = (total / max(ready, 1)) / target
        missing = max(0, current - ready - pending)
        up_with_pending = pending > 0 and ratio > 1.0
        if not up_with_pending and missing == 0:
            return current if abs(ratio - 1.0) <= self.tolerance else math.ceil(ratio * ready)
        counted = ready + missing + (pending if up_with_pending else 0)
        assumed = total + (missing * target if ratio < 1.0 else 0.0)
        new_ratio = assumed / (max(counted, 1) * target)
        flipped = (ratio < 1.0 < new_ratio) or (new_ratio < 1.0 < ratio)
        if abs(new_ratio - 1.0) <= self.tolerance or flipped:
            return current
        rec = math.ceil(new_ratio * counted)
        if (new_ratio < 1.0 and rec > current) or (new_ratio > 1.0 and rec < current):
            return current
        return rec


class Hpa:
    """HPA on the per-replica request rate."""

    def __init__(
        self,
        service: model.ServiceSpec,
        variant: str,
        target_rps: float,
        down_window_s: float = _HpaCore.down_window_s,
    ) -> None:
        window = "" if down_window_s == _HpaCore.down_window_s else f",window={down_window_s:g}s"
        self.name = f"hpa(target={target_rps:.2g}rps{window})"
        self.tick_s = 15.0
        self.variant = variant
        self.target_rps = target_rps
        self.core = _HpaCore(
            max(1, service.min_replicas), service.max_replicas, down_window_s=down_window_s
        )

    def decide(self, view: engine.View) -> engine.Decision:
        """One HPA sync."""
        current = view.desired.get(self.variant, 0)
        ready = view.ready.get(self.variant, 0)
        rps = view.observation.rps
        pending = min(view.pending_pods, max(0, current - ready))  # one Deployment: all its own
        rec = self.core.step(view.now_s, current, ready, rps, self.target_rps, True, pending)
        return engine.Decision({self.variant: rec})


class Keda:
    """KEDA Prometheus trigger on queue depth (AverageValue threshold per replica). With
    ``to_zero`` (a queue outside the pods, as a batch job queue): KEDA activates 0 -> 1 when
    anything waits (polled every 30 s at zero) and goes N -> 0 after the 300 s cooldown with
    nothing waiting."""

    def __init__(
        self, service: model.ServiceSpec, variant: str, threshold: float, to_zero: bool = False
    ) -> None:
        self.name = f"keda(queue={threshold:g})"
        self.tick_s = 15.0
        self.variant = variant
        self.threshold = threshold
        self.core = _HpaCore(1, service.max_replicas)
        self.to_zero = to_zero
        self.active_s: float | None = None  # last time anything waited (to_zero)
        self.next_poll_s = 0.0

    def decide(self, view: engine.View) -> engine.Decision:
        """One HPA sync fed by the scaler; a null result reads as 0 (ignoreNullValues)."""
        waiting = float(view.queue_waiting or 0)
        current = view.desired.get(self.variant, 0)
        if self.to_zero:
            if waiting > 0:
                self.active_s = view.now_s
            if current == 0:  # the scaler polls the queue every 30 s; anything waiting: 0 -> 1
                if view.now_s < self.next_poll_s:
                    return engine.Decision({self.variant: 0})
                self.next_poll_s = view.now_s + KEDA_POLL_AT_ZERO_S
                if waiting <= 0:
                    return engine.Decision({self.variant: 0})
                self.core.history.clear()
                return engine.Decision({self.variant: 1})
            if self.active_s is None or view.now_s - self.active_s >= KEDA_COOLDOWN_S:
                self.next_poll_s = view.now_s + KEDA_POLL_AT_ZERO_S
                return engine.Decision({self.variant: 0})
        ready = view.ready.get(self.variant, 0)
        rec = self.core.step(view.now_s, current, ready, waiting, self.threshold, per_pod=False)
        return engine.Decision({self.variant: rec})


KEDA_COOLDOWN_S = 300.0  # cooldownPeriod: N -> 0 after this long with nothing waiting
KEDA_POLL_AT_ZERO_S = 30.0  # pollingInterval while at zero


KPA_UTILIZATION = 0.7  # container-concurrency-target-percentage's default


class Kpa:
    """Knative Pod Autoscaler on concurrency: its target a share (``utilization``) of a replica's
    slots, and the service's minimum as its min-scale (scale to zero only where that is 0, as
    the other policies)."""

    def __init__(
        self,
        service: model.ServiceSpec,
        variant: str,
        slots: int,
        utilization: float = KPA_UTILIZATION,
    ) -> None:
        self.tick_s = 2.0
        self.variant = variant
        self.target = max(utilization * slots, 0.01)
        self.name = f"kpa(target={self.target:.2g})"
        self.min_replicas = service.min_replicas
        self.max_replicas = service.max_replicas
        self.stable_s = 60
        self.panic_s = 6
        self.panic_until_s = -math.inf
        self.panic_floor = 0
        self.last_traffic_s = 0.0

    def decide(self, view: engine.View) -> engine.Decision:
        """One KPA tick."""
        hist = view.concurrency_history
        stable = hist[-self.stable_s :] or [0.0]
        panic = hist[-self.panic_s :] or [0.0]
        stable_avg = sum(stable) / len(stable)
        panic_avg = sum(panic) / len(panic)
        ready = view.ready.get(self.variant, 0)
        current = view.desired.get(self.variant, 0)
        want_stable = math.ceil(stable_avg / self.target)
        want_panic = math.ceil(panic_avg / self.target)
        if want_panic / max(ready, 1) >= 2.0:
            self.panic_until_s = view.now_s + self.stable_s
        if panic_avg > 0 or (view.queue_waiting or 0) > 0:
            self.last_traffic_s = view.now_s
        if view.now_s < self.panic_until_s:
            self.panic_floor = max(self.panic_floor, want_panic, current)
            want = self.panic_floor
        else:
            self.panic_floor = 0
            want = want_stable
        base = max(ready, 1)
        want = min(want, math.ceil(1000 * base))
        want = max(want, math.floor(ready / 2))
        if want == 0 and view.now_s - self.last_traffic_s < self.stable_s + 30:
            want = max(1, min(current, 1))  # keep one until the stable window plus grace passes
        if current == 0 and (view.queue_waiting or 0) > 0:
            want = max(want, 1)  # the activator pokes the autoscaler
        return engine.Decision({self.variant: max(self.min_replicas, min(self.max_replicas, want))})


class Static:
    """Fixed replicas and nodes for the whole trace."""

    def __init__(
        self, variant: str, replicas: int, nodes: Mapping[str, int], name: str = "static-peak"
    ) -> None:
        self.name = name
        self.tick_s = 3600.0
        self.replicas = {variant: replicas}
        self.nodes = dict(nodes)

    def decide(self, view: engine.View) -> engine.Decision:
        """Always the same."""
        return engine.Decision(self.replicas, self.nodes)


class Schedule:
    """Replays replicas and nodes per time slice (the oracle's solution)."""

    def __init__(
        self,
        name: str,
        slice_s: float,
        replicas: Sequence[Mapping[str, int]],
        nodes: Sequence[Mapping[str, int]],
        service: model.ServiceSpec | None = None,
    ) -> None:
        self.name = name
        self.tick_s = 5.0
        self.slice_s = slice_s
        self.replicas = list(replicas)
        self.nodes = list(nodes)
        self.service = service
        """With a routed service: the route's weights follow the slice's Ready capacity."""

    def decide(self, view: engine.View) -> engine.Decision:
        """The slice's allocation."""
        i = min(int(view.now_s // self.slice_s), len(self.replicas) - 1)
        weights = None
        if self.service is not None and self.service.routing == "weighted":
            capacity = {v.name: v.capacity_rps for v in self.service.variants}
            weights = traffic.weights(self.service, self.replicas[i], view.ready, capacity)
        return engine.Decision(dict(self.replicas[i]), dict(self.nodes[i]), weights)
