"""`infscale bench-live`: infscale against the real autoscalers, live, on the same traffic.

One trace is replayed through the model-server EMULATOR (time-compressed like the demo) once per
policy, each on a fresh set of kwok nodes of the local cluster:

- **infscale**: the operator (as the chart's ServiceAccount when ``--operator-kubeconfig`` is
  given) sizes the examples' ``chat`` service (L4 and H100 variants) and its node pools;
- **hpa+karpenter**: kube-controller-manager's own HPA (autoscaling/v2) scales the chat service's
  L4 Deployment on its completed requests per replica, read from Prometheus through the real
  prometheus-adapter, and the real Karpenter (kwok provider) brings and removes the L4 nodes, at
  each of several HPA targets (fractions of the variant's capacityRps, as the simulator's sweep).
  The scale-down stabilization window is swept in the simulator first (every target at every
  ``--hpa-windows``); each target runs live at the window its replay ranks best (the cheapest
  reaching infscale's replayed attainment, else the one with the highest attainment).

Every duration is divided by ``--speed``: node provisioning (the pool's, and Karpenter's
``nodeRegistrationDelay``), replica startup, the scale-down windows, the node cool-down (and
Karpenter's ``consolidateAfter``) and the planner's own memories and holds (``timeScale``), as
in the simulator's replay of the same traffic; both scalers decide every 15 s of trace time (the
HPA's sync period is kube-controller-manager's flag, set by hack/bench-live.sh).

What each run scores, the same way for every policy: node cost from the lifetimes of the pools'
machines (from the request: a Node infscale creates, a NodeClaim Karpenter launches) times the
pool's price (in trace time: wall hours x speed), SLO attainment from the
emulator's ground truth (requests completed within the SLO threshold over requests arrived),
scaling events (changes of a Deployment's desired replicas), the p95 latency of all requests.
hack/bench-live.sh builds the peers, starts a cluster of its own and runs this.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import pathlib
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import yaml
from kubernetes import client

from infscale.adapters import kube_client
from infscale.api import v1alpha1
from infscale.cli import demo
from infscale.controller import desired

if TYPE_CHECKING:
    from rich.console import Console

    from infscale.sim import autoscaler

GROUP, VERSION = v1alpha1.GROUP, v1alpha1.VERSION
NAMESPACE, SERVICE, HPA_VARIANT = "team-a", "chat", "l4"
POOLS = ("gpu-h100", "gpu-l4")
POOL_LABEL = "infscale.dev/pool"
KARPENTER_POOL = "karpenter.sh/nodepool"
SAMPLE_S = 2.0
DECISION_TRACE_S = 15.0  # the HPA's default sync period and the operator's default interval
EXTERNAL_METRICS_API = "v1beta1.external.metrics.k8s.io"
RATE_WINDOW_S = 5
"""Both scalers read request rates over this window of wall time: five 1 s scrapes (75 s of
trace time at x15, the operator's shortest window), so neither reacts to a slower signal than the
other; the replay in the simulator reads the same window in trace time (the suite's, 30 s)."""
START_DELAY_S = 15.0
"""Wall seconds the emulator serves its pods' zero counters before the first request: Prometheus
finds the target (file_sd, 2 s) and scrapes it (1 s), and prometheus-adapter lists the series
(every 5 s, ``--metrics-relist-interval``) before traffic starts. Without it the HPA saw no metric
for the first 7 s of wall time (105 s of trace at x15) while the operator, which queries
Prometheus directly, saw the traffic after 2-3 s: a handicap of the setup, not of the HPA (a
running service's series are known)."""


def adapter_rules(window_s: int = RATE_WINDOW_S) -> dict[str, Any]:
    """prometheus-adapter's configuration: the service's completed requests per second."""
    return {
        "externalRules": [
            {
                # Completed requests per second of an InferenceService's pods, by namespace.
                "seriesQuery": 'vllm:request_success_total{namespace!="",infscale_dev_service!=""}',
                "resources": {"overrides": {"namespace": {"resource": "namespace"}}},
                "name": {"matches": "^vllm:request_success_total$", "as": "requests_per_second"},
                "metricsQuery": (
                    f"sum(rate(<<.Series>>{{<<.LabelMatchers>>}}[{window_s}s])) by (<<.GroupBy>>)"
                ),
            }
        ]
    }


@dataclasses.dataclass
class Run:
    """One policy's replay: its samples and the emulator's totals at the end."""

    policy: str
    times_s: list[float] = dataclasses.field(default_factory=list)
    usd_per_hour: list[float] = dataclasses.field(default_factory=list)
    replicas: list[int] = dataclasses.field(default_factory=list)
    ready: list[int] = dataclasses.field(default_factory=list)
    rps: list[float] = dataclasses.field(default_factory=list)
    events: int = 0
    totals: dict[str, Any] = dataclasses.field(default_factory=dict)

    def record(self, speed: float) -> dict[str, Any]:
        hours = sum(
            (b - a) / 3600 * usd
            for a, b, usd in zip(self.times_s, self.times_s[1:], self.usd_per_hour, strict=False)
        )
        arrived = self.totals.get("arrived") or 0
        return {
            "policy": self.policy,
            "cost_usd": round(hours * speed, 4),
            "slo_attainment": round(self.totals.get("within_slo", 0) / arrived, 4)
            if arrived
            else None,
            "events": self.events,
            "p95_latency_s": self.totals.get("latency_s"),
            "requests": arrived,
            "sim_cost_usd": None,
            "sim_slo_attainment": None,
        }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=pathlib.Path, help="results JSON (a PNG is written beside)")
    parser.add_argument("--trace", default="synthetic", help="synthetic, poisson:RPS or a file")
    parser.add_argument("--speed", type=float, default=15.0, help="time compression of the trace")
    parser.add_argument("--rate-scale", type=float, default=2.0, help="multiply the trace's rate")
    parser.add_argument("--duration", type=float, default=240.0, help="seconds of wall time")
    parser.add_argument(
        "--hpa-fractions",
        default="0.5,0.75,1.0",
        help="HPA targets as fractions of the L4 variant's capacityRps (comma-separated)",
    )
    parser.add_argument(
        "--hpa-windows",
        default="60,300,600",
        help="HPA scale-down stabilization windows swept in the replay, seconds of trace time "
        "(comma-separated); each target runs live at its best (one value: that window)",
    )
    parser.add_argument("--policies", default="infscale,hpa", help="infscale and/or hpa")
    parser.add_argument("--prometheus-url", default=os.environ.get("INFSCALE_PROMETHEUS_URL"))
    parser.add_argument(
        "--targets-dir",
        default=os.environ.get("INFSCALE_PROMETHEUS_TARGETS_DIR"),
        type=pathlib.Path,
    )
    parser.add_argument(
        "--examples", type=pathlib.Path, default=pathlib.Path("examples"), help="manifests"
    )
    parser.add_argument(
        "--operator-kubeconfig",
        type=pathlib.Path,
        default=os.environ.get("INFSCALE_DEMO_OPERATOR_KUBECONFIG"),
        help="kubeconfig the operator runs with (hack/bench-live.sh: the chart's ServiceAccount)",
    )


def scenario(examples: pathlib.Path, speed: float) -> list[dict[str, Any]]:
    """The chat service, its namespace and the GPU pools from examples/, time-compressed."""
    documents = [
        d for p in sorted(examples.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d
    ]
    wanted = [
        d
        for d in documents
        if (d["kind"] == "Namespace" and d["metadata"]["name"] == NAMESPACE)
        or (d["kind"] == "InferenceService" and d["metadata"]["name"] == SERVICE)
        or (d["kind"] == "InferenceNodePool" and d["metadata"]["name"] in POOLS)
    ]
    return demo.compress(wanted, speed)


def _kind(documents: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


def _kubectl(*args: str, stdin: str | None = None) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise SystemExit("kubectl is not on PATH: source the env file hack/cluster-up.sh prints")
    subprocess.run(  # noqa: S603 - kubectl from PATH, our own arguments
        [kubectl, *args], input=stdin, text=True, check=True, stdout=subprocess.DEVNULL
    )


def _apply(documents: Sequence[Mapping[str, Any]]) -> None:
    _kubectl(
        "apply", "-f", "-", stdin=yaml.safe_dump_all([dict(d) for d in documents], sort_keys=False)
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _wait(what: str, ready: Any, timeout_s: float, console: Console) -> None:
    started = time.monotonic()
    with console.status(f"waiting: {what}"):
        while not ready():
            if time.monotonic() - started > timeout_s:
                raise SystemExit(f"timed out after {timeout_s:.0f} s waiting for {what}")
            time.sleep(1)


def billed_pools(nodes: Sequence[Any], nodeclaims: Sequence[Mapping[str, Any]]) -> list[str]:
    """The pools of the nodes no NodeClaim owns, and of every NodeClaim (``karpenter.sh/nodepool``,
    our NodePools are named after the pools)."""
    owned = [n for n in nodes if KARPENTER_POOL not in (n.metadata.labels or {})]
    return [n.metadata.labels.get(POOL_LABEL, "") for n in owned] + [
        c["metadata"].get("labels", {}).get(KARPENTER_POOL, "") for c in nodeclaims
    ]


class Cluster:
    """The API calls the runs share."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def pool_nodes(self) -> list[Any]:
        return list(
            self.core.list_node(label_selector=f"{POOL_LABEL} in ({','.join(POOLS)})").items
        )

    def billed_pools(self, nodes: Sequence[Any]) -> list[str]:
        """The pool of every machine billed now: infscale's nodes from their creation (they are
        NotReady while they provision), Karpenter's from its NodeClaim's (the instance is
        launched, and billed, before its Node registers) until the NodeClaim is gone."""
        claims: list[dict[str, Any]] = []
        try:
            listed = self.custom.list_cluster_custom_object("karpenter.sh", "v1", "nodeclaims")
            assert isinstance(listed, dict)
            claims = listed["items"]
        except client.ApiException as error:
            if error.status != 404:  # 404: Karpenter's CRDs are not installed (yet)
                raise
        return billed_pools(nodes, claims)

    def deployments(self) -> dict[str, tuple[int, int]]:
        """The chat service's Deployments: name -> (desired, ready) replicas."""
        listed = self.apps.list_namespaced_deployment(
            NAMESPACE, label_selector=desired.selector(SERVICE)
        ).items
        return {
            str(d.metadata and d.metadata.name): (
                d.spec.replicas or 0,
                (d.status and d.status.ready_replicas) or 0,
            )
            for d in listed
        }

    def remove_namespace(self, console: Console) -> None:
        with contextlib.suppress(client.ApiException):
            self.core.delete_namespace(NAMESPACE)

        def gone() -> bool:
            try:
                self.core.read_namespace(NAMESPACE)
            except client.ApiException as error:
                return bool(error.status == 404)
            return False

        _wait(f"namespace {NAMESPACE} deleted", gone, 180, console)


def _emulator_totals(targets_file: pathlib.Path) -> dict[str, Any]:
    address = json.loads(targets_file.read_text())[0]["targets"][0]
    with urllib.request.urlopen(f"http://{address}/truth?window=1", timeout=10) as response:
        truth: dict[str, Any] = json.loads(response.read())
    totals: dict[str, Any] = truth[f"{NAMESPACE}/{SERVICE}"]["totals"]
    return totals


def replay(
    run: Run,
    cluster: Cluster,
    prices: Mapping[str, float],
    args: argparse.Namespace,
    console: Console,
) -> None:
    """Traffic once the first replica is Ready (after START_DELAY_S of zero counters), sampled
    every SAMPLE_S from its first request; the emulator's totals."""
    _wait(
        "the first chat replica Ready",
        lambda: any(r >= 1 for _, r in cluster.deployments().values()),
        300,
        console,
    )
    targets = args.targets_dir / "infscale-bench-live.json"
    targets.unlink(missing_ok=True)
    emulator = demo.start(
        ["emulator", "--trace", args.trace, "--speed", str(args.speed),
         "--rate-scale", str(args.rate_scale), "--duration", str(args.duration + 10),
         "--namespace", NAMESPACE, "--start-delay", str(START_DELAY_S),
         "--targets-file", str(targets)],
        str(args.workdir / f"{re.sub(r'[^a-z0-9.]+', '-', run.policy)}emulator.log"),
    )  # fmt: skip
    from rich.progress import Progress

    last: dict[str, int] = {}
    started = time.monotonic() + START_DELAY_S
    try:
        _wait("the emulator's target file", targets.exists, 30, console)
        with console.status("the emulator's series are being discovered before its traffic"):
            time.sleep(max(0.0, started - time.monotonic()))
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(run.policy, total=args.duration)
            while (now := time.monotonic() - started) < args.duration:
                nodes = cluster.pool_nodes()
                deployments = cluster.deployments()
                for name, (want, _) in deployments.items():
                    run.events += name in last and last[name] != want
                    last[name] = want
                run.times_s.append(now)
                run.usd_per_hour.append(
                    sum(prices.get(pool, 0.0) for pool in cluster.billed_pools(nodes))
                )
                run.replicas.append(sum(w for w, _ in deployments.values()))
                run.ready.append(sum(r for _, r in deployments.values()))
                progress.update(
                    task,
                    completed=now,
                    description=f"{run.policy}: {run.ready[-1]} ready replicas, "
                    f"{len(nodes)} nodes, ${run.usd_per_hour[-1]:.2f}/h",
                )
                time.sleep(SAMPLE_S)
        run.totals = _emulator_totals(targets)
    finally:
        _stop(emulator)


def run_infscale(
    cluster: Cluster, documents: list[dict[str, Any]], args: argparse.Namespace, console: Console
) -> Run:
    interval = max(0.5, DECISION_TRACE_S / args.speed)
    _apply(_kind(documents, "InferenceNodePool"))
    _apply(_kind(documents, "Namespace") + _kind(documents, "InferenceService"))
    operator = demo.start(
        ["operator", "--interval", f"{interval:g}", "--prometheus-url", args.prometheus_url,
         "--rate-window", str(RATE_WINDOW_S), "--node-cooldown", f"{120 / args.speed:g}",
         "--arrival-rate-query", demo.DEMO_ARRIVALS,
         "--planner", json.dumps({"timeScale": args.speed})],
        str(args.workdir / "infscale-operator.log"),
        args.operator_kubeconfig,
    )  # fmt: skip
    run = Run("infscale")
    try:
        replay(run, cluster, _prices(documents), args, console)
    finally:
        _stop(operator)
        cluster.remove_namespace(console)
        for pool in _kind(documents, "InferenceNodePool"):
            cluster.custom.delete_cluster_custom_object(
                GROUP, VERSION, "inferencenodepools", pool["metadata"]["name"]
            )
        for node in cluster.pool_nodes():  # the operator's kwok nodes, once it has stopped
            cluster.core.delete_node(node.metadata.name)
    return run


def _prices(documents: Sequence[dict[str, Any]]) -> dict[str, float]:
    return {
        d["spec"]["node"]["labels"][POOL_LABEL]: float(d["spec"]["usdPerHour"])
        for d in _kind(documents, "InferenceNodePool")
    }


@contextlib.contextmanager
def _process(
    command: list[str], log: pathlib.Path, env: Mapping[str, str] | None = None
) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - the pinned peers from the tools cache
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        yield
    finally:
        _stop(process)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not on PATH: run hack/tools.sh adapter karpenter")
    return found


@contextlib.contextmanager
def prometheus_adapter(prometheus_url: str, workdir: pathlib.Path) -> Iterator[None]:
    """The real prometheus-adapter serving :func:`adapter_rules` as the cluster's external metrics
    API: an ExternalName Service to localhost (no kube-proxy here, and Endpoints may not point at
    loopback) and the APIService, both removed afterwards. The cluster is $KUBECONFIG's."""
    kubeconfig, port = os.environ["KUBECONFIG"], _free_port()
    rules = workdir / "adapter-rules.yaml"
    rules.write_text(yaml.safe_dump(adapter_rules()))
    command = [
        _tool("prometheus-adapter"), f"--prometheus-url={prometheus_url}",
        f"--config={rules}", f"--lister-kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
        f"--secure-port={port}", "--bind-address=127.0.0.1",
        f"--cert-dir={workdir / 'adapter-certs'}", "--metrics-relist-interval=5s",
    ]  # fmt: skip
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "infscale-bench-adapter", "namespace": "default"},
        "spec": {
            "type": "ExternalName",
            "externalName": "localhost",
            "ports": [{"port": port, "targetPort": port}],
        },
    }
    api_service = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": EXTERNAL_METRICS_API},
        "spec": {
            "group": "external.metrics.k8s.io",
            "version": "v1beta1",
            "service": {"namespace": "default", "name": "infscale-bench-adapter", "port": port},
            "insecureSkipTLSVerify": True,
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
        },
    }
    with _process(command, workdir / "prometheus-adapter.log"):
        _apply([service, api_service])
        try:
            yield
        finally:
            _kubectl("delete", "--ignore-not-found", f"apiservice/{EXTERNAL_METRICS_API}")
            _kubectl("delete", "--ignore-not-found", "-n", "default",
                     "service/infscale-bench-adapter")  # fmt: skip


