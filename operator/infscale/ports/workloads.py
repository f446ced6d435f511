"""The port through which decisions reach the model-server workloads."""

from __future__ import annotations

from typing import Any, Protocol


class WorkloadScaler(Protocol):
    """Creates, updates and removes the per-variant Deployments infscale owns."""

    def apply_deployment(self, manifest: dict[str, Any]) -> None:
        """Make the Deployment match `manifest` (server-side apply as field manager `infscale`).

        Idempotent: applying the same manifest twice changes nothing the second time. A
        Deployment of that name that the manifest's owner does not control is refused.
        Raises `infscale.ports.errors.ClusterError` when the API server refuses or is unreachable.
        """
        ...

    def delete_deployment(self, namespace: str, name: str) -> None:
        """Delete the Deployment; a Deployment that is already gone is not an error.

        Raises `infscale.ports.errors.ClusterError` on any other failure.
        """
        ...


class RouteWriter(Protocol):
    """Creates, updates and removes the objects that route requests to the variants: one
    Service per variant and the service's Gateway API HTTPRoute."""

    def apply(self, manifest: dict[str, Any]) -> None:
        """Make the Service or HTTPRoute match `manifest` (server-side apply as `infscale`);
        a manifest equal to the last one applied is not sent again. An object of that name that
        the manifest's owner does not control is refused (ClusterError), never taken over.

        Raises `infscale.ports.errors.ClusterError` when the API server refuses or is unreachable.
        """
        ...

    def delete(self, kind: str, namespace: str, name: str, owner_uid: str) -> None:
        """Delete the Service or HTTPRoute if the InferenceService ``owner_uid`` controls it; one
        that is already gone, or another owner's, is left alone without an error."""
        ...
