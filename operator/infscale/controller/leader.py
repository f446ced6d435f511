"""Leader election over a Lease: of several operator replicas, one acts at a time.

The rules follow client-go's leaderelection: a Lease names its holder and a duration; the
holder renews it every `retry_s`; a candidate takes it over only after it has seen the same
Lease record unchanged for a whole duration, timed on its own monotonic clock, so clock skew
between machines does not matter. The leader stops acting as soon as its last successful
renewal is older than `renew_deadline_s` (shorter than the duration), so it has stopped before
any candidate can take over: two replicas never act at once.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from infscale.ports import errors
from infscale.ports.leases import LeaseConflictError, LeaseRecord, Leases

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds: the Lease's duration, how long a leader may go without renewing, how often
    everyone retries (client-go's defaults are 15, 10 and 2)."""

    duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_s: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_s < self.renew_deadline_s < self.duration_s:
            raise ValueError("leader election needs 0 < retry < renew deadline < lease duration")


class LeaderElector:
    """One candidate. Call `step()` every `timing.retry_s`; `is_leader()` before acting."""

    def __init__(
        self,
        leases: Leases,
        identity: str,
        timing: Timing = Timing(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.leases, self.identity, self.timing, self._clock = leases, identity, timing, clock
        self._renewed_at: float | None = None  # last successful write as holder
        self._observed: tuple[LeaseRecord, float] | None = None  # record seen, and since when

    def is_leader(self) -> bool:
        return (
            self._renewed_at is not None
            and self._clock() - self._renewed_at < self.timing.renew_deadline_s
        )

    def step(self) -> bool:
        """Create, renew or take over the Lease if the rules allow; returns `is_leader()`."""
        started = self._clock()
        was_leader = self.is_leader()
        try:
            record = self.leases.get()
            if record is None:
                record = self.leases.create(self.identity, self.timing.duration_s)
                self._won(record, started, "created the lease")
            elif record.holder == self.identity:
                self._won(self.leases.write(record, self.identity, acquired=False), started, "")
            elif self._expired(record, started):
                previous = record.holder or "nobody"
                record = self.leases.write(record, self.identity, acquired=True)
                self._won(record, started, f"took over the lease from {previous}")
        except LeaseConflictError:
            LOG.debug("%s lost a lease race; retrying", self.identity)
        except errors.ClusterError as error:
            LOG.warning("leader election: %s", error)
        if was_leader and not self.is_leader():
            LOG.warning("%s lost leadership: stops acting", self.identity)
        return self.is_leader()

    def release(self) -> None:
        """Give the Lease up (on a clean shutdown) so another replica takes over at once."""
        if not self.is_leader():
            return
        self._renewed_at = None
        try:
            record = self.leases.get()
            if record is not None and record.holder == self.identity:
                self.leases.write(record, "", acquired=False)
                LOG.info("%s released the lease", self.identity)
        except (LeaseConflictError, errors.ClusterError) as error:
            LOG.warning("releasing the lease failed: %s", error)

    def _expired(self, record: LeaseRecord, now: float) -> bool:
        if not record.holder:
            return True  # released
        if self._observed is None or self._observed[0] != record:
            if self._observed is None or self._observed[0].holder != record.holder:
                LOG.info("%s stands by: %s holds the lease", self.identity, record.holder)
            self._observed = (record, now)
            return False
        return now - self._observed[1] >= record.duration_s

    def _won(self, record: LeaseRecord, started: float, what: str) -> None:
        # Timed from before the read: a slow round trip shortens the leadership, never extends it.
        self._renewed_at = started
        self._observed = (record, started)
        if what:
            LOG.info("%s is the leader: %s", self.identity, what)