def instance_type(pool: Mapping[str, Any]) -> dict[str, Any]:
    """Karpenter kwok's instance type for an InferenceNodePool: its node shape (and 110 pod
    slots, the kubelet's default) at its price, on demand, in one zone."""
    spec = pool["spec"]
    requirement = [
        ("karpenter.sh/capacity-type", "on-demand"), ("topology.kubernetes.io/zone", "zone-a"),
    ]  # fmt: skip
    return {
        "name": pool["metadata"]["name"],
        "architecture": "amd64",
        "operatingSystems": ["linux"],
        "resources": {"pods": "110", **spec["node"]["capacity"]},
        "offerings": [
            {
                "Price": spec["usdPerHour"],
                "Available": True,
                "Requirements": [
                    {"key": key, "operator": "In", "values": [value]} for key, value in requirement
                ],
            }
        ],
    }


def consolidate_after_wall_s(speed: float) -> int:
    """Karpenter's ``consolidateAfter``: infscale's default node cool-down (120 s), compressed."""
    return max(1, round(120 / speed))


def karpenter_model(speed: float) -> autoscaler.Karpenter:
    """The replay's model of that Karpenter, in trace time: its own periods (wall seconds in the
    binary, not compressed) stretched by ``speed`` as the live run sees them."""
    from infscale.sim import autoscaler

    return autoscaler.Karpenter(
        consolidate_after_s=consolidate_after_wall_s(speed) * speed,
        validation_s=15.0 * speed,
        termination_s=5.0 * speed,
        resync_s=5.0 * speed,
        poll_s=10.0 * speed,
        scan_interval_s=1.0 * speed,
    )


