"""Generates the CustomResourceDefinitions in `crds/` from the API models.

`python -m infscale.api.crd DIR` writes them; a unit test fails when the committed files drift.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from infscale.api import schema, v1alpha1


def _column(
    name: str, kind: str, path: str, description: str, *, wide: bool = False
) -> dict[str, Any]:
    """A printer column; `wide` ones show only with `kubectl get -o wide`."""
    column: dict[str, Any] = {"name": name, "type": kind, "jsonPath": path}
    column["description"] = description
    if wide:
        column["priority"] = 1
    return column


def _root_schema(model: type[BaseModel], *validations: dict[str, str]) -> dict[str, Any]:
    body = schema.structural_schema(model)
    root: dict[str, Any] = {
        "type": "object",
        "description": body.get("description", ""),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            **body["properties"],
        },
    }
    if validations:
        root["x-kubernetes-validations"] = list(validations)
    return root


def _crd(
    *,
    kind: str,
    plural: str,
    short_names: list[str],
    scope: str,
    model: type[BaseModel],
    columns: list[dict[str, Any]],
    subresources: dict[str, Any],
    validations: tuple[dict[str, str], ...] = (),
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{v1alpha1.GROUP}"},
        "spec": {
            "group": v1alpha1.GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": ["infscale"],
            },
            "scope": scope,
            "versions": [
                {
                    "name": v1alpha1.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": _root_schema(model, *validations)},
                    "subresources": subresources,
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


def inference_service_crd() -> dict[str, Any]:
    """The InferenceService CRD: status and scale subresources, at-a-glance columns."""
    return _crd(
        kind="InferenceService",
        plural="inferenceservices",
        short_names=["infsvc"],
        scope="Namespaced",
        model=v1alpha1.InferenceService,
        columns=[
            _column("Mode", "string", ".spec.mode", "Auto scales; Recommend only reports"),
            _column("Ready", "integer", ".status.readyReplicas", "Ready replicas"),
            _column("Desired", "integer", ".status.replicas", "Desired replicas"),
            _column("RPS", "number", ".status.observedRps", "Observed requests per second"),
            _column("Latency", "number", ".status.observedLatencySeconds", "SLO metric, seconds"),
            _column("SLO", "number", ".spec.slo.thresholdSeconds", "SLO threshold, seconds"),
            _column(
                "Deadline",
                "number",
                ".spec.slo.deadlineSeconds",
                "Batch: seconds a request may take, queueing included",
                wide=True,
            ),
            _column("USD/h", "number", ".status.usdPerHour", "Cost of the service's nodes"),
            _column("Age", "date", ".metadata.creationTimestamp", "Age"),
            _column(
                "Quality", "number", ".status.quality", "Quality of the planned mix", wide=True
            ),
            _column(
                "USD/1M",
                "number",
                ".status.usdPerMillionRequests",
                "Node cost and electricity per million requests",
                wide=True,
            ),
            _column(
                "kWh/1M",
                "number",
                ".status.kwhPerMillionRequests",
                "Energy per million requests",
                wide=True,
            ),
            _column("Reason", "string", ".status.lastDecision.reason", "Last decision", wide=True),
        ],
        subresources={
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas.fixed",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector",
            },
        },
        validations=(
            v1alpha1.rule(
                "size(self.metadata.name) <= 40",
                "an InferenceService name has at most 40 characters "
                "(its Deployments are named <service>-<variant>)",
            ),
            v1alpha1.rule(
                "!has(self.spec.routing) || (self.metadata.name.matches('^[a-z]') && "
                "self.spec.variants.all(v, size(self.metadata.name) + size(v.name) <= 62))",
                "with spec.routing each variant gets a Service named <service>-<variant>, a DNS "
                "label: it starts with a letter and has at most 63 characters (shorten the "
                "service's or the variant's name)",
            ),
        ),
    )


def inference_node_pool_crd() -> dict[str, Any]:
    """The InferenceNodePool CRD: cluster-scoped, with a status subresource."""
    return _crd(
        kind="InferenceNodePool",
        plural="inferencenodepools",
        short_names=["infpool"],
        scope="Cluster",
        model=v1alpha1.InferenceNodePool,
        columns=[
            _column("Provider", "string", ".status.provider", "What changes the pool's size"),
            _column("Capacity", "string", ".spec.capacityType", "OnDemand or Spot"),
            _column("Ready", "integer", ".status.readyNodes", "Ready nodes"),
            _column("Desired", "integer", ".status.desiredNodes", "Desired nodes"),
            _column("Standby", "integer", ".status.standbyNodes", "Nodes kept ahead of need"),
            _column("Min", "integer", ".spec.minNodes", "Minimum nodes"),
            _column("Max", "integer", ".spec.maxNodes", "Maximum nodes"),
            _column("USD/node/h", "number", ".spec.usdPerHour", "Price of one node per hour"),
            _column("USD/h", "number", ".status.usdPerHour", "Current cost per hour"),
            _column("Watts", "number", ".status.powerWatts", "What the Ready nodes draw"),
            _column("Age", "date", ".metadata.creationTimestamp", "Age"),
            _column(
                "USD/kWh", "number", ".status.usdPerKwh", "Electricity price in force", wide=True
            ),
            _column(
                "gCO2/kWh",
                "number",
                ".status.gramsCo2PerKwh",
                "Carbon intensity in force",
                wide=True,
            ),
            _column(
                "Interruptions",
                "integer",
                ".status.interruptions",
                "Nodes that left without infscale removing them (spot reclaims)",
                wide=True,
            ),
        ],
        subresources={"status": {}},
    )


CRDS = {
    "infscale.dev_inferenceservices.yaml": inference_service_crd,
    "infscale.dev_inferencenodepools.yaml": inference_node_pool_crd,
}


def render(crd: dict[str, Any]) -> str:
    """The YAML text of one CRD, as committed."""
    header = (
        "# Generated by `python -m infscale.api.crd` from operator/infscale/api. Do not edit.\n"
    )
    return header + yaml.safe_dump(crd, sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path, help="where to write the CRD files")
    args = parser.parse_args(argv)
    args.directory.mkdir(parents=True, exist_ok=True)
    for filename, build in CRDS.items():
        (args.directory / filename).write_text(render(build()))
        print(f"wrote {args.directory / filename}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
