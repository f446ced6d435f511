"""An InferenceService as one cycle reads it: parsed once, then used by decide and reconcile."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, cast

import pydantic

from infscale.api import v1alpha1
from infscale.controller.decisions import OwnedDeployment, StuckPod
from infscale.labels import PAUSED_ANNOTATION


@dataclasses.dataclass(frozen=True)
class ServiceView:
    """A valid service with what the cluster runs for it."""

    body: Mapping[str, Any]
    """The object as read: its status is compared, its reference names Events."""
    namespace: str
    name: str
    spec: v1alpha1.InferenceServiceSpec
    hold: str | None
    """Why the replicas stay as they are (paused, Recommend mode); None: the plan is applied."""
    owned: tuple[OwnedDeployment, ...] = ()
    stuck: tuple[StuckPod, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def held(self) -> bool:
        """Recommend mode or paused: the plan is reported, the current replicas stay."""
        return self.hold is not None

    @property
    def memory(self) -> str | None:
        """``status.plannerMemory`` as last saved."""
        return cast("str | None", (self.body.get("status") or {}).get("plannerMemory"))


@dataclasses.dataclass(frozen=True)
class InvalidService:
    """A service its CRD schema let through but the operator's model cannot read."""

    body: Mapping[str, Any]
    namespace: str
    name: str
    error: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def hold_reason(metadata: Mapping[str, Any], spec: v1alpha1.InferenceServiceSpec) -> str | None:
    """Why the service's replicas are held, or None."""
    if (metadata.get("annotations") or {}).get(PAUSED_ANNOTATION) == "true":
        return f"paused by annotation {PAUSED_ANNOTATION}; replicas held"
    if spec.mode is v1alpha1.Mode.RECOMMEND:
        return "Recommend mode: replicas held; see status.recommendation"
    return None


def read(
    body: Mapping[str, Any],
    owned: Iterable[OwnedDeployment] = (),
    stuck: Iterable[StuckPod] = (),
) -> ServiceView | InvalidService:
    """The view of one service body, with its Deployments and refused pods."""
    metadata = body["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    try:
        spec = v1alpha1.InferenceService.model_validate(body).spec
    except pydantic.ValidationError as error:
        return InvalidService(body, namespace, name, str(error))
    return ServiceView(
        body, namespace, name, spec, hold_reason(metadata, spec), tuple(owned), tuple(stuck)
    )