@contextlib.contextmanager
def karpenter(
    api: client.ApiClient, pool: Mapping[str, Any], speed: float, workdir: pathlib.Path
) -> Iterator[None]:
    """The real Karpenter (kwok provider) in place of an InferenceNodePool: a NodePool whose nodes
    have the pool's shape, labels, taints and price (:func:`instance_type`), registered after the
    pool's provisioning time; empty nodes go after infscale's default node cool-down (120 s),
    both divided by ``speed``. Its nodes are gone before it stops."""
    extensions = client.ApiextensionsV1Api(api)
    for path in sorted(
        (pathlib.Path(_tool("karpenter-kwok")).parent.parent / "crds").glob("*.yaml")
    ):
        try:
            extensions.create_custom_resource_definition(yaml.safe_load(path.read_text()))
        except client.ApiException as error:
            if error.status != 409:  # 409: installed already
                raise
    spec, name = pool["spec"], pool["metadata"]["name"]
    types_file = workdir / f"instance-types-{name}.json"
    types_file.write_text(json.dumps([instance_type(pool)]))
    command = [
        _tool("karpenter-kwok"), "--disable-leader-election",
        f"--metrics-port={_free_port()}", f"--health-probe-port={_free_port()}",
        f"--instance-types-file-path={types_file}",
    ]  # fmt: skip
    delay_s = spec.get("provisioningSeconds", 0)
    node_class = {
        "apiVersion": "karpenter.kwok.sh/v1alpha1",
        "kind": "KWOKNodeClass",
        "metadata": {"name": name},
        "spec": {"nodeRegistrationDelay": f"{delay_s}s"},
    }
    node_pool = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"labels": spec["node"].get("labels", {})},
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.kwok.sh",
                        "kind": "KWOKNodeClass",
                        "name": name,
                    },
                    "requirements": [
                        {
                            "key": "node.kubernetes.io/instance-type",
                            "operator": "In",
                            "values": [name],
                        },
                    ],
                    "taints": spec["node"].get("taints", []),
                    "expireAfter": "Never",
                },
            },
            "limits": {"nodes": str(spec.get("maxNodes", 100))},
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": f"{consolidate_after_wall_s(speed)}s",
            },
        },
    }
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    with _process(command, workdir / f"karpenter-{name}.log", {"SYSTEM_NAMESPACE": "kube-system"}):
        custom.create_cluster_custom_object(
            "karpenter.kwok.sh", "v1alpha1", "kwoknodeclasses", node_class
        )
        custom.create_cluster_custom_object("karpenter.sh", "v1", "nodepools", node_pool)
        try:
            yield
        finally:
            custom.delete_cluster_custom_object("karpenter.sh", "v1", "nodepools", name)
            deadline = time.monotonic() + 120
            while (
                time.monotonic() < deadline
                and core.list_node(label_selector=f"karpenter.sh/nodepool={name}").items
            ):
                time.sleep(1)  # Karpenter removes its nodes (finalizers) while it runs
            custom.delete_cluster_custom_object(
                "karpenter.kwok.sh", "v1alpha1", "kwoknodeclasses", name
            )


