"""StatusWriter and EventRecorder backends: the status subresource and core/v1 Events."""

from __future__ import annotations

import datetime
import hashlib
import logging
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
        self._counts: dict[str, int] = {}  # Event name -> count, oldest first

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
        """Post the Event; the same one again (object, type, reason and message) raises the
        count of the first instead, as kubectl's recorder does, so a condition repeated every
        cycle is one Event, not one per cycle."""
        metadata = involved["metadata"]
        namespace = metadata.get("namespace") or "default"
        message = message[:1024]
        key = "\x00".join((str(metadata.get("uid")), event_type, reason, message))
        name = f"{metadata['name']}.{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        now = datetime.datetime.now(datetime.UTC)
        try:
            if not self._count_again(namespace, name, now):
                self._core.create_namespaced_event(
                    namespace, _event(involved, name, namespace, event_type, reason, message, now)
                )
                self._counts[name] = 1
        except client.ApiException as error:
            LOG.warning("could not post Event %s on %s: %s", reason, metadata["name"], error)
        while len(self._counts) > _REMEMBERED_EVENTS:
            self._counts.pop(next(iter(self._counts)))

    def _count_again(self, namespace: str, name: str, now: datetime.datetime) -> bool:
        """Raise the count of the Event ``name`` if it exists (False if it does not, or expired)."""
        count = self._counts.get(name)
        if count is None:
            try:
                count = self._core.read_namespaced_event(name, namespace).count or 1
            except client.ApiException as error:
                if error.status == 404:
                    return False
                raise
        patch = {"count": count + 1, "lastTimestamp": now.isoformat()}
        try:
            self._core.patch_namespaced_event(name, namespace, patch)
        except client.ApiException as error:
            if error.status == 404:  # expired since (Events live an hour)
                self._counts.pop(name, None)
                return False
            raise
        self._counts[name] = count + 1
        return True


_REMEMBERED_EVENTS = 4096
"""Counts of the Events this process posted, kept to raise them without reading them first."""


def _event(
    involved: dict[str, Any],
    name: str,
    namespace: str,
    event_type: str,
    reason: str,
    message: str,
    now: datetime.datetime,
) -> client.CoreV1Event:
    metadata = involved["metadata"]
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace),
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
        message=message,
        source=client.V1EventSource(component=COMPONENT),
        reporting_component=COMPONENT,
        reporting_instance=COMPONENT,
        first_timestamp=now,
        last_timestamp=now,
        count=1,
    )
