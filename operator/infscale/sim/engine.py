"""Discrete-event replay of a trace against one service, its replicas and its node pools.

The model (what is simulated, and what is not):

- Requests arrive at the trace's times and wait in one FCFS queue per service (the router / the
  Knative activator). The queue and the Ready replicas are ``servers.ReplicaQueue``, the model the
  model-server emulator shares: a replica serves up to ``slots`` requests at once (continuous
  batching); each request holds a slot for a gamma-distributed service time (mean ``service_s``,
  coefficient of variation ``cv``; ``cv = 1`` gives exponential service, so with ``slots = 1`` a
  fixed set of replicas is an M/M/c queue, checked against Erlang C in the unit tests). A
  request's latency is its queueing wait plus its service time; it meets the SLO when that is
  within the threshold, and a request still unserved after the drain period misses it.
  A request's size (when the trace gives sizes) multiplies its service time.
- A replica is a pod: Pending until a Ready node of its pool has room (most-allocated first),
  Ready ``startup_s`` after it is placed. Scale-down removes pending pods first, then starting
  ones, then ready ones on the emptiest nodes; a busy replica drains (finishes its requests).
- A node is billed from the moment it is requested until it is released (or the trace ends; the
  drain period after the trace only finishes queued requests), at the pool's ``usd_per_hour``,
  and is Ready ``provisioning_s`` after the request. Only empty nodes are
  released. Either the policy sizes the pools (infscale, the oracle, static), or the simulated
  Cluster Autoscaler does (pod baselines; see ``autoscaler``).
- Housekeeping (readiness, placement, metrics samples) runs every second; the policy runs every
  ``policy.tick_s``. Metrics are what Prometheus would give: the rate of requests completed
  over the last 30 s (a server's success counter: saturated replicas cap it below the arrival
  rate, and at zero replicas it is zero whatever arrives), the latency percentile of requests
  completed in the last 60 s (unknown when none completed, or inside a configured metrics
  outage), queue depth and in-flight requests.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from infscale.domain import model, pricing
from infscale.sim import scenario as scenario_mod
from infscale.sim import servers, traces

RATE_WINDOW_S = 30.0
LATENCY_WINDOW_S = 60.0
SAMPLE_S = 10.0


@dataclasses.dataclass
class Node:
    """One node of a pool."""

    pool: str
    requested_s: float
    ready_s: float
    free: dict[str, float]
    pods: set[int] = dataclasses.field(default_factory=set)
    released_s: float | None = None
    interrupt_s: float = math.inf  # when a spot node is reclaimed


@dataclasses.dataclass
class Replica:
    """One model-server pod."""

    ident: int
    variant: str
    resources: model.Resources
    node: Node | None = None
    ready_s: float | None = None  # None while Pending
    draining: bool = False


@dataclasses.dataclass(frozen=True)
class View:
    """What a policy sees at a decision: metrics (may be unknown) and the cluster's state."""

    now_s: float
    observation: model.Observation
    queue_waiting: int | None  # None inside a metrics outage
    in_flight: int | None
    concurrency_history: Sequence[float]  # one sample per second, waiting + running
    desired: Mapping[str, int]
    ready: Mapping[str, int]
    pending_pods: int
    nodes: Mapping[str, int]


@dataclasses.dataclass(frozen=True)
class Decision:
    """Replicas per variant and, for policies that own the pools, nodes per pool."""

    replicas: Mapping[str, int]
    nodes: Mapping[str, int] | None = None
    weights: Mapping[str, int] | None = None  # a weighted route's split (routed scenarios)


class Policy(Protocol):
    """An autoscaling policy under test."""

    name: str
    tick_s: float

    def decide(self, view: View) -> Decision:
        """The desired replicas (and nodes, or None to leave them to the Cluster Autoscaler)."""
        ...