def run_hpa(
    cluster: Cluster,
    documents: list[dict[str, Any]],
    setting: HpaSetting,
    args: argparse.Namespace,
    console: Console,
) -> Run:
    """The L4 Deployment the operator would render, scaled by the real HPA on nodes from the real
    Karpenter; the InferenceService is there for the emulator only (no operator runs)."""
    [service] = _kind(documents, "InferenceService")
    service = {**service, "spec": {**service["spec"], "mode": "Recommend"}}
    spec = v1alpha1.InferenceService.model_validate(service).spec
    [variant] = [v for v in spec.variants if v.name == HPA_VARIANT]
    [pool] = [
        p
        for p in _kind(documents, "InferenceNodePool")
        if p["metadata"]["name"] == variant.node_pool
    ]
    run = Run(setting.name(variant.capacity_rps))
    _apply([*_kind(documents, "Namespace"), service])
    owner = cluster.custom.get_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "inferenceservices", SERVICE
    )
    assert isinstance(owner, dict)
    body = desired.deployment(
        service=spec, service_name=SERVICE, namespace=NAMESPACE,
        owner_uid=owner["metadata"]["uid"], variant=variant,
        pool=v1alpha1.InferenceNodePool.model_validate(pool).spec, replicas=1,
    )  # fmt: skip
    body["metadata"]["labels"].pop("app.kubernetes.io/managed-by", None)
    hpa = hpa_manifest(
        body["metadata"]["name"],
        (max(1, spec.replicas.min), spec.replicas.max),
        setting.fraction * variant.capacity_rps,
        setting.window_s / args.speed,
        args.speed,
    )
    try:
        with (
            karpenter(cluster.api, pool, args.speed, args.workdir),
            prometheus_adapter(args.prometheus_url, args.workdir),
        ):
            _apply([body, hpa])
            replay(run, cluster, _prices(documents), args, console)
            cluster.remove_namespace(console)
    finally:
        with contextlib.suppress(SystemExit):
            cluster.remove_namespace(console)
    return run


