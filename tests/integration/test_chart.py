"""The Helm chart against the real API server: lint, render, apply, Pod Security, RBAC."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, utils

from infscale.adapters.reporting import KubernetesReporter
from tests.integration import waiting

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "infscale"
SNAPSHOT = Path(__file__).with_name("rbac_snapshot.txt")
KUBE_VERSION = "v1.33.13"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH: run hack/test.sh (it builds the pinned tools)")
    return path


def render(release: str, namespace: str, *sets: str) -> list[dict[str, Any]]:
    args = [tool("helm"), "template", release, str(CHART), "--namespace", namespace,
            "--kube-version", KUBE_VERSION, *(f"--set={s}" for s in sets)]  # fmt: skip
    output = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(output) if d]


def test_helm_lint_passes() -> None:
    result = subprocess.run(
        [tool("helm"), "lint", str(CHART), "--kube-version", KUBE_VERSION],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_invalid_values_are_rejected_by_the_schema() -> None:
    result = subprocess.run(
        [tool("helm"), "template", "x", str(CHART), "--set", "operator.maxNodeChangesPerCycle=0"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "maxNodeChangesPerCycle" in result.stderr


@pytest.fixture
def installed(api_client: client.ApiClient, namespace: str, unique_name: str) -> Iterator[str]:
    """The rendered chart applied to the real API server (RBAC for real; pods never run)."""
    release = f"infscale-{unique_name}"
    documents = render(release, namespace, "rbac.createNodes=true")
    rbac = client.RbacAuthorizationV1Api(api_client)
    for document in documents:
        if document["kind"] == "Deployment":
            document["spec"]["replicas"] = 0  # kwok would "run" it; only the object is tested
        utils.create_from_dict(api_client, document, namespace=namespace)
    yield release
    rbac.delete_cluster_role_binding(release)
    rbac.delete_cluster_role(release)


def test_rbac_matches_the_snapshot_and_is_least_privilege(installed: str, namespace: str) -> None:
    account = f"system:serviceaccount:{namespace}:{installed}"
    output = subprocess.run(
        [tool("kubectl"), "auth", "can-i", "--list", f"--as={account}", "-n", namespace],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    # Resource rules only; URL paths and self-reviews are granted to every authenticated user.
    lines = sorted(
        " ".join(line.split())
        for line in output.splitlines()[1:]
        if line.split() and not line.split()[0].startswith(("[", "selfsubject"))
    )
    assert not any(line.split()[-1] == "[*]" for line in lines), "no wildcard verbs"
    granted = "\n".join(lines) + "\n"
    assert granted == SNAPSHOT.read_text(), (
        f"the ServiceAccount's permissions changed; review and update {SNAPSHOT.name}:\n{granted}"
    )
    cluster_admin = subprocess.run(
        [tool("kubectl"), "auth", "can-i", "delete", "secrets", "-A", f"--as={account}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert cluster_admin.stdout.strip() == "no"


def test_the_service_account_posts_and_counts_events(
    api_client: client.ApiClient, core: client.CoreV1Api, installed: str, namespace: str
) -> None:
    """The recorder reads and patches an Event to count it again: the chart's RBAC allows it
    (it granted only create once, and every Event of an operator on the chart was refused)."""
    subject = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"{installed}-subject"))
    )
    involved = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": subject.metadata.name, "namespace": namespace,
                     "uid": subject.metadata.uid},
    }  # fmt: skip
    account = client.ApiClient(api_client.configuration)
    account.set_default_header("Impersonate-User", f"system:serviceaccount:{namespace}:{installed}")
    for _ in range(2):
        KubernetesReporter(account).record(involved, "Normal", "Scaled", "variant l4: 1 -> 2")
    events = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={subject.metadata.name}"
    ).items
    assert [(e.reason, e.count) for e in events] == [("Scaled", 2)]


def test_restricted_pod_security_admits_the_operator_pod(
    core: client.CoreV1Api, unique_name: str
) -> None:
    name = f"restricted-{unique_name}"
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    try:
        deployment = next(d for d in render("infscale", name) if d["kind"] == "Deployment")
        template = deployment["spec"]["template"]
        metadata = {"name": "operator", **template["metadata"]}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}
        pod["spec"]["serviceAccountName"] = "default"
        core.create_namespaced_pod(name, pod, dry_run="All")  # admitted
        pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
        with pytest.raises(client.ApiException) as rejected:
            core.create_namespaced_pod(name, pod, dry_run="All")
        assert rejected.value.status == 403
        assert "restricted" in str(rejected.value.body)
    finally:
        core.delete_namespace(name)


SERVICEMONITOR_CRD = Path(__file__).with_name("testdata") / "servicemonitor-crd.yaml"


@pytest.fixture
def servicemonitor_crd(api_client: client.ApiClient) -> Iterator[None]:
    """The ServiceMonitor kind served by the API server (a minimal test CRD, see its header);
    removed afterwards unless it was there before (a real Prometheus Operator's)."""
    extensions = client.ApiextensionsV1Api(api_client)
    body = yaml.safe_load(SERVICEMONITOR_CRD.read_text())
    name = body["metadata"]["name"]
    try:
        extensions.create_custom_resource_definition(body)
        created = True
    except client.ApiException as error:
        if error.status != 409:  # AlreadyExists: a real Prometheus Operator's, or another run's
            raise
        created = False

    def established() -> bool:
        crd = extensions.read_custom_resource_definition(name)
        conditions = (crd.status and crd.status.conditions) or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    waiting.until(established, timeout_s=30, what=f"CRD {name} Established")
    yield
    if created:
        extensions.delete_custom_resource_definition(name)


def test_servicemonitor_and_dashboard_apply_to_the_api_server(
    api_client: client.ApiClient, namespace: str, servicemonitor_crd: None
) -> None:
    release = "infscale-monitoring"
    documents = render(
        release, namespace, "replicas=0", "serviceMonitor.enabled=true",
        "serviceMonitor.labels.release=kps", "grafanaDashboard.enabled=true",
    )  # fmt: skip
    # Only the namespaced objects: the cluster-wide RBAC is applied by the `installed` fixture.
    namespaced = [d for d in documents if d["kind"] not in ("ClusterRole", "ClusterRoleBinding")]
    kinds = sorted(d["kind"] for d in namespaced)
    assert kinds == [
        "ConfigMap", "Deployment", "Role", "RoleBinding", "Service", "ServiceAccount",
        "ServiceMonitor",
    ]  # fmt: skip
    custom = client.CustomObjectsApi(api_client)
    for document in namespaced:
        if document["kind"] == "ServiceMonitor":
            custom.create_namespaced_custom_object(
                "monitoring.coreos.com", "v1", namespace, "servicemonitors", document
            )
        else:
            utils.create_from_dict(api_client, document, namespace=namespace)
    [rendered] = [d for d in namespaced if d["kind"] == "ServiceMonitor"]
    stored = custom.get_namespaced_custom_object(
        "monitoring.coreos.com", "v1", namespace, "servicemonitors", release
    )
    assert stored["spec"] == rendered["spec"], "the API server pruned or changed the spec"
    core = client.CoreV1Api(api_client)
    service = core.read_namespaced_service(f"{release}-metrics", namespace)
    assert [p.port for p in service.spec.ports] == [8081]
    config_map = core.read_namespaced_config_map(f"{release}-grafana-dashboard", namespace)
    assert config_map.metadata.labels["grafana_dashboard"] == "1"
    assert json.loads(config_map.data["infscale.json"])["uid"] == "infscale-operator"
    deployment = client.AppsV1Api(api_client).read_namespaced_deployment(release, namespace)
    assert deployment.spec.replicas == 0


def test_placement_and_disruption_budget_apply_to_the_api_server(
    api_client: client.ApiClient, namespace: str
) -> None:
    release = "infscale-placement"
    documents = render(
        release, namespace, "replicas=2", "priorityClassName=system-cluster-critical",
        "nodeSelector.infscale\\.dev/role=system", "tolerations[0].key=CriticalAddonsOnly",
        "tolerations[0].operator=Exists", "topologySpreadConstraints[0].maxSkew=1",
        "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
        "topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
    )  # fmt: skip
    rendered = {
        d["kind"]: d for d in documents if d["kind"] in ("Deployment", "PodDisruptionBudget")
    }
    rendered["Deployment"]["spec"]["replicas"] = 0  # kwok would "run" it; only the object is tested
    for document in rendered.values():
        utils.create_from_dict(api_client, document, namespace=namespace)
    budget = client.PolicyV1Api(api_client).read_namespaced_pod_disruption_budget(
        release, namespace
    )
    deployment = client.AppsV1Api(api_client).read_namespaced_deployment(release, namespace)
    selector = rendered["Deployment"]["spec"]["selector"]["matchLabels"]
    assert budget.spec.max_unavailable == 1
    assert budget.spec.selector.match_labels == selector == deployment.spec.selector.match_labels
    # Nothing of the placement was pruned or changed by the API server.
    stored = api_client.sanitize_for_serialization(deployment.spec.template.spec)
    pod = rendered["Deployment"]["spec"]["template"]["spec"]
    for field in ("priorityClassName", "nodeSelector", "tolerations", "affinity",
                  "topologySpreadConstraints"):  # fmt: skip
        assert stored[field] == pod[field], field
    assert stored["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"] == selector