@dataclasses.dataclass(frozen=True)
class Result:
    """Outcome of one replay."""

    policy: str
    cost_usd: float
    slo_attainment: float
    requests: int
    scale_events: int
    p95_latency_s: float
    times_s: np.ndarray
    demand_rps: np.ndarray
    capacity_rps: np.ndarray
    usd_per_hour: np.ndarray
    decision_s: float  # mean wall time per policy decision is filled by the caller
    served: Mapping[str, int] = dataclasses.field(default_factory=dict)  # requests per variant
    served_by_minute: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    """Completed requests per variant, by the minute they arrived in (one entry per minute)."""
    met_by_minute: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, int))
    """Requests that met the SLO, by the minute they arrived in (one entry per minute)."""
    energy_kwh: float | None = None
    """What the nodes drew over the billed span (``energy``'s model: idle power per live node,
    and up to full power for each request's service time on its share of a node); None when a
    pool that ran nodes has no power."""
    co2_g: float | None = None
    """That energy's emissions; None when a pool that ran nodes has no carbon intensity."""
    interruptions: int = 0
    """Spot nodes reclaimed during the replay."""


@dataclasses.dataclass
class Cluster:
    """The pools' nodes, shared by every service replayed on them (one :class:`Simulator`, or
    the several of a :class:`Group`)."""

    pools: dict[str, model.PoolSpec]
    interruptions_per_s: dict[str, float]  # per spot pool: each node's reclaim rate
    rng: np.random.Generator
    nodes: list[Node] = dataclasses.field(default_factory=list)
    pool_scale_up_s: dict[str, float] = dataclasses.field(default_factory=dict)
    interruptions: int = 0
    scale_events: int = 0  # node scale-ups and releases made by a node manager
    next_id: int = 0

    @classmethod
    def of(cls, scen: scenario_mod.Scenario, seed: int) -> Cluster:
        """The scenario's pools, empty."""
        return cls(
            {p.name: p for p in scen.domain_pools()},
            {p.name: p.interruptions_per_hour / 3600.0 for p in scen.pools if p.spot},
            np.random.default_rng(seed + 7919),
        )

    def new_id(self) -> int:
        """A pod name unique over every service on the cluster."""
        self.next_id += 1
        return self.next_id - 1

    def add_node(self, pool: str, now_s: float, ready: bool = False) -> None:
        """Request a node; it is Ready after the pool's provisioning time (a spot node is
        reclaimed after an exponential time at its pool's interruption rate)."""
        spec = self.pools[pool]
        ready_s = now_s if ready else now_s + spec.provisioning_s
        node = Node(pool, max(now_s, 0.0), ready_s, spec.node.as_dict())
        rate = self.interruptions_per_s.get(pool, 0.0)
        if rate > 0:
            node.interrupt_s = max(now_s, 0.0) + float(self.rng.exponential(1 / rate))
        self.nodes.append(node)
        self.pool_scale_up_s[pool] = now_s

    def live_nodes(self, pool: str | None = None) -> list[Node]:
        """Nodes not yet released (optionally of one pool)."""
        return [n for n in self.nodes if n.released_s is None and (pool is None or n.pool == pool)]

    def release_node(self, node: Node, now_s: float) -> None:
        """Release an empty node (billing stops)."""
        assert not node.pods
        node.released_s = max(now_s, node.requested_s)

    def reclaim(self, now_s: float) -> list[Node]:
        """The spot nodes due are gone (billing stops); their pods are the services' to drop."""
        lost = [n for n in self.live_nodes() if n.interrupt_s <= now_s]
        for node in lost:
            node.released_s = now_s
        self.interruptions += len(lost)
        return lost

    def bill(
        self, end_s: float, bill_end_s: float, busy_j: Mapping[str, float]
    ) -> tuple[float, dict[str, float]]:
        """(usd, joules per pool) of every node up to ``bill_end_s``: its price and idle power
        while requested, plus ``busy_j`` (nan: a pool of unknown power ran nodes)."""
        cost = 0.0
        joules: dict[str, float] = collections.defaultdict(float, busy_j)
        for node in self.nodes:
            stop = min(node.released_s if node.released_s is not None else end_s, bill_end_s)
            held_s = max(0.0, stop - node.requested_s)
            cost += held_s * self.pools[node.pool].usd_per_hour / 3600.0
            power = self.pools[node.pool].power
            joules[node.pool] += held_s * (math.nan if power is None else power.idle_w)
        return cost, joules

    def energy(self, joules: Mapping[str, float]) -> tuple[float | None, float | None]:
        """(kWh, gCO2) from each pool's joules (nan: a pool of unknown power ran nodes)."""
        kwh = {pool: j / 3.6e6 for pool, j in joules.items() if j}
        if any(math.isnan(k) for k in kwh.values()):
            return None, None
        intensity = {
            pool: power.g_co2_per_kwh
            for pool in kwh
            if (power := self.pools[pool].power) is not None
        }
        co2 = [k * g for pool, k in kwh.items() if (g := intensity.get(pool)) is not None]
        return sum(kwh.values()), (sum(co2) if len(co2) == len(kwh) else None)


