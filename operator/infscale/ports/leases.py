"""Port: the Lease that elects one acting operator among replicas (coordination.k8s.io)."""

from __future__ import annotations

import dataclasses
from typing import Protocol


@dataclasses.dataclass(frozen=True)
class LeaseRecord:
    """What the election needs of a Lease; `version` is its resourceVersion."""

    holder: str
    duration_s: float
    transitions: int
    version: str
    acquire_time: str | None = None


class LeaseConflictError(Exception):
    """Another writer changed or created the Lease first (HTTP 409)."""


class Leases(Protocol):
    """Reads and writes one Lease with optimistic concurrency."""

    def get(self) -> LeaseRecord | None:
        """The Lease, or None when it does not exist."""
        ...

    def create(self, holder: str, duration_s: float) -> LeaseRecord:
        """Create it held by `holder`; raises LeaseConflictError when it already exists."""
        ...

    def write(self, record: LeaseRecord, holder: str, *, acquired: bool) -> LeaseRecord:
        """Renew (or, with `acquired`, take over) the Lease read as `record`; raises
        LeaseConflictError when it changed since. An empty `holder` releases it."""
        ...