def hpa_manifest(
    deployment: str,
    bounds: tuple[int, int],
    target_rps: float,
    stabilization_s: float,
    speed: float,
) -> dict[str, Any]:
    """The HPA on the adapter's per-replica rate with the default behavior compressed like every
    other duration: its rate limits (scale up by 100 % or 4 pods, down by 100 %, per 15 s) act
    per 15 s of trace time, as the simulator's HPA does. ``stabilization_s`` is already
    compressed."""
    period_s = max(1, round(15 / speed))
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": deployment, "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicas": bounds[0],
            "maxReplicas": bounds[1],
            "metrics": [{"type": "External", "external": {
                "metric": {"name": "requests_per_second",
                           "selector": {"matchLabels": {"infscale_dev_service": SERVICE}}},
                "target": {"type": "AverageValue", "averageValue": f"{target_rps:.3f}"},
            }}],
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "selectPolicy": "Max",
                    "policies": [
                        {"type": "Percent", "value": 100, "periodSeconds": period_s},
                        {"type": "Pods", "value": 4, "periodSeconds": period_s},
                    ],
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": max(1, round(stabilization_s)),
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": period_s}],
                },
            },
        },
    }  # fmt: skip


@dataclasses.dataclass(frozen=True)
class HpaSetting:
    """One HPA configuration: its target (a fraction of the variant's capacityRps) and its
    scale-down stabilization window (trace seconds)."""

    fraction: float
    window_s: float

    def name(self, capacity_rps: float) -> str:
        """The record's policy name."""
        target = self.fraction * capacity_rps
        return f"hpa(target={target:.3g}rps,window={self.window_s:g}s)+karpenter"


