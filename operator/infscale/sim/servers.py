"""The replica/queue model shared by the model-server emulator: requests, batches, replicas.

One FCFS queue per service (the router) feeds replicas; a replica serves up to ``slots``
requests at once (continuous batching) and each request holds a slot for a gamma-distributed
service time (mean ``service_s``, coefficient of variation ``cv``) times the request's own size
(1 unless the trace gives sizes: long prompts and outputs take longer). Free slots are filled in the
order of the service's variants, least busy replica first. A request's latency is its wait in the
queue plus its service time. The trace simulator (``infscale.sim.engine``) models replicas the
same way. Behind a weighted route (:class:`WeightedQueues`) each variant has a queue of its own
and the route's weights split the requests between them.
"""

from __future__ import annotations

import collections
import dataclasses
import heapq

import numpy as np

from infscale.domain import model


@dataclasses.dataclass(frozen=True)
class Perf:
    """How one replica of a variant serves: ``slots`` at once, each taking ``service_s``."""

    slots: int = 1
    service_s: float = 0.2
    cv: float = 0.5


BATCH_REFERENCE_S = 2.0
"""A batch service has no latency threshold to derive a replica's service time from: its
replicas are emulated as those of an interactive service with this threshold."""


@dataclasses.dataclass(frozen=True)
class Completion:
    """One finished request."""

    arrival_s: float
    start_s: float
    done_s: float
    replica: str
    variant: str

    @property
    def latency_s(self) -> float:
        return self.done_s - self.arrival_s

    @property
    def wait_s(self) -> float:
        return self.start_s - self.arrival_s


@dataclasses.dataclass
class _Replica:
    name: str
    variant: str
    perf: Perf
    busy: int = 0
    removed: bool = False


class ReplicaQueue:
    """An event-driven queue in front of a changing set of replicas."""

    def __init__(self, variant_order: list[str], seed: int = 0) -> None:
        self.variant_order = variant_order
        self.rng = np.random.default_rng(seed)
        self.replicas: dict[str, _Replica] = {}
        self.queue: collections.deque[tuple[float, float]] = collections.deque()
        self._events: list[tuple[float, int, str, float, float]] = []
        self._seq = 0
        self.now_s = 0.0

    @property
    def waiting(self) -> int:
        return len(self.queue)

    def busy(self, replica: str) -> int:
        found = self.replicas.get(replica)
        return found.busy if found else 0

    def set_replicas(self, wanted: dict[str, tuple[str, Perf]]) -> None:
        """Make the ready replicas exactly ``wanted`` (name -> (variant, perf)).

        A removed replica finishes the requests it holds; it takes no new ones.
        """
        for name, replica in list(self.replicas.items()):
            if name not in wanted:
                replica.removed = True
                if replica.busy == 0:
                    del self.replicas[name]
        for name, (variant, perf) in wanted.items():
            current = self.replicas.get(name)
            if current is None or current.removed:
                busy = current.busy if current else 0
                self.replicas[name] = _Replica(name, variant, perf, busy=busy)
        self._dispatch(self.now_s)

    def arrive(self, at_s: float, size: float = 1.0) -> list[Completion]:
        """A request arrives at ``at_s``; returns the requests finished before it. ``size``
        multiplies its service time (1: a typical request)."""
        done = self.advance(at_s)
        self.queue.append((at_s, size))
        self._dispatch(at_s)
        return done

    def enqueue(self, arrival_s: float, size: float = 1.0) -> None:
        """A request that arrived at ``arrival_s`` and was held elsewhere joins the queue now."""
        self.queue.append((arrival_s, size))
        self._dispatch(self.now_s)

    def advance(self, to_s: float) -> list[Completion]:
        """Process every completion up to ``to_s``; returns them in time order."""
        finished: list[Completion] = []
        while self._events and self._events[0][0] <= to_s:
            done_s, _, name, arrival_s, start_s = heapq.heappop(self._events)
            replica = self.replicas[name]
            replica.busy -= 1
            finished.append(Completion(arrival_s, start_s, done_s, name, replica.variant))
            if replica.removed and replica.busy == 0:
                del self.replicas[name]
            self._dispatch(done_s)
        self.now_s = max(self.now_s, to_s)
        return finished

    def _service_time(self, perf: Perf, size: float) -> float:
        shape = 1.0 / max(perf.cv, 1e-3) ** 2
        return float(self.rng.gamma(shape, perf.service_s / shape)) * size

    def _dispatch(self, now_s: float) -> None:
        if not self.queue:
            return
        ready = [r for r in self.replicas.values() if not r.removed and r.busy < r.perf.slots]
        if not ready:
            return  # every slot taken: the request waits (the common case in a backlog)
        order = {v: i for i, v in enumerate(self.variant_order)}

        def rank(r: _Replica) -> tuple[int, int]:
            return (order.get(r.variant, len(order)), r.busy)

        # One waiting request goes to the first replica in that order (min is stable like sort).
        ready = [min(ready, key=rank)] if len(self.queue) == 1 else sorted(ready, key=rank)
        for replica in ready:
            while replica.busy < replica.perf.slots and self.queue:
                arrival_s, size = self.queue.popleft()
                replica.busy += 1
                self._seq += 1
                done_s = now_s + self._service_time(replica.perf, size)
                heapq.heappush(self._events, (done_s, self._seq, replica.name, arrival_s, now_s))
            if not self.queue:
                return


