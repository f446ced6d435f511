"""In-memory fakes of the cluster-facing ports, for unit tests of the reconciler."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any


@dataclasses.dataclass
class FakeCluster:
    """Records what the reconciler asked for: Deployments, status writes and Events."""

    deployments: dict[tuple[str, str], dict[str, Any]] = dataclasses.field(default_factory=dict)
    statuses: dict[tuple[str, str], dict[str, Any]] = dataclasses.field(default_factory=dict)
    events: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    calls: list[str] = dataclasses.field(default_factory=list)
    routes: dict[tuple[str, str], dict[str, Any]] = dataclasses.field(default_factory=dict)

    def apply_deployment(self, manifest: dict[str, Any]) -> None:
        metadata = manifest["metadata"]
        self.deployments[(metadata["namespace"], metadata["name"])] = copy.deepcopy(manifest)
        self.calls.append(f"apply {metadata['name']}")

    def delete_deployment(self, namespace: str, name: str) -> None:
        self.deployments.pop((namespace, name), None)
        self.calls.append(f"delete {name}")

    def write_service_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        merged = self.statuses.setdefault((namespace, name), {})
        for key, value in status.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = copy.deepcopy(value)
        self.calls.append(f"status {name}")

    def record(self, involved: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        self.events.append((event_type, reason, message))
        self.calls.append(f"event {reason}")

    def apply(self, manifest: dict[str, Any]) -> None:
        """RouteWriter: a Service or an HTTPRoute."""
        metadata = manifest["metadata"]
        self.routes[(manifest["kind"], metadata["name"])] = copy.deepcopy(manifest)
        self.calls.append(f"apply {manifest['kind']} {metadata['name']}")

    def delete(self, kind: str, namespace: str, name: str, owner_uid: str = "") -> None:
        self.routes.pop((kind, name), None)
        self.calls.append(f"delete {kind} {name}")