def hpa_settings(args: argparse.Namespace) -> list[HpaSetting]:
    """Every target at every window."""
    fractions = [float(f) for f in args.hpa_fractions.split(",")]
    windows = [float(w) for w in args.hpa_windows.split(",")]
    return [HpaSetting(f, w) for f in fractions for w in windows]


def best_windows(
    settings: Sequence[HpaSetting],
    simulated: Mapping[str, tuple[float, float]],
    capacity_rps: float,
) -> list[HpaSetting]:
    """Per target, the window the replay ranks best: the cheapest reaching infscale's replayed
    attainment (or 0.99), else the one with the highest attainment."""
    bar = min(0.99, simulated.get("infscale", (math.nan, 0.0))[1])
    chosen = []
    for fraction in dict.fromkeys(s.fraction for s in settings):
        mine = [s for s in settings if s.fraction == fraction]
        reaching = [s for s in mine if simulated[s.name(capacity_rps)][1] >= bar]
        if reaching:
            chosen.append(min(reaching, key=lambda s: simulated[s.name(capacity_rps)][0]))
        else:
            chosen.append(max(mine, key=lambda s: simulated[s.name(capacity_rps)][1]))
    return chosen


def simulate(
    args: argparse.Namespace, settings: Sequence[HpaSetting], console: Console
) -> tuple[dict[str, tuple[float, float]], float]:
    """The same traffic in ``infscale.sim``, in trace time, from the same start as live (the
    HPA from one L4 replica on one L4 node; infscale from its first decision, made before the
    traffic as the live operator makes it), rates read over the live runs' window: policy
    name -> (cost, attainment), named as the live runs are, and the L4 variant's capacityRps.
    The scenario is the one ``infscale whatif`` builds from the same manifests, uncompressed;
    the HPA's nodes come from a model of the live run's Karpenter (:func:`karpenter_model`)."""
    from infscale.domain import model, planner
    from infscale.emulator import server as emulator
    from infscale.sim import bench, manifests, policies, traces

    found = manifests.parse(manifests.read_documents(manifests.files([str(args.examples)])))
    service_doc = manifests.pick(found, f"{NAMESPACE}/{SERVICE}")
    trace = emulator.load_trace(args.trace, 0)
    end_s = args.duration * args.speed
    arrivals = emulator.arrival_times(trace, 1.0, args.rate_scale, 0)
    replayed = traces.Trace(f"{trace.name}-live", arrivals[arrivals < end_s], end_s)
    peak = float(replayed.rate_per_bin(60.0).max()) if replayed.arrivals_s.size else 0.0
    scen = manifests.to_scenario(service_doc, found, peak)
    service, pools = scen.domain_service(), scen.domain_pools()
    l4 = service.variant(HPA_VARIANT)
    start = ({HPA_VARIANT: 1}, {l4.pool: 1})
    results: dict[str, tuple[float, float]] = {}
    # Rates over the live runs' window in trace time: the scalers' lag is part of what is compared.
    window_s = RATE_WINDOW_S * args.speed
    with console.status("the same traffic in the simulator"):
        main = policies.Infscale(service, pools)
        # The live operator decides before the traffic starts (its first replica Ready, then the
        # emulator's quiet start): with no rate yet, replicas.min and the standby its pools
        # allow, Ready when the first request comes. The replay starts from that decision.
        first, main.state = planner.plan(
            [service], pools, {service.key: model.Observation(rps=None)}, main.state, 0.0
        )
        ours = (dict(first.replicas[service.key]), dict(first.nodes))
        # The live operator reads the emulator's gateway count too (--arrival-rate-query).
        result = bench._run(replayed, scen, main, ours, False, 1, window_s, gateway=True)
        results["infscale"] = (result.cost_usd, result.slo_attainment)
        for setting in settings:
            target = setting.fraction * l4.capacity_rps
            hpa = policies.Hpa(service, HPA_VARIANT, target, setting.window_s)
            result = bench._run(
                replayed, scen, hpa, start, True, 1, window_s,
                node_manager=karpenter_model(args.speed),
            )  # fmt: skip
            results[setting.name(l4.capacity_rps)] = (result.cost_usd, result.slo_attainment)
    return results, l4.capacity_rps


