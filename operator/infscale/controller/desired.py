"""What the objects infscale owns should look like: one Deployment per variant, and the status.

Pure functions over the API models; the reconciler compares their output with what the cluster has
and writes only the difference.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from infscale.api import v1alpha1
from infscale.labels import SERVICE_LABEL, SPEC_HASH_ANNOTATION, VARIANT_LABEL

MANAGED_BY = {"app.kubernetes.io/managed-by": "infscale"}

Manifest = dict[str, Any]


def deployment_name(service: str, variant: str) -> str:
    return f"{service}-{variant}"


def selector_labels(service: str, variant: str | None = None) -> dict[str, str]:
    """Labels that select the pods of a service, or of one of its variants."""
    labels = {SERVICE_LABEL: service}
    if variant is not None:
        labels[VARIANT_LABEL] = variant
    return labels


def selector(service: str) -> str:
    """The label selector string the scale subresource reports."""
    return f"{SERVICE_LABEL}={service}"


def tolerations_for(pool: v1alpha1.InferenceNodePoolSpec) -> list[Manifest]:
    """Tolerations that let a replica onto every node of the pool."""
    tolerations = []
    for taint in pool.node.taints:
        toleration: Manifest = {"key": taint.key, "effect": taint.effect.value}
        if taint.value:
            toleration.update(operator="Equal", value=taint.value)
        else:
            toleration["operator"] = "Exists"
        tolerations.append(toleration)
    return tolerations


def pod_template(
    service: v1alpha1.InferenceServiceSpec,
    service_name: str,
    variant: v1alpha1.Variant,
    pool: v1alpha1.InferenceNodePoolSpec,
) -> Manifest:
    """The service's pod template, pinned to the variant's pool with the variant's resources.

    The variant's resources become the requests and limits of the first container (the model
    server), in place of the template's, and its ``server`` override that container's image,
    command, arguments and environment; the pool's labels join the nodeSelector and its taints
    are tolerated.
    """
    template: Manifest = service.template.model_dump(by_alias=True, exclude_none=True)
    template = copy.deepcopy(template)
    metadata = template.setdefault("metadata", {})
    metadata["labels"] = {
        **metadata.get("labels", {}),
        **selector_labels(service_name, variant.name),
    }
    spec = template["spec"]
    spec["nodeSelector"] = {**spec.get("nodeSelector", {}), **pool.node.labels}
    spec["tolerations"] = [*spec.get("tolerations", []), *tolerations_for(pool)]
    server = spec["containers"][0]
    if variant.server is not None:
        override = variant.server.model_dump(by_alias=True, exclude_none=True)
        env = override.pop("env", [])
        server.update(override)
        if env:
            names = {e["name"] for e in env}
            server["env"] = [e for e in server.get("env", []) if e.get("name") not in names] + env
    if variant.resources:
        # The plan places pods by the variant's resources, so they are the pod's, the template's
        # replaced: a CPU variant drops the template's GPU.
        quantities = {name: str(value) for name, value in variant.resources.items()}
        server["resources"] = {"requests": dict(quantities), "limits": dict(quantities)}
    return template


def deployment(
    *,
    service: v1alpha1.InferenceServiceSpec,
    service_name: str,
    namespace: str,
    owner_uid: str,
    variant: v1alpha1.Variant,
    pool: v1alpha1.InferenceNodePoolSpec,
    replicas: int,
) -> Manifest:
    """The Deployment of one variant, owned by the InferenceService (deleted with it)."""
    body: Manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _owned_metadata(
            deployment_name(service_name, variant.name),
            namespace,
            service_name,
            owner_uid,
            variant.name,
        ),
        "spec": {
            "selector": {"matchLabels": selector_labels(service_name, variant.name)},
            "template": pod_template(service, service_name, variant, pool),
        },
    }
    body["metadata"]["annotations"] = {SPEC_HASH_ANNOTATION: spec_hash(body)}
    body["spec"]["replicas"] = replicas
    return body


def _owned_metadata(
    name: str, namespace: str, service_name: str, owner_uid: str, variant: str | None = None
) -> Manifest:
    """Metadata of an object the InferenceService owns (deleted with it)."""
    return {
        "name": name,
        "namespace": namespace,
        "labels": {**MANAGED_BY, **selector_labels(service_name, variant)},
        "ownerReferences": [
            {
                "apiVersion": v1alpha1.API_VERSION,
                "kind": "InferenceService",
                "name": service_name,
                "uid": owner_uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }


def variant_service(
    *, routing: v1alpha1.Routing, service_name: str, namespace: str, owner_uid: str, variant: str
) -> Manifest:
    """The Service of one variant's pods (<service>-<variant>): an HTTPRoute backend."""
    port = routing.port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _owned_metadata(
            deployment_name(service_name, variant), namespace, service_name, owner_uid, variant
        ),
        "spec": {
            "selector": selector_labels(service_name, variant),
            "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"


def http_route(
    *,
    routing: v1alpha1.Routing,
    service_name: str,
    namespace: str,
    owner_uid: str,
    weights: Mapping[str, int],
) -> Manifest:
    """The HTTPRoute <service>: every variant's Service a backend, weighted as the plan says."""
    route = routing.http_route.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True)
    backends = [
        {"name": deployment_name(service_name, variant), "port": routing.port, "weight": weight}
        for variant, weight in weights.items()
    ]
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": _owned_metadata(service_name, namespace, service_name, owner_uid),
        "spec": {**route, "rules": [{"backendRefs": backends}]},
    }


