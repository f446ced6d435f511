"""TEST STAND-IN for Cluster API's MachineSet and Machine controllers, for the clusterapi tests.

No Cluster API controller runs in the test cluster, so this thread plays its part, reduced to
what infscale relies on:

- it makes the MachineDeployment's Machines follow `spec.replicas` (set by infscale through the
  scale subresource) and publishes `status.replicas` and `status.selector`;
- a new Machine gets its Node (a kwok Node with the pool's labels, taints and capacity) after
  `provisioning_s`, then `status.nodeRef`;
- on a scale-down it deletes Machines marked `cluster.x-k8s.io/delete-machine` first, and
  otherwise picks at random (Cluster API's default Random delete policy), so an unmarked
  decrement would remove an arbitrary node; like Cluster API it deletes the Node, then the
  Machine.

It is not Cluster API and is not shipped: it records what it did so the tests can check infscale.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tests.integration import crds

LOG = logging.getLogger(__name__)
GROUP, VERSION = "cluster.x-k8s.io", "v1beta1"
DELETE_MACHINE = "cluster.x-k8s.io/delete-machine"
DEPLOYMENT_LABEL = "cluster.x-k8s.io/deployment-name"
CLUSTER_LABEL = "cluster.x-k8s.io/cluster-name"
CRDS = Path(__file__).with_name("clusterapi_crds.yaml")


def install_crds(api_client: client.ApiClient) -> None:
    """Create (or replace) the minimal MachineDeployment and Machine CRDs; wait until served."""
    crds.install_bodies(api_client, yaml.safe_load_all(CRDS.read_text()))


def machine_deployment(namespace: str, name: str, cluster: str = "test") -> dict[str, Any]:
    labels = {CLUSTER_LABEL: cluster, DEPLOYMENT_LABEL: name}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MachineDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "clusterName": cluster,
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"clusterName": cluster}},
        },
    }


@dataclasses.dataclass(frozen=True)
class Removal:
    machine: str
    node: str | None
    mark: str | None
    """The delete-machine annotation's value when the Machine was removed (None: unmarked)."""


class StandInMachineController(threading.Thread):
    """TEST STAND-IN (see the module docstring): reconciles one MachineDeployment."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        name: str,
        node: dict[str, Any],
        provisioning_s: float = 1.0,
        interval_s: float = 0.2,
    ) -> None:
        super().__init__(name=f"stand-in-capi-{name}", daemon=True)
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.namespace, self.md_name = namespace, name
        self.node = node
        self.provisioning_s = provisioning_s
        self.interval_s = interval_s
        self.created: list[str] = []
        self.removed: list[Removal] = []
        self.errors: list[str] = []
        self._born: dict[str, float] = {}
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.reconcile()
            except client.ApiException as error:
                self.errors.append(f"{error.status} {error.reason}")
            self._halt.wait(self.interval_s)

    def machines(self) -> list[dict[str, Any]]:
        items = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "machines",
            label_selector=f"{DEPLOYMENT_LABEL}={self.md_name}",
        )["items"]  # fmt: skip
        return list(items)

    def reconcile(self) -> None:
        md: dict[str, Any] = self.custom.get_namespaced_custom_object(  # type: ignore[assignment]
            GROUP, VERSION, self.namespace, "machinedeployments", self.md_name
        )
        replicas = int(md["spec"].get("replicas") or 0)
        machines = self.machines()
        excess = len(machines) - replicas
        if excess > 0:
            marked = [
                m for m in machines if DELETE_MACHINE in (m["metadata"].get("annotations") or {})
            ]
            others = [m for m in machines if m not in marked]
            random.shuffle(others)
            for machine in (marked + others)[:excess]:
                self._remove(machine)
        for _ in range(-excess):
            self._create_machine()
        for machine in self.machines():
            if not (machine.get("status") or {}).get("nodeRef"):
                self._provision(machine)
        selector = f"{CLUSTER_LABEL}={md['spec']['clusterName']},{DEPLOYMENT_LABEL}={self.md_name}"
        status = {"replicas": len(self.machines()), "selector": selector}
        if md.get("status") != {**(md.get("status") or {}), **status}:
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, "machinedeployments", self.md_name,
                {"status": status},
            )  # fmt: skip

    def _create_machine(self) -> None:
        name = f"{self.md_name}-{uuid.uuid4().hex[:5]}"
        cluster = "test"
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "machines",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Machine",
                "metadata": {
                    "name": name,
                    "labels": {CLUSTER_LABEL: cluster, DEPLOYMENT_LABEL: self.md_name},
                },
                "spec": {"clusterName": cluster},
            },
        )  # fmt: skip
        self._born[name] = time.monotonic()
        self.created.append(name)

    def _provision(self, machine: dict[str, Any]) -> None:
        name = machine["metadata"]["name"]
        born = self._born.setdefault(name, time.monotonic())
        if time.monotonic() - born < self.provisioning_s:
            return
        # A node name unrelated to the machine's: only status.nodeRef links them, as in a cloud.
        node_name = f"capi-{uuid.uuid4().hex[:8]}"
        capacity = {**self.node["capacity"], "pods": "110"}
        self.core.create_node(
            client.V1Node(
                metadata=client.V1ObjectMeta(
                    name=node_name,
                    labels={
                        **self.node["labels"],
                        "kubernetes.io/hostname": node_name,
                        "type": "kwok",
                    },
                    annotations={"kwok.x-k8s.io/node": "fake"},
                ),
                spec=client.V1NodeSpec(
                    taints=[client.V1Taint(**t) for t in self.node.get("taints", [])]
                ),
                status=client.V1NodeStatus(capacity=capacity, allocatable=capacity),
            )
        )
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, "machines", name,
            {"status": {"phase": "Running", "nodeRef": {"apiVersion": "v1", "kind": "Node",
                                                         "name": node_name}}},
        )  # fmt: skip

    def _remove(self, machine: dict[str, Any]) -> None:
        meta = machine["metadata"]
        node = ((machine.get("status") or {}).get("nodeRef") or {}).get("name")
        if node:
            try:
                self.core.delete_node(node)
            except client.ApiException as error:
                if error.status != 404:
                    raise
        self.custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "machines", meta["name"]
        )
        mark = (meta.get("annotations") or {}).get(DELETE_MACHINE)
        self.removed.append(Removal(meta["name"], node, mark))
        LOG.info("stand-in removed machine %s (node %s, mark %r)", meta["name"], node, mark)