def verdict(records: Sequence[Mapping[str, Any]]) -> str:
    """infscale against the cheapest HPA setting reaching its attainment (or 0.99)."""
    ours = next((r for r in records if r["policy"] == "infscale"), None)
    hpas = [r for r in records if r["policy"].startswith("hpa")]
    if ours is None or not hpas:
        return "(infscale and at least one HPA setting are needed for a comparison)"
    bar = min(0.99, ours["slo_attainment"] or 0.0)
    reaching = [r for r in hpas if (r["slo_attainment"] or 0.0) >= bar]
    if not reaching:
        best = max(hpas, key=lambda r: r["slo_attainment"] or 0.0)
        return (
            f"no HPA setting reached infscale's attainment {bar:.4f}; the best, {best['policy']}, "
            f"reached {best['slo_attainment']} for ${best['cost_usd']:.3f} "
            f"(infscale ${ours['cost_usd']:.3f})"
        )
    cheapest = min(reaching, key=lambda r: r["cost_usd"])
    saving = 1.0 - ours["cost_usd"] / cheapest["cost_usd"] if cheapest["cost_usd"] else math.nan
    return (
        f"infscale ${ours['cost_usd']:.3f} at {ours['slo_attainment']} against the cheapest HPA "
        f"setting reaching {bar:.4f}, {cheapest['policy']}: ${cheapest['cost_usd']:.3f} "
        f"({saving:+.1%} saving)"
    )


