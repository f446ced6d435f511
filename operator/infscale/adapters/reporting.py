"""StatusWriter and EventRecorder backends: the status subresource and core/v1 Events."""

from __future__ import annotations

import datetime
import logging
import uuid
from typing import Any

from kubernetes import client

from infscale.api import v1alpha1
from infscale.ports import errors

LOG = logging.getLogger(__name__)
COMPONENT = "infscale"


class KubernetesReporter:
    """Writes InferenceService status with merge patches and posts Events."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)

    def write_service_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._merge_status(f"InferenceService {namespace}/{name}", status, namespace, name)

    def write_pool_status(self, name: str, status: dict[str, Any]) -> None:
        self._merge_status(f"InferenceNodePool {name}", status, None, name)

    def _merge_status(
        self, what: str, status: dict[str, Any], namespace: str | None, name: str
    ) -> None:
        """Merge-patch the status subresource; an object deleted meanwhile is not an error."""
        body = {"status": status}
        group, version, kind = v1alpha1.GROUP, v1alpha1.VERSION, "merge-patch+json"
        try:
            if namespace is None:
                self._custom.patch_cluster_custom_object_status(
                    group, version, "inferencenodepools", name, body,
                    _content_type=f"application/{kind}",
                )  # fmt: skip
            else:
                self._custom.patch_namespaced_custom_object_status(
                    group, version, namespace, "inferenceservices", name, body,
                    _content_type=f"application/{kind}",
                )  # fmt: skip
        except client.ApiException as error:
            if error.status == 404:
                return
            raise errors.ClusterError(
                f"writing status of {what}: "
                + errors.api_message(error.body, f"{error.status} {error.reason}"),
                status=error.status,
            ) from error

    def record(self, involved: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        metadata = involved["metadata"]
        now = datetime.datetime.now(datetime.UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                name=f"{metadata['name']}.{uuid.uuid4().hex[:12]}",
                namespace=metadata.get("namespace") or "default",
            ),
            involved_object=client.V1ObjectReference(
                api_version=involved.get("apiVersion"),
                kind=involved.get("kind"),
                name=metadata["name"],
                namespace=metadata.get("namespace"),
                uid=metadata.get("uid"),
                resource_version=metadata.get("resourceVersion"),
            ),
            type=event_type,
            reason=reason,
            message=message[:1024],
            source=client.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT,
            reporting_instance=COMPONENT,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        try:
            self._core.create_namespaced_event(metadata.get("namespace") or "default", event)
        except client.ApiException as error:
            LOG.warning("could not post Event %s on %s: %s", reason, metadata["name"], error)