class Nodes(Protocol):
    """What a node manager (the simulated Cluster Autoscaler) works on: a Simulator, or a Group
    of them sharing one cluster."""

    cluster: Cluster

    def pending_pods(self, pool: str | None = None) -> list[Replica]:
        """Pods not yet placed on a node."""
        ...


NodeManager = Callable[[Nodes, float], None]


class Simulator:
    """One service's replay; create, then :meth:`run` (or step it in a :class:`Group`)."""

    def __init__(
        self,
        trace: traces.Trace,
        scen: scenario_mod.Scenario,
        policy: Policy,
        node_manager: NodeManager | None = None,
        seed: int = 0,
        outages_s: Sequence[tuple[float, float]] = (),
        drain_s: float = 300.0,
        initial: Mapping[str, int] | None = None,
        initial_nodes: Mapping[str, int] | None = None,
        rate_window_s: float = RATE_WINDOW_S,
        cluster: Cluster | None = None,
        gateway: bool = False,
    ) -> None:
        self.trace = trace
        self.rate_window_s = rate_window_s
        self.gateway = gateway
        """The policy also sees a gateway's count of arrivals: its rate is the larger of the
        completions' and the arrivals' (as the operator's with ``--arrival-rate-query``)."""
        self.service = scen.domain_service()
        self.cluster = cluster or Cluster.of(scen, seed)
        self.pools = self.cluster.pools
        self.perf = scen.perf()
        self.policy = policy
        self.node_manager = node_manager
        self.outages_s = list(outages_s)
        self.drain_s = drain_s
        self.end_s = trace.duration_s + drain_s
        self.slo_s = self.service.slo_latency_s
        self.percentile = self.service.slo_percentile
        self.replicas: dict[int, Replica] = {}
        self.desired: dict[str, int] = {v.name: 0 for v in self.service.variants}
        self.latencies_s: list[float] = []  # of completed requests
        self.completions: collections.deque[tuple[float, float, str]] = collections.deque()
        self.scale_events = 0
        self.concurrency: list[float] = []
        self.arrived = 0
        self.next_arrival = 0
        self.next_tick = 0.0
        self.samples: list[tuple[float, float, float, float]] = []
        self.served: dict[str, collections.Counter[int]] = {}  # per variant: by arrival minute
        self.met: collections.Counter[int] = collections.Counter()  # within the SLO, by minute
        variant_order = sorted(self.perf, key=lambda v: self.perf[v].service_s)
        self.rq = servers.router(variant_order, seed, self.service.routing)
        self.server_perf = {
            name: servers.Perf(p.slots, p.service_s, p.cv) for name, p in self.perf.items()
        }
        # Joules a busy slot adds over its replica's idle share (None: its pool's power unknown).
        self.busy_w: dict[str, float | None] = {}
        for v in self.service.variants:
            spec, power = self.pools[v.pool], self.pools[v.pool].power
            share = pricing.replica_share(v, spec) / self.perf[v.name].slots
            self.busy_w[v.name] = None if power is None else (power.max_w - power.idle_w) * share
        self.busy_j: dict[str, float] = collections.defaultdict(float)  # per pool
        for variant, count in (initial or {}).items():
            self.desired[variant] = count
        for pool, count in (initial_nodes or {}).items():
            for _ in range(count):
                self.cluster.add_node(pool, -1e9, ready=True)
        if initial:
            self._reconcile_replicas(0.0)
            self._place(0.0, instant=True)

    # ---- nodes -------------------------------------------------------------------------
    @property
    def nodes(self) -> list[Node]:
        """Every node the cluster has requested."""
        return self.cluster.nodes

    def live_nodes(self, pool: str | None = None) -> list[Node]:
        """Nodes not yet released (optionally of one pool)."""
        return self.cluster.live_nodes(pool)

    def set_nodes(self, pool: str, count: int, now_s: float) -> None:
        """Grow at once; shrink by releasing empty nodes only (not-ready ones first)."""
        live = self.live_nodes(pool)
        if count > len(live):
            self.scale_events += 1
            for _ in range(count - len(live)):
                self.cluster.add_node(pool, now_s)
        elif count < len(live):
            empty = sorted((n for n in live if not n.pods), key=lambda n: -n.ready_s)
            released = empty[: len(live) - count]
            for node in released:
                self.cluster.release_node(node, now_s)
            if released:
                self.scale_events += 1

    def drop_lost(self, lost: Sequence[Node], now_s: float) -> None:
        """Reclaimed nodes' replicas go at once (their requests in flight finish), and the
        Deployments' controllers start new ones where there is room."""
        for node in lost:
            for ident in sorted(node.pods):
                replica = self.replicas.get(ident)
                if replica is not None:
                    self._remove_replica(replica)
        if lost:
            self._reconcile_replicas(now_s)

    def pending_pods(self, pool: str | None = None) -> list[Replica]:
        """Pods not yet placed on a node."""
        return [
            r
            for r in self.replicas.values()
            if r.node is None and (pool is None or self._pool_of(r) == pool)
        ]

    def _pool_of(self, replica: Replica) -> str:
        return self.service.variant(replica.variant).pool

    # ---- replicas ----------------------------------------------------------------------
    def _reconcile_replicas(self, now_s: float) -> None:
        for variant in self.service.variants:
            name = variant.name
            active = [r for r in self.replicas.values() if r.variant == name and not r.draining]
            want = self.desired[name]
            for _ in range(want - len(active)):
                ident = self.cluster.new_id()
                self.replicas[ident] = Replica(ident, name, variant.resources)
            if want < len(active):

                def order(r: Replica) -> tuple[int, float, int, int]:
                    placed = r.node is not None
                    ready = r.ready_s is not None and r.ready_s <= now_s
                    pods_on_node = len(r.node.pods) if r.node else 0
                    return (
                        int(placed),
                        -(r.ready_s or 0.0) if not ready else 1e18,
                        self.rq.busy(str(r.ident)),
                        pods_on_node,
                    )

                for replica in sorted(active, key=order)[: len(active) - want]:
                    replica.draining = True
                    if self.rq.busy(str(replica.ident)) == 0:
                        self._remove_replica(replica)

    def _remove_replica(self, replica: Replica) -> None:
        if replica.node is not None:
            for key, need in replica.resources.as_dict().items():
                replica.node.free[key] = replica.node.free.get(key, 0.0) + need
            replica.node.pods.discard(replica.ident)
        del self.replicas[replica.ident]

    def _place(self, now_s: float, instant: bool = False) -> None:
        ready_nodes: dict[str, list[Node]] = {}
        no_room: set[str] = set()  # placing only fills nodes: a variant that fits nowhere stays so
        for replica in sorted(self.pending_pods(), key=lambda r: r.ident):
            if replica.variant in no_room:
                continue
            variant = self.service.variant(replica.variant)
            need = variant.resources.as_dict()
            if variant.pool not in ready_nodes:
                ready_nodes[variant.pool] = [
                    n for n in self.live_nodes(variant.pool) if n.ready_s <= now_s
                ]
            candidates = [
                n
                for n in ready_nodes[variant.pool]
                if all(n.free.get(k, 0.0) + 1e-9 >= v for k, v in need.items())
            ]
            if not candidates:
                no_room.add(replica.variant)
                continue
            node = min(candidates, key=lambda n: sum(n.free.values()))  # most allocated
            for key, amount in need.items():
                node.free[key] = node.free.get(key, 0.0) - amount
            node.pods.add(replica.ident)
            replica.node = node
            replica.ready_s = now_s if instant else now_s + variant.startup_s

    def _ready(self, now_s: float) -> list[Replica]:
        return [
            r
            for r in self.replicas.values()
            if r.ready_s is not None and r.ready_s <= now_s and not r.draining
        ]

    # ---- requests ----------------------------------------------------------------------
    def _record(self, done: list[servers.Completion]) -> None:
        for item in done:
            latency = item.done_s - item.arrival_s
            self.latencies_s.append(latency)
            self.completions.append((item.done_s, latency, item.variant))
            minute = int(item.arrival_s // 60.0)
            self.served.setdefault(item.variant, collections.Counter())[minute] += 1
            if latency <= self.slo_s:
                self.met[minute] += 1
            busy_w = self.busy_w.get(item.variant)
            if busy_w is not None and item.start_s < self.trace.duration_s:
                busy_s = min(item.done_s, self.trace.duration_s) - item.start_s
                self.busy_j[self.service.variant(item.variant).pool] += busy_w * busy_s

    def _sync(self, now_s: float) -> None:
        """Advance the queue to ``now_s``, hand it the Ready replicas, free drained pods."""
        self._record(self.rq.advance(now_s))
        self.rq.set_replicas(
            {str(r.ident): (r.variant, self.server_perf[r.variant]) for r in self._ready(now_s)}
        )
        for replica in [r for r in self.replicas.values() if r.draining]:
            if self.rq.busy(str(replica.ident)) == 0:
                self._remove_replica(replica)

    # ---- metrics -----------------------------------------------------------------------
    def _in_outage(self, now_s: float) -> bool:
        return any(a <= now_s < b for a, b in self.outages_s)

    def _view(self, now_s: float) -> View:
        span = min(self.rate_window_s, max(now_s, 1.0))
        # Kept as long as the longer window needs; latency reads only its own window.
        keep_s = max(LATENCY_WINDOW_S, self.rate_window_s)
        while self.completions and self.completions[0][0] < now_s - keep_s:
            self.completions.popleft()
        in_latency = [c for c in self.completions if c[0] >= now_s - LATENCY_WINDOW_S]
        ready = collections.Counter(r.variant for r in self._ready(now_s))
        outage = self._in_outage(now_s)
        recent = [lat for _, lat, _ in in_latency]
        latency = float(np.percentile(recent, self.percentile)) if recent and not outage else None
        met = sum(lat <= self.slo_s for lat in recent) / len(recent) if recent else None
        per_variant: dict[str, model.VariantObservation] = {}
        served = 0  # completions over the rate window, all variants: the success counter's rate
        for variant in self.service.variants:
            done = [(t, lat) for t, lat, v in in_latency if v == variant.name]
            recent_done = [
                lat
                for t, lat, v in self.completions
                if v == variant.name and t >= now_s - self.rate_window_s
            ]
            served += len(recent_done)
            per_variant[variant.name] = model.VariantObservation(
                ready_replicas=ready[variant.name],
                desired_replicas=self.desired[variant.name],
                rps=None if outage else len(recent_done) / span,
                latency_s=(
                    None
                    if outage or not done
                    else float(np.percentile([lat for _, lat in done], self.percentile))
                ),
            )
        rps = served / span
        if self.gateway:
            arrivals = self.trace.arrivals_s
            arrived = np.searchsorted(arrivals, now_s) - np.searchsorted(arrivals, now_s - span)
            rps = max(rps, float(arrived) / span)
        obs = model.Observation(
            rps=None if outage or now_s < 1.0 else rps,
            queued=None if outage else float(self.rq.waiting),
            rate_window_s=self.rate_window_s,
            latency_s=latency,
            slo_attainment=None if outage else met,
            variants=per_variant,
        )
        in_flight = self.arrived - len(self.latencies_s)
        return View(
            now_s=now_s,
            observation=obs,
            queue_waiting=None if outage else self.rq.waiting,
            in_flight=None if outage else in_flight,
            concurrency_history=self.concurrency,
            desired=dict(self.desired),
            ready=dict(ready),
            pending_pods=len(self.pending_pods()),
            nodes={p: len(self.live_nodes(p)) for p in self.pools},
        )

    def capacity_rps(self, now_s: float) -> float:
        """Spec capacity of the Ready replicas (for plots)."""
        return sum(self.service.variant(r.variant).capacity_rps for r in self._ready(now_s))

    def usd_per_hour(self) -> float:
        """What the live nodes cost right now."""
        return sum(self.pools[n.pool].usd_per_hour for n in self.live_nodes())

    # ---- main loop ---------------------------------------------------------------------
    def arrive(self, now_s: float) -> None:
        """The trace's requests up to ``now_s`` join the queue."""
        arrivals = self.trace.arrivals_s
        while self.next_arrival < arrivals.size and arrivals[self.next_arrival] < now_s:
            arrival_s = float(arrivals[self.next_arrival])
            self._record(self.rq.arrive(arrival_s, self.trace.size(self.next_arrival)))
            self.arrived += 1
            self.next_arrival += 1

    def housekeep(self, now_s: float) -> None:
        """Serve, place pending pods, count the requests in the system."""
        self._sync(now_s)
        self._place(now_s)
        self.concurrency.append(float(self.arrived - len(self.latencies_s)))

    def due(self, now_s: float) -> bool:
        """Whether the policy decides at ``now_s`` (every tick within the trace)."""
        return now_s >= self.next_tick and now_s <= self.trace.duration_s

    def view(self, now_s: float) -> View:
        """What the policy sees now."""
        return self._view(now_s)

    def apply(self, decision: Decision, now_s: float) -> None:
        """Scale to a decision (replicas, nodes, a route's weights); the next tick follows."""
        changed = False
        for variant, count in decision.replicas.items():
            if self.desired.get(variant, 0) != count:
                changed = True
            self.desired[variant] = max(0, int(count))
        if changed:
            self.scale_events += 1
        self._reconcile_replicas(now_s)
        if decision.nodes is not None:
            for pool, count in decision.nodes.items():
                self.set_nodes(pool, int(count), now_s)
        if decision.weights is not None and isinstance(self.rq, servers.WeightedQueues):
            self.rq.weights = {v: float(w) for v, w in decision.weights.items()}
        self._place(now_s)
        self._sync(now_s)
        self.next_tick += self.policy.tick_s

    def sample(self, second: int, now_s: float) -> None:
        """Every ``SAMPLE_S``: the arrival rate of the last minute, Ready capacity, node cost."""
        if second % int(SAMPLE_S) == 0:
            arrivals = self.trace.arrivals_s
            lo = int(np.searchsorted(arrivals, now_s - 60.0))
            hi = int(np.searchsorted(arrivals, now_s))
            self.samples.append(
                (now_s, (hi - lo) / 60.0, self.capacity_rps(now_s), self.usd_per_hour())
            )

    def run(self) -> Result:
        """Replay the whole trace plus a drain period; return cost and SLO attainment."""
        for second in range(math.ceil(self.end_s) + 1):
            now_s = float(second)
            self.arrive(now_s)
            if self.cluster.interruptions_per_s:
                self.drop_lost(self.cluster.reclaim(now_s), now_s)
            self.housekeep(now_s)
            if self.due(now_s):
                self.apply(self.policy.decide(self._view(now_s)), now_s)
            if self.node_manager is not None:
                self.node_manager(self, now_s)
            self.sample(second, now_s)
        return self.result(self.end_s)

    def result(self, end_s: float, busy_j: Mapping[str, float] | None = None) -> Result:
        """The replay's outcome; cost and energy are the whole cluster's (the drain period
        serves late requests, unbilled), with ``busy_j`` for the busy slots of every service
        on it (this one's by default)."""
        arrivals = self.trace.arrivals_s
        cost, joules = self.cluster.bill(end_s, self.trace.duration_s, busy_j or self.busy_j)
        energy_kwh, co2_g = self.cluster.energy(joules)
        # Requests still unserved after the drain period count as SLO misses.
        finite = np.asarray(self.latencies_s)
        met = int(np.sum(finite <= self.slo_s))
        ok = met / arrivals.size if arrivals.size else 1.0
        arr = np.asarray(self.samples)
        minutes = math.ceil(self.trace.duration_s / 60.0)
        return Result(
            policy=self.policy.name,
            cost_usd=cost,
            slo_attainment=ok,
            requests=int(arrivals.size),
            scale_events=self.scale_events + self.cluster.scale_events,
            p95_latency_s=float(np.percentile(finite, 95)) if finite.size else math.inf,
            times_s=arr[:, 0],
            demand_rps=arr[:, 1],
            capacity_rps=arr[:, 2],
            usd_per_hour=arr[:, 3],
            decision_s=0.0,
            served={v: sum(by_minute.values()) for v, by_minute in self.served.items()},
            served_by_minute={
                v: np.bincount(
                    list(by_minute), weights=list(by_minute.values()), minlength=minutes
                )[:minutes].astype(int)
                for v, by_minute in self.served.items()
            },
            met_by_minute=np.bincount(
                list(self.met), weights=list(self.met.values()), minlength=minutes
            )[:minutes].astype(int),
            energy_kwh=energy_kwh,
            co2_g=co2_g,
            interruptions=self.cluster.interruptions,
        )


class GroupPolicy(Protocol):
    """A policy deciding for every service of a :class:`Group` at once (infscale's planner
    over all of them and the pools)."""

    name: str
    tick_s: float

    def decide_all(self, views: Mapping[str, View]) -> dict[str, Decision]:
        """Per service key: its replicas; nodes in one of them."""
        ...


@dataclasses.dataclass
class _JointTick:
    """The lanes' own policy under a GroupPolicy: its name and tick (it never decides alone)."""

    name: str
    tick_s: float

    def decide(self, view: View) -> Decision:
        raise AssertionError("a Group's joint policy decides for every lane")


@dataclasses.dataclass(frozen=True)
class GroupResult:
    """Outcome of a Group's replay: the cluster's cost and energy, each service's Result (its
    own attainment; cost and energy there are the cluster's too)."""

    policy: str
    cost_usd: float
    energy_kwh: float | None
    co2_g: float | None
    interruptions: int
    scale_events: int
    services: Mapping[str, Result]

    @property
    def requests(self) -> int:
        """Every service's requests."""
        return sum(r.requests for r in self.services.values())


class Group:
    """Several services replayed side by side on one cluster: each a :class:`Simulator` (a
    lane) with its own trace, queue and replicas; the nodes, their interruptions and their
    bill are shared. Either one GroupPolicy decides for all (``joint``), or each lane's own
    policy for it, with a node manager (the Cluster Autoscaler) for the pools."""

    def __init__(
        self,
        cluster: Cluster,
        lanes: Sequence[Simulator],
        joint: GroupPolicy | None = None,
        node_manager: NodeManager | None = None,
    ) -> None:
        assert all(lane.cluster is cluster for lane in lanes)
        self.cluster = cluster
        self.lanes = list(lanes)
        self.joint = joint
        self.node_manager = node_manager

    @staticmethod
    def joint_tick(policy: GroupPolicy) -> Policy:
        """The policy to give each lane of a Group that ``policy`` decides for."""
        return _JointTick(policy.name, policy.tick_s)

    def pending_pods(self, pool: str | None = None) -> list[Replica]:
        """Every service's pods not yet placed on a node."""
        return [r for lane in self.lanes for r in lane.pending_pods(pool)]

    def run(self) -> GroupResult:
        """Replay every lane to the end of the longest trace plus its drain period."""
        end_s = max(lane.end_s for lane in self.lanes)
        for second in range(math.ceil(end_s) + 1):
            now_s = float(second)
            for lane in self.lanes:
                lane.arrive(now_s)
            if self.cluster.interruptions_per_s:
                lost = self.cluster.reclaim(now_s)
                for lane in self.lanes:
                    lane.drop_lost(lost, now_s)
            for lane in self.lanes:
                lane.housekeep(now_s)
            due = [lane for lane in self.lanes if lane.due(now_s)]
            if self.joint is not None and due:
                views = {lane.service.key: lane.view(now_s) for lane in self.lanes}
                decisions = self.joint.decide_all(views)
                for lane in due:
                    lane.apply(decisions[lane.service.key], now_s)
            elif self.joint is None:
                for lane in due:
                    lane.apply(lane.policy.decide(lane.view(now_s)), now_s)
            if self.node_manager is not None:
                self.node_manager(self, now_s)
            for lane in self.lanes:
                lane.sample(second, now_s)
        busy_j: dict[str, float] = collections.defaultdict(float)
        for lane in self.lanes:
            for pool, joules in lane.busy_j.items():
                busy_j[pool] += joules
        results = {lane.service.key: lane.result(end_s, busy_j) for lane in self.lanes}
        first = next(iter(results.values()))
        return GroupResult(
            policy=first.policy,
            cost_usd=first.cost_usd,
            energy_kwh=first.energy_kwh,
            co2_g=first.co2_g,
            interruptions=self.cluster.interruptions,
            scale_events=sum(lane.scale_events for lane in self.lanes) + self.cluster.scale_events,
            services=results,
        )
