"""WorkloadScaler backend: per-variant Deployments through the Kubernetes API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubernetes import client

from infscale.adapters import kube_client
from infscale.ports import errors

FIELD_MANAGER = "infscale"


class KubernetesDeployments:
    """Applies Deployments with server-side apply; deletes them in the background."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._apps = client.AppsV1Api(api_client)

    def apply_deployment(self, manifest: dict[str, Any]) -> None:
        metadata = manifest["metadata"]
        try:
            self._apps.patch_namespaced_deployment(
                metadata["name"],
                metadata["namespace"],
                manifest,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
            )
        except client.ApiException as error:
            raise errors.ClusterError(
                f"applying Deployment {metadata['namespace']}/{metadata['name']}: "
                + errors.api_message(error.body, f"{error.status} {error.reason}"),
                status=error.status,
            ) from error

    def list_owned(self) -> Iterator[dict[str, Any]]:
        """Every Deployment infscale manages, as plain JSON (read fresh each cycle, a page at a
        time as the caller goes)."""
        return kube_client.list_pages(
            self._apps.list_deployment_for_all_namespaces,
            "infscale Deployments",
            label_selector="app.kubernetes.io/managed-by=infscale",
        )

    def delete_deployment(self, namespace: str, name: str) -> None:
        try:
            self._apps.delete_namespaced_deployment(
                name, namespace, propagation_policy="Background"
            )
        except client.ApiException as error:
            if error.status == 404:
                return
            raise errors.ClusterError(
                f"deleting Deployment {namespace}/{name}: "
                + errors.api_message(error.body, f"{error.status} {error.reason}"),
                status=error.status,
            ) from error
