"""`infscale demo`: the operator, the model-server EMULATOR and a live view, on the local cluster.

Applies the manifests in examples/ with every duration in them divided by `--speed` (the same
time compression the emulator applies to the trace, and the operator to the planner's own
durations: `planner.timeScale`), starts the operator (reading the local
Prometheus, as the chart's ServiceAccount when `--operator-kubeconfig` is given) and the emulator
as subprocesses, shows a refreshing table of every service and pool, and at the end prints a
report (SLO attainment, cost, cost of static peak provisioning, decisions with reasons) and writes
a PNG timeline. hack/demo.sh installs the chart, mints the ServiceAccount's token and runs it.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import itertools
import json
import math
import os
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import yaml
from kubernetes import client

from infscale.adapters import kube_client
from infscale.api import v1alpha1
from infscale.emulator import server as emulator

if TYPE_CHECKING:
    from rich.console import Console, Group

GROUP, VERSION = v1alpha1.GROUP, v1alpha1.VERSION
POD_READY_DELAY = "pod-ready.stage.kwok.x-k8s.io/delay"


@dataclasses.dataclass
class Sample:
    t_s: float
    services: dict[str, dict[str, Any]]
    pools: dict[str, dict[str, Any]]


# The emulator plays the gateway: its count of arrivals wakes a service scaled to zero (embed).
DEMO_ARRIVALS = (
    f'sum(rate({emulator.GATEWAY_COUNTER}{{namespace="$namespace",service="$service"}}[15s]))'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trace", default="synthetic", help="synthetic, poisson:RPS or a file")
    parser.add_argument("--speed", type=float, default=15.0, help="time compression of the trace")
    parser.add_argument("--rate-scale", type=float, default=2.0, help="multiply the trace's rate")
    parser.add_argument("--duration", type=float, default=240.0, help="seconds of wall time")
    parser.add_argument("--prometheus-url", default=os.environ.get("INFSCALE_PROMETHEUS_URL"))
    parser.add_argument(
        "--targets-dir",
        default=os.environ.get("INFSCALE_PROMETHEUS_TARGETS_DIR"),
        type=pathlib.Path,
    )
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("demo-timeline.png"))
    parser.add_argument(
        "--examples",
        type=pathlib.Path,
        default=pathlib.Path("examples"),
        help="directory of manifests to apply, time-compressed by --speed",
    )
    parser.add_argument(
        "--operator-kubeconfig",
        type=pathlib.Path,
        default=os.environ.get("INFSCALE_DEMO_OPERATOR_KUBECONFIG"),
        help="kubeconfig the operator runs with (hack/demo.sh: the chart's ServiceAccount)",
    )


def _default(model: type[Any], field: str) -> int:
    value = model.model_fields[field].default
    assert isinstance(value, int)
    return value


def _compress(seconds: int, speed: float) -> int:
    """A duration in the compressed time of the demo: never 0 unless it was 0."""
    return 0 if seconds == 0 else max(1, math.ceil(seconds / speed))


def compress(documents: Iterable[dict[str, Any]], speed: float) -> list[dict[str, Any]]:
    """The manifests with every duration the planner and kwok act on divided by `speed`.

    Node provisioning, replica startup (also as the kwok pod-ready delay of the service's pods:
    the slowest variant's, as the template is shared), the scale-down stabilization window and
    the idle timeout; unset fields get their compressed default. Everything else is unchanged.
    """
    result = []
    for original in documents:
        document = copy.deepcopy(original)
        ours = document.get("apiVersion") == f"{GROUP}/{VERSION}"
        kind, spec = document.get("kind") if ours else None, document.get("spec") or {}
        if kind == "InferenceNodePool":
            default = _default(v1alpha1.InferenceNodePoolSpec, "provisioning_seconds")
            spec["provisioningSeconds"] = _compress(spec.get("provisioningSeconds", default), speed)
        elif kind == "InferenceService":
            default = _default(v1alpha1.Variant, "startup_seconds")
            for variant in spec["variants"]:
                variant["startupSeconds"] = _compress(variant.get("startupSeconds", default), speed)
            scale_down = spec.setdefault("scaleDown", {})
            default = _default(v1alpha1.ScaleDown, "stabilization_seconds")
            window = scale_down.get("stabilizationSeconds", default)
            scale_down["stabilizationSeconds"] = _compress(window, speed)
            replicas = spec.setdefault("replicas", {})
            default = _default(v1alpha1.Replicas, "idle_timeout_seconds")
            idle = replicas.get("idleTimeoutSeconds", default)
            replicas["idleTimeoutSeconds"] = _compress(idle, speed)
            slowest = max(v["startupSeconds"] for v in spec["variants"])
            metadata = spec.setdefault("template", {}).setdefault("metadata", {})
            metadata.setdefault("annotations", {})[POD_READY_DELAY] = f"{slowest}s"
        result.append(document)
    return result


def apply_examples(directory: pathlib.Path, speed: float, console: Console) -> None:
    """`kubectl apply` the directory's manifests, time-compressed (as the cluster admin)."""
    documents = [
        document
        for path in sorted(directory.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise SystemExit("kubectl is not on PATH: source the env file hack/cluster-up.sh prints")
    console.print(f"applying {directory}/ with every duration divided by {speed:g}")
    subprocess.run(  # noqa: S603 - kubectl from PATH, our own manifests
        [kubectl, "apply", "-f", "-"],
        input=yaml.safe_dump_all(compress(documents, speed), sort_keys=False),
        text=True,
        check=True,
    )


def snapshot(custom: client.CustomObjectsApi, started: float) -> Sample:
    services = _items(custom.list_cluster_custom_object(GROUP, VERSION, "inferenceservices"))
    pools = _items(custom.list_cluster_custom_object(GROUP, VERSION, "inferencenodepools"))
    return Sample(
        t_s=time.monotonic() - started,
        services={
            f"{s['metadata']['namespace']}/{s['metadata']['name']}": {
                "spec": s["spec"],
                "status": s.get("status") or {},
            }
            for s in services
        },
        pools={
            p["metadata"]["name"]: {"spec": p["spec"], "status": p.get("status") or {}}
            for p in pools
        },
    )


def _items(listed: object) -> list[dict[str, Any]]:
    assert isinstance(listed, dict)
    items: list[dict[str, Any]] = listed["items"]
    return items


def start(
    command: list[str], log_path: str, kubeconfig: pathlib.Path | None = None
) -> subprocess.Popen[bytes]:
    """One of our own subcommands in the background, its output in a log file."""
    env = dict(os.environ)
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    with open(log_path, "wb") as log:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "infscale.cli.main", *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )


def view(sample: Sample) -> Group:
    from rich.console import Group
    from rich.table import Table

    services = Table(title=f"InferenceServices at {sample.t_s:.0f} s (EMULATED model servers)")
    for column in (
        "service",
        "rps",
        "latency (s)",
        "SLO (s)",
        "replicas per variant",
        "$/h",
        "last decision",
    ):
        services.add_column(column)
    for key, item in sorted(sample.services.items()):
        status, slo = item["status"], item["spec"]["slo"]["thresholdSeconds"]
        latency = status.get("observedLatencySeconds")
        style = "red" if latency is not None and latency > slo else "green"
        variants = ", ".join(
            f"{v['name']}={v.get('readyReplicas', 0)}/{v.get('desiredReplicas', 0)}"
            for v in status.get("variants", [])
        )
        services.add_row(
            key, _fmt(status.get("observedRps")), f"[{style}]{_fmt(latency)}[/]", str(slo),
            variants, _fmt(status.get("usdPerHour")),
            (status.get("lastDecision") or {}).get("reason", "")[:70],
        )  # fmt: skip
    pools = Table(title="InferenceNodePools")
    for column in ("pool", "ready/desired nodes", "standby", "$/h", "last change"):
        pools.add_column(column)
    for name, item in sorted(sample.pools.items()):
        status = item["status"]
        spare = status.get("standbyNodes")
        pools.add_row(
            name, f"{status.get('readyNodes', 0)}/{status.get('desiredNodes', 0)}",
            "-" if spare is None else f"{spare} (${status.get('standbyUsdPerHour') or 0:.2f}/h)",
            _fmt(status.get("usdPerHour")), (status.get("lastChange") or {}).get("reason", "")[:70],
        )  # fmt: skip
    return Group(services, pools)


def _serving_nodes(status: dict[str, Any]) -> int:
    """A pool's Ready nodes less its standby ones (at least 0)."""
    return max(0, (status.get("readyNodes") or 0) - (status.get("standbyNodes") or 0))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def decisions(
    core: client.CoreV1Api, samples: list[Sample], console: Console, since: datetime.datetime
) -> None:
    """The scaling decisions infscale took since ``since`` (this run; a cluster kept from an
    earlier run still holds that run's Events for an hour), with their reasons (Events)."""
    from rich.table import Table

    table = Table(title="Scaling decisions (Events), most recent last")
    for column in ("time", "service", "decision and reason"):
        table.add_column(column)
    namespaces = {key.split("/")[0] for key in samples[-1].services}
    events = []
    for namespace in sorted(namespaces):
        for event in core.list_namespaced_event(namespace).items:
            stamp = event.last_timestamp or event.first_timestamp
            if stamp is None or stamp < since or event.reason != "Scaled":
                continue
            if event.source and event.source.component == "infscale":
                events.append(event)
    events.sort(key=lambda e: str(e.last_timestamp or e.first_timestamp))
    for event in events[-15:]:
        stamp = event.last_timestamp or event.first_timestamp
        when = stamp.strftime("%H:%M:%S") if stamp else "-"
        table.add_row(when, event.involved_object.name, (event.message or "")[:160])
    console.print(table)
    console.print(f"{len(events)} scaling decisions in all")


def report(samples: list[Sample], console: Console, out: pathlib.Path) -> None:
    """Attainment, cost, the static-peak comparison, and the timeline PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rich.table import Table

    hours = [(b.t_s - a.t_s) / 3600 for a, b in itertools.pairwise(samples)]
    cost = sum(
        h * sum((p["status"].get("usdPerHour") or 0.0) for p in s.pools.values())
        for h, s in zip(hours, samples, strict=False)
    )
    # Static provisioning for the peak the replicas needed: standby nodes are not counted.
    peak_nodes = {
        name: max(_serving_nodes(s.pools[name]["status"]) for s in samples if name in s.pools)
        for name in samples[-1].pools
    }
    static = sum(peak_nodes[n] * samples[-1].pools[n]["spec"]["usdPerHour"] for n in peak_nodes)
    static_cost = static * sum(hours)
    table = Table(title="Demo report (wall-clock hours; EMULATED servers, kwok nodes)")
    for column in ("service", "SLO attainment (request-weighted)", "samples over SLO"):
        table.add_column(column)
    for key in samples[-1].services:
        weighted, weight, over = 0.0, 0.0, 0
        for s in samples:
            status = s.services.get(key, {}).get("status", {})
            rps, attainment = status.get("observedRps") or 0.0, status.get("sloAttainment")
            if attainment is not None:
                weighted, weight = weighted + rps * attainment, weight + rps
            latency = status.get("observedLatencySeconds")
            if latency is not None and latency > s.services[key]["spec"]["slo"]["thresholdSeconds"]:
                over += 1
        table.add_row(
            key, "-" if weight == 0 else f"{weighted / weight:.4f}", f"{over}/{len(samples)}"
        )
    console.print(table)
    console.print(f"node cost: ${cost:.4f} for {sum(hours) * 3600:.0f} s of wall time")
    if static_cost:
        console.print(
            f"static provisioning for the observed peak {peak_nodes} would cost "
            f"${static_cost:.4f}: infscale paid {cost / static_cost:.2f}x of it"
        )
    figure, axes = plt.subplots(4, 1, figsize=(11, 11), sharex=True)
    times = [s.t_s for s in samples]
    for key in samples[-1].services:

        def series(field: str, key: str = key) -> list[float]:
            return [s.services.get(key, {}).get("status", {}).get(field) or 0.0 for s in samples]

        axes[0].plot(times, series("observedRps"), label=f"{key} rps")
        axes[1].plot(times, series("observedLatencySeconds"), label=f"{key} latency")
        slo = samples[-1].services[key]["spec"]["slo"]["thresholdSeconds"]
        axes[1].axhline(slo, linestyle="--", linewidth=0.8, label=f"{key} SLO")
        axes[2].step(times, series("replicas"), where="post", label=f"{key} replicas")
    for name in samples[-1].pools:
        nodes = [s.pools.get(name, {}).get("status", {}).get("readyNodes") or 0 for s in samples]
        axes[2].step(times, nodes, where="post", linestyle=":", label=f"{name} nodes")
        spare = [s.pools.get(name, {}).get("status", {}).get("standbyNodes") for s in samples]
        if any(n is not None for n in spare):
            axes[2].step(times, [n or 0 for n in spare], where="post", linestyle="-.",
                         label=f"{name} standby nodes")  # fmt: skip
    total = [sum((p["status"].get("usdPerHour") or 0.0) for p in s.pools.values()) for s in samples]
    axes[3].step(times, total, where="post", label="infscale $/h")
    axes[3].axhline(static, linestyle="--", color="grey", label="static peak $/h")
    for axis, label in zip(axes, ("requests/s", "latency (s)", "count", "USD/hour"), strict=True):
        axis.set_ylabel(label)
        axis.legend(fontsize=7, loc="upper right")
    axes[1].set_yscale("log")
    axes[3].set_xlabel("seconds")
    figure.suptitle("infscale demo: demand, latency vs SLO, replicas and nodes, cost")
    figure.tight_layout()
    figure.savefig(out, dpi=90)
    console.print(f"timeline written to {out}")


def wait_until_settled(
    custom: client.CustomObjectsApi, console: Console, timeout_s: float, settle_s: float = 6.0
) -> None:
    """Traffic starts once every service runs its replicas.min and the operator's first
    decisions are in place (every pool's nodes and every service's replicas Ready, for
    ``settle_s``), as where a service is deployed before its users arrive: else the first
    requests queue while the first nodes are still being provisioned, and the demo starts with
    a backlog no autoscaler could avoid. A second run starts with its rates unknown (the
    emulator is not serving yet), and the planner keeps its standby for that."""
    started, default_min = time.monotonic(), _default(v1alpha1.Replicas, "min")
    settled_since: float | None = None
    with console.status("waiting for replicas and nodes to be Ready") as status:
        while time.monotonic() - started < timeout_s:
            sample = snapshot(custom, started)
            waiting = {
                key: f"{item['status'].get('readyReplicas') or 0}/{wanted}"
                for key, item in sample.services.items()
                if (item["status"].get("readyReplicas") or 0)
                < (
                    wanted := max(
                        item["spec"].get("replicas", {}).get("min", default_min),
                        item["status"].get("replicas") or 0,
                    )
                )
            } | {
                name: f"{pool['status'].get('readyNodes') or 0}/{wanted} nodes"
                for name, pool in sample.pools.items()
                if (pool["status"].get("readyNodes") or 0)
                < (wanted := pool["status"].get("desiredNodes") or 0)
            }
            now = time.monotonic()
            settled_since = None if waiting else settled_since or now
            if settled_since is not None and now - settled_since >= settle_s:
                console.print(f"replicas and nodes Ready after {now - started:.0f} s")
                return
            status.update(f"waiting for replicas and nodes to be Ready (ready/wanted): {waiting}")
            time.sleep(1)
    console.print(
        f"[yellow]replicas and nodes not Ready after {timeout_s:.0f} s; starting anyway[/]"
    )


def run(args: argparse.Namespace) -> int:
    # rich and matplotlib come with the `bench` extra; `infscale operator` does not need them.
    try:
        import matplotlib  # noqa: F401
        from rich.console import Console
        from rich.live import Live
    except ModuleNotFoundError as error:
        raise SystemExit(
            f"infscale demo needs {error.name}: install infscale[bench] (uv sync --extra bench)"
        ) from None
    console = Console()
    if not args.prometheus_url or not args.targets_dir:
        console.print("[red]set INFSCALE_PROMETHEUS_URL and INFSCALE_PROMETHEUS_TARGETS_DIR "
                      "(source the env file hack/cluster-up.sh prints)[/]")  # fmt: skip
        return 2
    began = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    apply_examples(args.examples, args.speed, console)
    if args.operator_kubeconfig is None:
        console.print("[yellow]no --operator-kubeconfig: the operator runs with your own "
                      "credentials, not the chart's ServiceAccount[/]")  # fmt: skip
    else:
        console.print(f"the operator runs as the user in {args.operator_kubeconfig}")
    operator = start(
        ["operator", "--interval", "3", "--prometheus-url", args.prometheus_url,
         "--rate-window", "15", "--node-cooldown", "20", "--arrival-rate-query", DEMO_ARRIVALS,
         "--planner", json.dumps({"timeScale": args.speed})],
        "demo-operator.log",
        args.operator_kubeconfig,
    )  # fmt: skip
    processes = [operator]
    api = kube_client.api_client()
    custom = client.CustomObjectsApi(api)
    try:
        wait_until_settled(custom, console, timeout_s=180)
        emulator_args = [
            "emulator", "--trace", args.trace, "--speed", str(args.speed),
            "--rate-scale", str(args.rate_scale),
            "--targets-file", str(args.targets_dir / "demo-emulator.json"),
        ]  # fmt: skip
        processes.append(start(emulator_args, "demo-emulator.log"))
        started, samples = time.monotonic(), []
        with Live(console=console, refresh_per_second=1) as live:
            while time.monotonic() - started < args.duration:
                sample = snapshot(custom, started)
                samples.append(sample)
                live.update(view(sample))
                time.sleep(2)
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=20)
    decisions(client.CoreV1Api(api), samples, console, began)
    report(samples, console, args.out)
    return 0
