"""Leader election rules on an in-memory Lease (optimistic concurrency like the API server's)."""

from __future__ import annotations

import dataclasses

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from infscale.controller import leader
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