def spec_hash(body: Manifest) -> str:
    """A digest of everything infscale sets on a Deployment except replicas."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def condition(
    kind: str,
    status: bool | None,
    reason: str,
    message: str,
    *,
    previous: Sequence[Mapping[str, Any]],
    now: str,
    generation: int | None,
) -> Manifest:
    """A condition whose lastTransitionTime moves only when its status changes."""
    text = "Unknown" if status is None else ("True" if status else "False")
    since = now
    for old in previous:
        if old.get("type") == kind and old.get("status") == text:
            since = old.get("lastTransitionTime") or now
    return {
        "type": kind,
        "status": text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
        "observedGeneration": generation,
    }


def without_times(status: Mapping[str, Any]) -> Manifest:
    """The status with its timestamps removed, to tell a real change from a repeat; a variant's
    field that is None counts as absent, as the API server stores it (it prunes nulls)."""
    result = copy.deepcopy(dict(status))
    for cond in result.get("conditions") or []:
        cond.pop("lastTransitionTime", None)
    if isinstance(result.get("lastDecision"), dict):
        result["lastDecision"].pop("time", None)
    if isinstance(result.get("variants"), list):
        result["variants"] = [
            {k: v for k, v in variant.items() if v is not None}
            if isinstance(variant, dict)
            else variant
            for variant in result["variants"]
        ]
    return result


def parse_time(text: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 time as the status writes it; None for none."""
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def format_time(seconds: float) -> str:
    """The status's time format (RFC 3339, UTC, whole seconds)."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def accrued_energy(old: Mapping[str, Any], now: str) -> dict[str, Any]:
    """``energyKwh`` and ``energyAccruedAt`` for a status written at ``now``: the last
    status's energy plus its draw (``powerWatts``, rewritten whenever it moves by a quarter)
    over the time since then. The status is the meter, so a restarted operator goes on."""
    kwh = float(old.get("energyKwh") or 0.0)
    watts, since, at = (
        old.get("powerWatts"),
        parse_time(old.get("energyAccruedAt")),
        parse_time(now),
    )
    if isinstance(watts, int | float) and since is not None and at is not None:
        kwh += watts * max(0.0, at - since) / 3.6e6
    return {"energyKwh": float(f"{kwh:.4g}"), "energyAccruedAt": now}
