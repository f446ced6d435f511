"""Leader election rules on an in-memory Lease (optimistic concurrency like the API server's)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from kubernetes import client

from infscale.adapters.leases import KubernetesLeases
from infscale.controller import leader, runtime, wiring
from infscale.controller.settings import OperatorSettings
from infscale.ports import errors
from infscale.ports.leases import LeaseConflictError, LeaseRecord

TIMING = leader.Timing(duration_s=15, renew_deadline_s=10, retry_s=2)


class MemoryLease:
    """One Lease; every write bumps its version and must name the version it read."""

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self.writes = 0

    def get(self) -> LeaseRecord | None:
        return self.record

    def create(self, holder: str, duration_s: float) -> LeaseRecord:
        if self.record is not None:
            raise LeaseConflictError("exists")
        return self._store(LeaseRecord(holder, duration_s, 0, "0"))

    def write(self, record: LeaseRecord, holder: str, *, acquired: bool) -> LeaseRecord:
        if self.record is None or self.record.version != record.version:
            raise LeaseConflictError("changed")
        transitions = record.transitions + (1 if acquired else 0)
        return self._store(dataclasses.replace(record, holder=holder, transitions=transitions))

    def _store(self, record: LeaseRecord) -> LeaseRecord:
        self.writes += 1
        self.record = dataclasses.replace(record, version=str(self.writes))
        return self.record


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def candidates(lease: MemoryLease, clock: Clock, n: int = 2) -> list[leader.LeaderElector]:
    return [leader.LeaderElector(lease, f"op-{i}", TIMING, clock) for i in range(n)]


def test_first_candidate_creates_the_lease_and_the_other_waits() -> None:
    lease, clock = MemoryLease(), Clock()
    a, b = candidates(lease, clock)
    assert a.step()
    assert not b.step()
    for _ in range(20):  # a renews every retry period: b never takes over
        clock.now += TIMING.retry_s
        assert a.step()
        assert not b.step()
    assert lease.record is not None
    assert lease.record.holder == "op-0"


def test_takeover_after_the_leader_dies_only_after_a_full_duration() -> None:
    lease, clock = MemoryLease(), Clock()
    a, b = candidates(lease, clock)
    a.step()
    b.step()
    died_at = clock.now  # a is SIGKILLed: it never renews again
    took_over_at = None
    while took_over_at is None and clock.now < died_at + 60:
        clock.now += 0.5
        b.step()
        assert not (a.is_leader() and b.is_leader()), "both leaders at once"
        if b.is_leader():
            took_over_at = clock.now
    assert took_over_at is not None
    assert TIMING.duration_s <= took_over_at - died_at <= TIMING.duration_s + 0.5
    assert not a.is_leader()
    assert lease.record is not None
    assert (lease.record.holder, lease.record.transitions) == ("op-1", 1)


def test_a_leader_that_cannot_renew_stops_acting_at_the_renew_deadline() -> None:
    lease, clock = MemoryLease(), Clock()
    (a,) = candidates(lease, clock, 1)
    assert a.step()
    clock.now += TIMING.renew_deadline_s - 0.01
    assert a.is_leader()
    clock.now += 0.02
    assert not a.is_leader()


def test_release_hands_over_at_once() -> None:
    lease, clock = MemoryLease(), Clock()
    a, b = candidates(lease, clock)
    a.step()
    b.step()
    a.release()
    assert not a.is_leader()
    assert b.step()


def test_timing_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="retry < renew deadline < lease duration"):
        leader.Timing(duration_s=10, renew_deadline_s=10, retry_s=2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.floats(0.0, 6.0)), min_size=1, max_size=120))
def test_never_two_leaders(schedule: list[tuple[int, float]]) -> None:
    """Any interleaving of steps, pauses and deaths: at no instant do two candidates act."""
    lease, clock = MemoryLease(), Clock()
    electors = candidates(lease, clock, 3)
    for who, pause in schedule:
        clock.now += pause
        electors[who].step()
        assert sum(e.is_leader() for e in electors) <= 1


def test_an_unreachable_api_server_is_a_cluster_error_and_the_candidate_stays_one() -> None:
    configuration = client.Configuration()
    configuration.host = "https://127.0.0.1:1"  # nothing listens on port 1: connection refused
    configuration.retries = 0
    leases = KubernetesLeases(client.ApiClient(configuration), "infscale", "infscale-leader")
    with pytest.raises(errors.ClusterError, match="read lease infscale/infscale-leader"):
        leases.get()
    elector = leader.LeaderElector(leases, "op-0", TIMING)
    assert elector.step() is False  # logged, not raised: the next step tries again


class FlakyElector:
    """Its first step fails as an unreachable API server would; every later one leads."""

    timing = leader.Timing(duration_s=3, renew_deadline_s=2, retry_s=0.01)

    def __init__(self) -> None:
        self.steps = 0

    def step(self) -> bool:
        self.steps += 1
        if self.steps == 1:
            raise OSError("connection reset by peer")
        return True

    def is_leader(self) -> bool:
        return self.steps > 1

    def release(self) -> None:
        pass


def test_the_loop_outlives_a_failing_election_step_and_waits_for_the_indexes() -> None:
    cycles: list[int] = []
    adapters: Any = wiring.Adapters(None, None, None, None, None)
    elector: Any = FlakyElector()
    loop = runtime.Runtime(OperatorSettings(debounce_seconds=0), adapters, elector)
    loop.cycle.run = lambda services, pool_bodies: cycles.append(len(services))  # type: ignore[method-assign]

    async def scenario() -> None:
        loop.start({"services": {("team-a", "chat"): [{"spec": {}}]}, "pools": {}})
        await asyncio.sleep(0.2)
        assert elector.steps > 2
        assert loop.alive() == {"leader": True, "indexed": False}
        assert cycles == []  # leading, but no watch event yet: the indexes may be partial
        loop.wake()
        await asyncio.sleep(0.1)
        assert cycles == [1]
        await loop.stop()
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="stopped"):
            loop.alive()  # the liveness probe fails once the loop has stopped

    asyncio.run(scenario())
