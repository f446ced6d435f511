"""NodePoolProvider backend `clusterapi`: a Cluster API MachineDeployment, resized by its scale
subresource.

Cluster API's MachineSet controller makes the MachineDeployment's Machines (and so the Nodes)
follow `spec.replicas`; on a scale-down it deletes the Machines carrying the
`cluster.x-k8s.io/delete-machine` annotation first. So infscale removes a node by marking its
Machine (the one whose `status.nodeRef.name` is the node) and then lowering replicas; Cluster API
drains and deletes the Node. infscale never deletes Node objects here.

Both directions are level-based, read from the Machines and the scale subresource each call, so a
restarted operator neither repeats a decrement nor buys a machine twice:

- remove: replicas become at most the number of Machines that are neither deleting nor marked
  (already that low: nothing to write);
- add: Machines asked for but without a Node yet (still provisioning, or not yet created by the
  MachineSet) are `pending_nodes`, which the pool controller counts before it asks for more.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Collection
from typing import Any

from kubernetes import client

from infscale.api import v1alpha1
from infscale.ports import errors

LOG = logging.getLogger(__name__)

GROUP, VERSION = "cluster.x-k8s.io", "v1beta1"
DELETE_MACHINE_ANNOTATION = "cluster.x-k8s.io/delete-machine"
DEPLOYMENT_NAME_LABEL = "cluster.x-k8s.io/deployment-name"
MARK = "infscale"
"""Value of the delete-machine annotation when infscale set it (Cluster API reads only the key)."""

Manifest = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class _State:
    """One reading of a MachineDeployment: its scale and its Machines."""

    replicas: int
    resource_version: str
    machines: list[Manifest]

    def deleting(self, machine: Manifest) -> bool:
        return bool(machine["metadata"].get("deletionTimestamp"))

    def marked(self, machine: Manifest) -> bool:
        annotations = machine["metadata"].get("annotations") or {}
        return not self.deleting(machine) and DELETE_MACHINE_ANNOTATION in annotations

    @property
    def kept(self) -> list[Manifest]:
        """Machines that stay: neither deleting nor marked for deletion."""
        return [m for m in self.machines if not self.deleting(m) and not self.marked(m)]


def _node_of(machine: Manifest) -> str | None:
    ref = (machine.get("status") or {}).get("nodeRef") or {}
    name = ref.get("name")
    return str(name) if name else None


class ClusterApiPools:
    """Resizes the pool's MachineDeployment; picks the machine to remove by its node."""

    owns_nodes = True

    def __init__(self, api_client: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api_client)

    def create_nodes(
        self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, count: int
    ) -> list[str]:
        namespace, name = _ref(pool, spec)
        state = self._read(namespace, name)
        live = [m for m in state.machines if not state.deleting(m)]
        if state.replicas < len(live) and any(state.marked(m) for m in live):
            # A removal is released but Cluster API has not started it: raising replicas now
            # would keep the marked machine. Cluster API acts within seconds; the next cycle adds.
            LOG.info("pool %s: %s/%s is about to remove a machine", pool, namespace, name)
            return []
        replicas = min(state.replicas + count, spec.max_nodes)
        if replicas <= state.replicas:
            LOG.info("pool %s: %s/%s is at maxNodes", pool, namespace, name)
            return []
        self._scale(namespace, name, state, replicas)
        return [f"{namespace}/{name}#{i + 1}" for i in range(state.replicas, replicas)]

    def pending_nodes(
        self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, listed: Collection[str]
    ) -> int:
        namespace, name = _ref(pool, spec)
        state = self._read(namespace, name)
        # A Node that registered after the caller listed the pool's nodes is still pending to
        # it: counted in neither, its machine would be bought twice.
        seen = sum(1 for m in state.machines if not state.deleting(m) and _node_of(m) in listed)
        return max(0, state.replicas - seen)

    def delete_node(self, pool: str, spec: v1alpha1.InferenceNodePoolSpec, node: str) -> None:
        namespace, name = _ref(pool, spec)
        state = self._read(namespace, name)
        machine = next((m for m in state.machines if _node_of(m) == node), None)
        if machine is None:
            raise errors.ClusterError(
                f"node {node} is not a Machine of MachineDeployment {namespace}/{name}"
            )
        if state.deleting(machine):
            return  # Cluster API is removing it
        machine_name = machine["metadata"]["name"]
        annotations = machine["metadata"].get("annotations") or {}
        if DELETE_MACHINE_ANNOTATION not in annotations:
            self._patch_machine(namespace, machine_name, {DELETE_MACHINE_ANNOTATION: MARK})
            annotations = {**annotations, DELETE_MACHINE_ANNOTATION: MARK}
            machine = {**machine, "metadata": {**machine["metadata"], "annotations": annotations}}
            state = dataclasses.replace(
                state, machines=[machine if _node_of(m) == node else m for m in state.machines]
            )
        target = min(state.replicas, len(state.kept))
        if target == state.replicas:
            return  # the decrement for every marked machine is already made
        if state.replicas > len(state.machines):
            raise errors.ClusterError(
                f"MachineDeployment {namespace}/{name} is still creating machines; "
                f"removing {node} waits for it"
            )
        foreign = [
            m["metadata"]["name"]
            for m in state.machines
            if state.marked(m) and m["metadata"]["name"] != machine_name
            and (m["metadata"].get("annotations") or {}).get(DELETE_MACHINE_ANNOTATION) != MARK
        ]  # fmt: skip
        if foreign:
            # Cluster API could delete those instead of the empty node's machine.
            raise errors.ClusterError(
                f"machine(s) {', '.join(foreign)} of {namespace}/{name} are marked for deletion "
                "by someone else; infscale lowers replicas once they are gone"
            )
        self._scale(namespace, name, state, target)

    def _read(self, namespace: str, name: str) -> _State:
        try:
            response = self._custom.get_namespaced_custom_object_scale(
                GROUP, VERSION, namespace, "machinedeployments", name, _preload_content=False
            )
            scale: Manifest = json.loads(response.data)  # type: ignore[attr-defined]
            # Cluster API publishes the Machines' selector in status (the scale's labelSelector).
            selector = (scale.get("status") or {}).get("selector") or (
                f"{DEPLOYMENT_NAME_LABEL}={name}"
            )
            response = self._custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, "machines", label_selector=selector,
                _preload_content=False,
            )  # fmt: skip
        except client.ApiException as error:
            raise _error(f"reading MachineDeployment {namespace}/{name}", error) from error
        machines: list[Manifest] = json.loads(response.data)["items"]  # type: ignore[attr-defined]
        return _State(
            replicas=int((scale.get("spec") or {}).get("replicas") or 0),
            resource_version=str(scale["metadata"].get("resourceVersion") or ""),
            machines=machines,
        )

    def _scale(self, namespace: str, name: str, state: _State, replicas: int) -> None:
        # The resourceVersion makes the write conditional: a concurrent change is a conflict
        # (retried next cycle from a fresh reading), never a lost update.
        body = {
            "metadata": {"resourceVersion": state.resource_version},
            "spec": {"replicas": replicas},
        }
        try:
            self._custom.patch_namespaced_custom_object_scale(
                GROUP, VERSION, namespace, "machinedeployments", name, body
            )
        except client.ApiException as error:
            raise _error(
                f"scaling MachineDeployment {namespace}/{name} to {replicas}", error
            ) from error
        LOG.info(
            "MachineDeployment %s/%s: replicas %d -> %d", namespace, name, state.replicas, replicas
        )

    def _patch_machine(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        try:
            self._custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                "machines",
                name,
                {"metadata": {"annotations": annotations}},
            )
        except client.ApiException as error:
            raise _error(f"marking Machine {namespace}/{name}", error) from error


def _ref(pool: str, spec: v1alpha1.InferenceNodePoolSpec) -> tuple[str, str]:
    if spec.provider.clusterapi is None:
        raise errors.ClusterError(f"pool {pool} has no clusterapi provider settings")
    ref = spec.provider.clusterapi.machine_deployment
    return ref.namespace, ref.name


def _error(what: str, error: client.ApiException) -> errors.ClusterError:
    return errors.ClusterError(
        f"{what}: " + errors.api_message(error.body, str(error.reason)), status=error.status
    )
