"""WorkloadScaler backend: per-variant Deployments through the Kubernetes API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from kubernetes import client

from infscale.adapters import kube_client
from infscale.labels import FIELD_MANAGER
from infscale.ports import errors


class KubernetesDeployments:
    """Applies Deployments with server-side apply; deletes them in the background."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._apps = client.AppsV1Api(api_client)
        self._ours: set[tuple[str, str]] = set()  # applied by this process: known to be ours

    def apply_deployment(self, manifest: dict[str, Any]) -> None:
        """Server-side apply; a Deployment of that name that another owner controls (a team's
        own, say) is refused, never taken over (checked once per Deployment and process)."""
        metadata = manifest["metadata"]
        key = (metadata["namespace"], metadata["name"])
        if key not in self._ours:
            self._refuse_foreign(key, manifest)
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
        self._ours.add(key)

    def _refuse_foreign(self, key: tuple[str, str], manifest: dict[str, Any]) -> None:
        owner = kube_client.controller_uid(manifest)
        if owner is None:
            return
        with kube_client.failing_as(f"reading Deployment {key[0]}/{key[1]}"):
            try:
                read: Any = self._apps.read_namespaced_deployment  # raw JSON, untyped
                response = read(key[1], key[0], _preload_content=False)
            except client.ApiException as error:
                if error.status == 404:
                    return
                raise
        why = kube_client.not_ours(json.loads(response.data), owner)
        if why is not None:
            raise errors.ClusterError(why, status=409)

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
