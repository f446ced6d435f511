"""Leases backend: one coordination.k8s.io/v1 Lease, written with its resourceVersion."""

from __future__ import annotations

import datetime
from typing import Any

from kubernetes import client

from infscale.adapters import kube_client
from infscale.ports.leases import LeaseConflictError, LeaseRecord


def _micro_time(at: datetime.datetime | None = None) -> str:
    """A Kubernetes MicroTime (RFC 3339 with exactly six fractional digits); default now."""
    at = at or datetime.datetime.now(datetime.UTC)
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KubernetesLeases:
    """The Lease `name` in `namespace`."""

    def __init__(self, api_client: client.ApiClient, namespace: str, name: str) -> None:
        self._api = client.CoordinationV1Api(api_client)
        self.namespace, self.name = namespace, name

    def get(self) -> LeaseRecord | None:
        with kube_client.failing_as(self._what("read")):
            try:
                lease = self._api.read_namespaced_lease(self.name, self.namespace)
            except client.ApiException as error:
                if error.status == 404:
                    return None
                raise
        return self._record(lease)

    def create(self, holder: str, duration_s: float) -> LeaseRecord:
        now = _micro_time()
        body: Any = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": self._spec(holder, duration_s, 0, acquire_time=now, renew_time=now),
        }
        with kube_client.failing_as(self._what("create")):
            try:
                return self._record(self._api.create_namespaced_lease(self.namespace, body))
            except client.ApiException as error:
                if error.status == 409:
                    raise LeaseConflictError(f"lease {self.name} already exists") from error
                raise

    def write(self, record: LeaseRecord, holder: str, *, acquired: bool) -> LeaseRecord:
        now = _micro_time()
        transitions = record.transitions + (1 if acquired else 0)
        body: Any = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": record.version,
            },
            "spec": self._spec(
                holder,
                record.duration_s,
                transitions,
                acquire_time=now if acquired else record.acquire_time,
                renew_time=now,
            ),
        }
        with kube_client.failing_as(self._what("write")):
            try:
                return self._record(
                    self._api.replace_namespaced_lease(self.name, self.namespace, body)
                )
            except client.ApiException as error:
                if error.status == 409:
                    raise LeaseConflictError(f"lease {self.name} changed") from error
                raise

    @staticmethod
    def _spec(
        holder: str,
        duration_s: float,
        transitions: int,
        *,
        acquire_time: str | None,
        renew_time: str,
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "holderIdentity": holder,
            "leaseDurationSeconds": max(1, round(duration_s)),
            "leaseTransitions": transitions,
            "renewTime": renew_time,
        }
        if acquire_time is not None:
            spec["acquireTime"] = acquire_time
        return spec

    @staticmethod
    def _record(lease: Any) -> LeaseRecord:
        spec = lease.spec
        return LeaseRecord(
            holder=spec.holder_identity or "",
            duration_s=float(spec.lease_duration_seconds or 15),
            transitions=int(spec.lease_transitions or 0),
            version=str(lease.metadata.resource_version),
            acquire_time=_micro_time(spec.acquire_time) if spec.acquire_time else None,
        )

    def _what(self, verb: str) -> str:
        return f"{verb} lease {self.namespace}/{self.name}"
