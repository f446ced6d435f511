"""The ports through which the operator explains itself: status and Events."""

from __future__ import annotations

from typing import Any, Protocol


class StatusWriter(Protocol):
    """Writes the status subresource of infscale's objects (never their spec or metadata)."""

    def write_service_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge `status` into the InferenceService's status; a None value removes that key.

        Idempotent. Raises `infscale.ports.errors.ClusterError` on failure; a service that is
        gone (deleted meanwhile) is not an error.
        """
        ...


class PoolStatusWriter(Protocol):
    """Writes the status subresource of InferenceNodePools."""

    def write_pool_status(self, name: str, status: dict[str, Any]) -> None:
        """Merge `status` into the pool's status; a None value removes that key. Idempotent.
        Raises `infscale.ports.errors.ClusterError` on failure; a deleted pool is not an error."""
        ...


class EventRecorder(Protocol):
    """Records Kubernetes Events on an object."""

    def record(self, involved: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        """Post one Event (type Normal or Warning) about `involved` (an object's manifest).

        Never raises: an Event that cannot be posted is logged and dropped, since Events are
        advisory and must not block a decision.
        """
        ...