class WeightedQueues:
    """A weighted route in front of the variants (a Gateway API HTTPRoute): each request goes to
    one variant, drawn in proportion to ``weights``, and waits in that variant's own queue (one
    :class:`ReplicaQueue` each); a variant drawn with no Ready replica holds the request until
    one is. Without positive weights, requests split by the variants' Ready slots per second.
    ``by_pods``: a plain Service instead, which gives every Ready pod the same share, fast or
    slow (a variant's share is its share of the Ready pods). With nothing to draw from (no
    weights, no Ready replica) the gateway holds a request until a replica is Ready, and routes
    it then. Same interface as :class:`ReplicaQueue`."""

    def __init__(self, variant_order: list[str], seed: int = 0, by_pods: bool = False) -> None:
        self.variant_order = variant_order
        self.by_pods = by_pods
        self.rng = np.random.default_rng(seed)
        self.queues = {v: ReplicaQueue([v], seed=seed + 1 + i) for i, v in enumerate(variant_order)}
        self.weights: dict[str, float] = {}
        self._variant_of: dict[str, str] = {}
        self.held: collections.deque[tuple[float, float]] = collections.deque()

    @property
    def waiting(self) -> int:
        return len(self.held) + sum(q.waiting for q in self.queues.values())

    def busy(self, replica: str) -> int:
        variant = self._variant_of.get(replica)
        return self.queues[variant].busy(replica) if variant in self.queues else 0

    def set_replicas(self, wanted: dict[str, tuple[str, Perf]]) -> None:
        for variant, queue in self.queues.items():
            queue.set_replicas({n: vp for n, vp in wanted.items() if vp[0] == variant})
        self._variant_of.update({name: variant for name, (variant, _) in wanted.items()})
        while self.held and (drawn := self._draw()) is not None:
            self.queues[drawn].enqueue(*self.held.popleft())

    def arrive(self, at_s: float, size: float = 1.0) -> list[Completion]:
        done = self.advance(at_s)
        variant = self._draw()
        if variant is None:
            self.held.append((at_s, size))
        else:
            self.queues[variant].arrive(at_s, size)
        return done

    def advance(self, to_s: float) -> list[Completion]:
        finished = [c for q in self.queues.values() for c in q.advance(to_s)]
        return sorted(finished, key=lambda c: c.done_s)

    def _draw(self) -> str | None:
        shares = [max(self.weights.get(v, 0.0), 0.0) for v in self.variant_order]
        if self.by_pods:
            shares = [
                float(sum(not r.removed for r in self.queues[v].replicas.values()))
                for v in self.variant_order
            ]
        if sum(shares) <= 0:
            shares = [
                sum(r.perf.slots / r.perf.service_s for r in q.replicas.values() if not r.removed)
                for q in self.queues.values()
            ]
        total = sum(shares)
        if total <= 0:
            return None
        return self.variant_order[int(self.rng.choice(len(shares), p=np.array(shares) / total))]


def router(
    variant_order: list[str], seed: int, routing: model.Routing
) -> ReplicaQueue | WeightedQueues:
    """What stands in front of a service's replicas: one shared queue (a balancer that hands each
    request to a free slot), a weighted route, or a plain Service's even spread over the pods."""
    if routing == "shared":
        return ReplicaQueue(variant_order, seed=seed)
    return WeightedQueues(variant_order, seed=seed, by_pods=routing == "spread")
