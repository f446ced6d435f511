"""RouteWriter backend: per-variant Services and the Gateway API HTTPRoute, by server-side apply.

The last manifest applied to each object is remembered, so a steady cycle writes nothing (after a
restart each object is applied once more, which changes nothing on the server). Nothing watches
these objects, so each is applied again every ``REFRESH_S``: a route or Service deleted or edited
by hand is restored within that time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client

from infscale.adapters import kube_client
from infscale.labels import FIELD_MANAGER
from infscale.ports import errors

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"
APPLY = "application/apply-patch+yaml"
REFRESH_S = 300.0


class KubernetesRoutes:
    """Applies Services (core/v1) and HTTPRoutes (gateway.networking.k8s.io/v1)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._applied: dict[tuple[str, str, str], tuple[str, float]] = {}  # manifest, when
        self._refresh_s = refresh_s
        self._clock = clock

    def apply(self, manifest: dict[str, Any]) -> None:
        kind, metadata = manifest["kind"], manifest["metadata"]
        key = (kind, metadata["namespace"], metadata["name"])
        text = json.dumps(manifest, sort_keys=True)
        last = self._applied.get(key)
        due = last is None or self._clock() - last[1] >= self._refresh_s
        if last is not None and last[0] == text and not due:
            return
        owner = kube_client.controller_uid(manifest)
        if due and owner is not None:  # first write or a refresh: is the name still free?
            found = self._read(*key)
            why = None if found is None else kube_client.not_ours(found, owner)
            if why is not None:
                raise errors.ClusterError(why, status=409)
        try:
            if kind == "Service":
                self._core.patch_namespaced_service(
                    key[2],
                    key[1],
                    manifest,
                    field_manager=FIELD_MANAGER,
                    force=True,
                    _content_type=APPLY,
                )
            else:
                self._custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    key[1],
                    PLURAL,
                    key[2],
                    manifest,
                    field_manager=FIELD_MANAGER,
                    force=True,
                    _content_type=APPLY,
                )
        except client.ApiException as error:
            raise errors.ClusterError(
                f"applying {kind} {key[1]}/{key[2]}: "
                + errors.api_message(error.body, f"{error.status} {error.reason}"),
                status=error.status,
            ) from error
        self._applied[key] = (text, self._clock())

    def delete(self, kind: str, namespace: str, name: str, owner_uid: str) -> None:
        self._applied.pop((kind, namespace, name), None)
        found = self._read(kind, namespace, name)
        if found is None or kube_client.not_ours(found, owner_uid) is not None:
            return  # gone, or not the service's to delete
        try:
            if kind == "Service":
                self._core.delete_namespaced_service(name, namespace)
            else:
                self._custom.delete_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name
                )
        except client.ApiException as error:
            if error.status == 404:
                return
            raise errors.ClusterError(
                f"deleting {kind} {namespace}/{name}: "
                + errors.api_message(error.body, f"{error.status} {error.reason}"),
                status=error.status,
            ) from error

    def _read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as JSON, or None when there is none."""
        with kube_client.failing_as(f"reading {kind} {namespace}/{name}"):
            try:
                if kind == "Service":
                    read: Any = self._core.read_namespaced_service  # raw JSON, untyped
                    found: dict[str, Any] = json.loads(
                        read(name, namespace, _preload_content=False).data
                    )
                    return found
                get: Any = self._custom.get_namespaced_custom_object
                route: dict[str, Any] = get(GROUP, VERSION, namespace, PLURAL, name)
                return route
            except client.ApiException as error:
                if error.status == 404:
                    return None
                raise