def report(
    runs: Sequence[Run],
    simulated: Mapping[str, tuple[float, float]],
    args: argparse.Namespace,
    console: Console,
) -> None:
    """The table, the JSON and the PNG of capacity and cost over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rich.table import Table

    records = [r.record(args.speed) for r in runs]
    for rec in records:
        rec["sim_cost_usd"], rec["sim_slo_attainment"] = (
            round(v, 4) for v in simulated.get(rec["policy"], (math.nan, math.nan))
        )
    table = Table(title=f"Live: {args.trace} at x{args.speed:g} (EMULATED servers, kwok nodes)")
    for column in ("policy", "node cost $", "SLO attainment", "events", "p95 latency s",
                   "requests", "sim cost $ (live/sim)", "sim attainment (live-sim)"):  # fmt: skip
        table.add_column(column, justify="left" if column == "policy" else "right")
    for rec in records:
        live_cost, sim_cost = rec["cost_usd"], rec["sim_cost_usd"]
        live_att, sim_att = rec["slo_attainment"] or 0.0, rec["sim_slo_attainment"]
        table.add_row(
            rec["policy"], f"{live_cost:.3f}", f"{live_att:.4f}", str(rec["events"]),
            str(rec["p95_latency_s"]), str(rec["requests"]),
            f"{sim_cost:.3f} ({live_cost / sim_cost:.2f}x)" if sim_cost else "-",
            f"{sim_att:.4f} ({live_att - sim_att:+.4f})",
        )  # fmt: skip
    console.print(table)
    live = {rec["policy"] for rec in records}
    swept = {name: result for name, result in simulated.items() if name.startswith("hpa")}
    if swept:
        sweep = Table(title="The HPA sweep in the simulator (live: the window run live per target)")
        for column in ("setting", "sim cost $", "sim attainment", "live"):
            sweep.add_column(column, justify="left" if column == "setting" else "right")
        for name, (cost, attainment) in swept.items():
            sweep.add_row(name, f"{cost:.3f}", f"{attainment:.4f}", "yes" if name in live else "")
        console.print(sweep)
    console.print(verdict(records))
    args.out.write_text(
        json.dumps(
            {
                "records": records,
                "sim_sweep": [
                    {
                        "policy": name,
                        "sim_cost_usd": round(cost, 4),
                        "sim_slo_attainment": round(attainment, 4),
                        "live": name in live,
                    }
                    for name, (cost, attainment) in swept.items()
                ],
                "args": {k: str(v) for k, v in vars(args).items()},
            },
            indent=1,
        )
    )
    figure, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for run in runs:
        trace_min = [t * args.speed / 60 for t in run.times_s]
        axes[0].step(trace_min, run.ready, where="post", label=f"{run.policy} ready replicas")
        axes[1].step(trace_min, run.usd_per_hour, where="post", label=run.policy)
    axes[0].set_ylabel("ready replicas")
    axes[1].set_ylabel("node $/h")
    axes[1].set_xlabel("trace minutes")
    for axis in axes:
        axis.legend(fontsize=7, loc="upper right")
    figure.suptitle("infscale vs the real HPA + Karpenter, same emulated traffic")
    figure.tight_layout()
    png = args.out.with_suffix(".png")
    figure.savefig(png, dpi=90)
    console.print(f"results: {args.out}, plot: {png}")


def run(args: argparse.Namespace) -> int:
    try:
        import matplotlib  # noqa: F401
        from rich.console import Console
    except ModuleNotFoundError as error:
        raise SystemExit(f"bench-live needs {error.name}: uv sync --extra bench") from None
    console = Console()
    if not args.prometheus_url or not args.targets_dir:
        raise SystemExit("set INFSCALE_PROMETHEUS_URL and INFSCALE_PROMETHEUS_TARGETS_DIR")
    documents = scenario(args.examples, args.speed)
    args.workdir = args.out.parent / f"{args.out.stem}-logs"
    args.workdir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(kube_client.api_client())
    policies = args.policies.split(",")
    settings = hpa_settings(args) if "hpa" in policies else []
    simulated, capacity_rps = simulate(args, settings, console)
    runs: list[Run] = []
    if "infscale" in policies:
        console.rule("infscale (replicas and node pools)")
        runs.append(run_infscale(cluster, documents, args, console))
    for setting in best_windows(settings, simulated, capacity_rps):
        console.rule(
            f"HPA at {setting.fraction:g} x capacityRps, scale-down window "
            f"{setting.window_s:g} s + Karpenter"
        )
        runs.append(run_hpa(cluster, documents, setting, args, console))
    report(runs, simulated, args, console)
    return 0
