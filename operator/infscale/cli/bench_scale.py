"""Scale benchmark of the full operator (run by ``hack/bench-scale.sh``; a measurement, not a test).

The operator runs as a subprocess with the chart's ServiceAccount against the real API server and
Prometheus; this process grows a fleet of InferenceServices (one CPU variant each, on a kwok
pool), feeds every one with EMULATED model servers (:class:`infscale.emulator.server.Emulator`,
in this process) and, per fleet size, records each operator cycle:

- wall time (``infscale_cycle_duration_seconds``), CPU (``process_cpu_seconds_total`` over the
  time between two cycles, in cores) and RSS, from the operator's own /metrics;
- PromQL queries (``infscale_prometheus_queries``);
- API requests by verb and resource, from the API server's audit log (the operator's user only,
  counted server-side, so kopf's own requests count too), attributed to the cycle they precede.

Then a load step: one service's arrivals jump to several replicas' worth, and the time to the
operator's write of its Deployment's replicas is measured. Prints a table, writes JSON and a PNG.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import datetime
import json
import math
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from typing import Any

import numpy as np
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from infscale.adapters import kube_client
from infscale.api import v1alpha1
from infscale.emulator import server as emulator_server
from infscale.labels import SERVICE_LABEL
from infscale.sim import traces

NAMESPACE = "scale-bench"
POOL = "scale-cpu"
PODS_PER_NODE = 250
CAPACITY_RPS = 5.0
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
BARS_AT = 1000  # issue 21's bars are set for 1,000 services
SERVICES_PER_ENDPOINT = 1000  # EMULATED servers' metrics per /metrics endpoint


@dataclasses.dataclass
class Sample:
    """One reading of the operator's /metrics."""

    at: float  # time.time()
    cycles: float
    cycle_seconds: float
    cpu_seconds: float
    rss_bytes: float
    queries: float
    status_writes: dict[str, float]  # by the field whose change made the write


@dataclasses.dataclass
class CycleRecord:
    wall_s: float
    cpu_cores: float
    rss_mib: float
    queries: float
    requests: dict[str, int]  # "verb resource" -> count
    status_writes: dict[str, int]  # by field (a write of several fields counts under each)

    @property
    def writes(self) -> int:
        return sum(n for key, n in self.requests.items() if key.split()[0] in WRITE_VERBS)


def service_manifest(index: int) -> dict[str, Any]:
    """One autoscaled service of one CPU variant whose kwok pods are Ready a second after start."""
    return {
        "apiVersion": f"{v1alpha1.GROUP}/{v1alpha1.VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": service_name(index), "namespace": NAMESPACE},
        "spec": {
            "slo": {"metric": "ttft", "percentile": 95, "thresholdSeconds": 0.5},
            "replicas": {"min": 1, "max": 4},
            "scaleDown": {"stabilizationSeconds": 60, "maxStepPercent": 50},
            "variants": [{"name": "cpu", "nodePool": POOL, "capacityRps": CAPACITY_RPS,
                          "startupSeconds": 1, "resources": {"cpu": "100m", "memory": "256Mi"}}],
            "template": {
                "metadata": {"annotations": {"pod-ready.stage.kwok.x-k8s.io/delay": "1s"}},
                "spec": {"containers": [{"name": "server", "image": "emulated"}]},
            },
        },
    }  # fmt: skip


def service_name(index: int) -> str:
    return f"svc-{index:05d}"


def pool_manifest(max_nodes: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{v1alpha1.GROUP}/{v1alpha1.VERSION}",
        "kind": "InferenceNodePool",
        "metadata": {"name": POOL},
        "spec": {
            "provider": {"kwok": {}},
            "node": {
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": str(PODS_PER_NODE)},
                "labels": {"infscale.dev/pool": POOL},
            },
            "usdPerHour": 2.0,
            "minNodes": 1,
            "maxNodes": max_nodes,
            "provisioningSeconds": 5,
        },
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def read_metrics(url: str) -> Sample:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own operator
        text = response.read().decode()
    values: dict[str, float] = {}
    status_writes: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.labels:
                values[sample.name] = sample.value
            elif sample.name == "infscale_status_writes_total":
                status_writes[sample.labels["field"]] = sample.value
    return Sample(
        at=time.time(),
        cycles=values.get("infscale_cycles_total", 0.0),
        cycle_seconds=values.get("infscale_cycle_duration_seconds_sum", 0.0),
        cpu_seconds=values.get("process_cpu_seconds_total", 0.0),
        rss_bytes=values.get("process_resident_memory_bytes", 0.0),
        queries=values.get("infscale_prometheus_queries", 0.0),
        status_writes=status_writes,
    )


class AuditLog:
    """The API server's audit log, read incrementally: the operator's requests with their time."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.offset = 0
        self.events: list[tuple[float, str]] = []  # (time, "verb resource")

    def read(self) -> None:
        if not self.path.exists():
            return
        if self.path.stat().st_size < self.offset:
            self.offset = 0  # rotated: the new file starts afresh
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        complete = data.rfind(b"\n") + 1
        self.offset += complete
        for line in data[:complete].splitlines():
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            resource = ref.get("resource", event.get("requestURI", "?"))
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            stamp = datetime.datetime.fromisoformat(event["stageTimestamp"].replace("Z", "+00:00"))
            self.events.append((stamp.timestamp(), f"{event['verb']} {resource}"))

    def between(self, start: float, end: float) -> dict[str, int]:
        self.read()
        return dict(Counter(kind for at, kind in self.events if start < at <= end))


class Fleet:
    """The EMULATED model servers of every service, stepped in a thread of this process."""

    def __init__(self, api: client.ApiClient, rps: float, seed: int) -> None:
        # Independent services: each replays the 6 h trace from its own point in the first 3 h.
        trace = traces.poisson(rps, 6 * 3600.0, seed=seed)
        arrivals = np.asarray(trace.arrivals_s)
        self.emulator = emulator_server.Emulator(api, arrivals, seed, stagger_s=3 * 3600.0)
        self.stop = threading.Event()
        self.extra: tuple[tuple[str, str], float, float] | None = None  # (service, rps, until)
        self.refresh_s = 5.0

    def run(self) -> None:
        next_refresh = 0.0
        rng = np.random.default_rng(7)
        next_extra = 0.0
        # This process shares the 2 cores with the cluster and the operator: at 10,000 services
        # a refresh (two lists) and a step take seconds, so each waits in proportion to its cost.
        # Arrivals carry their own times: a later step only delays the counters' update.
        while not self.stop.is_set():
            now = self.emulator.now_s()
            if now >= next_refresh:
                with contextlib.suppress(client.ApiException):
                    self.emulator.refresh()
                took_s = self.emulator.now_s() - now
                next_refresh = self.emulator.now_s() + max(self.refresh_s, 10 * took_s)
            if self.extra is not None:
                key, rate, until = self.extra
                state = self.emulator.services.get(key)
                next_extra = max(next_extra, now - 1.0)
                with self.emulator.lock:
                    while state is not None and next_extra <= min(now, until):
                        state.model.arrive(next_extra)
                        next_extra += float(rng.exponential(1.0 / rate))
            began_s = self.emulator.now_s()
            self.emulator.step()
            time.sleep(max(0.2, 4 * (self.emulator.now_s() - began_s)))


def create_services(
    custom: client.CustomObjectsApi, first: int, last: int, console: Console
) -> None:
    def create(index: int) -> None:
        try:
            custom.create_namespaced_custom_object(
                v1alpha1.GROUP, v1alpha1.VERSION, NAMESPACE, "inferenceservices",
                service_manifest(index),
            )  # fmt: skip
        except client.ApiException as error:
            if error.status != 409:
                raise

    with (
        console.status(f"creating InferenceServices {first}..{last - 1}"),
        concurrent.futures.ThreadPoolExecutor(16) as pool,
    ):
        list(pool.map(create, range(first, last)))


def ready_services(apps: client.AppsV1Api) -> int:
    response = apps.list_namespaced_deployment(
        NAMESPACE, label_selector=SERVICE_LABEL, _preload_content=False
    )
    ready: set[str] = set()
    for item in json.loads(response.data)["items"]:  # type: ignore[attr-defined]
        if int((item.get("status") or {}).get("readyReplicas") or 0) >= 1:
            ready.add(item["metadata"]["labels"][SERVICE_LABEL])
    return len(ready)


def service_replicas(apps: client.AppsV1Api, name: str) -> int:
    listed = apps.list_namespaced_deployment(NAMESPACE, label_selector=f"{SERVICE_LABEL}={name}")
    return sum(int(d.spec.replicas or 0) for d in listed.items)


class Bench:
    def __init__(self, args: argparse.Namespace, console: Console) -> None:
        self.args = args
        self.console = console
        self.api = kube_client.api_client()
        self.custom = client.CustomObjectsApi(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.audit = AuditLog(args.audit_log)
        self.metrics_url = ""
        self.samples: list[Sample] = []

    def sample(self) -> Sample:
        reading = read_metrics(self.metrics_url)
        self.samples.append(reading)
        return reading

    def wait_cycles(self, count: int, timeout_s: float) -> list[CycleRecord]:
        """Records of the next ``count`` cycles the operator completes."""
        records: list[CycleRecord] = []
        last = self.sample()
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.sample()
            if now.cycles <= last.cycles:
                continue
            done = now.cycles - last.cycles
            records.append(
                CycleRecord(
                    wall_s=(now.cycle_seconds - last.cycle_seconds) / done,
                    cpu_cores=(now.cpu_seconds - last.cpu_seconds) / max(now.at - last.at, 1e-3),
                    rss_mib=now.rss_bytes / 2**20,
                    queries=(now.queries - last.queries) / done,
                    requests=self.audit.between(last.at, now.at),
                    status_writes={
                        field: int(n - last.status_writes.get(field, 0.0))
                        for field, n in now.status_writes.items()
                        if n > last.status_writes.get(field, 0.0)
                    },
                )
            )
            last = now
        return records

    def load_step(self, fleet: Fleet) -> dict[str, Any]:
        """One service's arrivals jump to 3.5 replicas' worth; seconds to its scale write."""
        key, name = (NAMESPACE, service_name(0)), service_name(0)
        before = service_replicas(self.apps, name)
        started, first = time.time(), self.sample()
        fleet.extra = (key, 3.5 * CAPACITY_RPS, fleet.emulator.now_s() + 600)
        try:
            while time.time() - started < 300:
                time.sleep(0.5)
                replicas = service_replicas(self.apps, name)
                if replicas > before:
                    reading = self.sample()
                    return {
                        "seconds": round(time.time() - started, 1),
                        "cycles": int(reading.cycles - first.cycles),
                        "replicas": [before, replicas],
                    }
            return {"seconds": None, "cycles": None, "replicas": [before, before]}
        finally:
            fleet.extra = None

    def run(self) -> dict[str, Any]:
        args = self.args
        core = client.CoreV1Api(self.api)
        try:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        except client.ApiException as error:
            if error.status != 409:
                raise
        largest = max(args.counts)
        max_nodes = math.ceil(largest * 1.2 / PODS_PER_NODE) + 2
        self.custom.create_cluster_custom_object(
            v1alpha1.GROUP, v1alpha1.VERSION, "inferencenodepools", pool_manifest(max_nodes)
        )
        port = free_port()
        self.metrics_url = f"http://127.0.0.1:{port}/metrics"
        operator = self.start_operator(port)
        fleet = Fleet(self.api, args.rps, seed=1)
        threading.Thread(target=fleet.run, daemon=True).start()
        target = pathlib.Path(args.targets_dir) / "bench-scale-emulator.json"
        results: list[dict[str, Any]] = []
        try:
            # One /metrics endpoint per 1,000 services: Prometheus spreads its targets' scrapes
            # over the interval, so each renders its share in time (10,000 services' metrics from
            # one endpoint took over the 15 s scrape timeout, and every service read unknown).
            shards = max(1, math.ceil(largest / SERVICES_PER_ENDPOINT))
            servers = [
                emulator_server.serve(
                    fleet.emulator, self.registry(fleet, (i, shards)), "127.0.0.1", 0
                )
                for i in range(shards)
            ]
            ports = [f"127.0.0.1:{server.server_address[1]}" for server in servers]
            target.write_text(json.dumps([{"targets": ports}]))
            created = 0
            for count in sorted(args.counts):
                fleet.refresh_s = max(5.0, count / 1000)
                results.append(self.measure(count, created, fleet, operator))
                created = count
                self.save(results)
        finally:
            fleet.stop.set()
            target.unlink(missing_ok=True)
            operator.terminate()
            try:
                operator.wait(timeout=30)
            except subprocess.TimeoutExpired:
                operator.kill()
        return {"results": results}

    def registry(self, fleet: Fleet, shard: tuple[int, int]) -> Any:
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry(auto_describe=False)
        registry.register(emulator_server.Exporter(fleet.emulator, shard, slo_histograms_only=True))
        return registry

    def start_operator(self, port: int) -> subprocess.Popen[bytes]:
        args = self.args
        # Two glibc heaps, as the chart sets: not one per write thread.
        env = {**os.environ, "KUBECONFIG": str(args.operator_kubeconfig), "MALLOC_ARENA_MAX": "2"}
        log = args.out.with_suffix(".operator.log").open("wb")
        return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "infscale.cli.main", "operator",
             "--interval", str(args.interval), "--prometheus-url", args.prometheus_url,
             "--metrics-address", f"127.0.0.1:{port}", "--max-node-changes", "20"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip

    def measure(
        self, count: int, created: int, fleet: Fleet, operator: subprocess.Popen[bytes]
    ) -> dict[str, Any]:
        console, args = self.console, self.args
        began = time.monotonic()
        create_services(self.custom, created, count, console)
        timeout_s = 300 + 0.3 * count
        with console.status(f"{count} services: waiting for a Ready replica each") as status:
            while (ready := ready_services(self.apps)) < count:
                if operator.poll() is not None:
                    raise SystemExit(f"the operator exited ({operator.returncode}); see its log")
                if time.monotonic() - began > timeout_s:
                    break
                status.update(f"{count} services: {ready} with a Ready replica")
                time.sleep(5)
        setup_s = time.monotonic() - began
        console.print(f"{count} services: {ready} Ready after {setup_s:.0f} s")
        # Settle: the rate window fills with every service's load, new services' first
        # decisions are written and their planner memory first saved (within 300 s, each at a
        # phase of its own); then the steady cycles are measured.
        with console.status(f"{count} services: settling for {args.settle:.0f} s"):
            settle_until = time.monotonic() + args.settle
            while time.monotonic() < settle_until:
                self.wait_cycles(1, timeout_s=600)
        with console.status(f"{count} services: measuring {args.cycles} steady cycles"):
            cycles = self.wait_cycles(args.cycles, timeout_s=args.cycles * 600)
        with console.status(f"{count} services: load step on {service_name(0)}"):
            step = self.load_step(fleet)
        return summarize(count, ready, setup_s, cycles, step)

    def save(self, results: list[dict[str, Any]]) -> None:
        self.args.out.write_text(json.dumps({"results": results}, indent=2) + "\n")


def summarize(
    count: int, ready: int, setup_s: float, cycles: list[CycleRecord], step: dict[str, Any]
) -> dict[str, Any]:
    requests: Counter[str] = Counter()
    fields: Counter[str] = Counter()
    for record in cycles:
        requests.update(record.requests)
        fields.update(record.status_writes)
    n = max(len(cycles), 1)
    return {
        "services": count,
        "ready_services": ready,
        "setup_s": round(setup_s, 1),
        "cycles_measured": len(cycles),
        "cycle_wall_s": [round(c.wall_s, 3) for c in cycles],
        "cycle_wall_s_median": _median([c.wall_s for c in cycles]),
        "cpu_cores_mean": _mean([c.cpu_cores for c in cycles]),
        "rss_mib_max": max((c.rss_mib for c in cycles), default=None),
        "prometheus_queries_per_cycle": _mean([c.queries for c in cycles]),
        "api_requests_per_cycle": {k: round(v / n, 2) for k, v in sorted(requests.items())},
        "writes_per_cycle": [c.writes for c in cycles],
        "status_writes_by_field": dict(fields.most_common()),
        "load_step": step,
    }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 3) if values else None


def table(results: list[dict[str, Any]], interval_s: float) -> Table:
    out = Table(title=f"infscale operator at scale (interval {interval_s:g} s; steady cycles)")
    for column in (
        "services",
        "Ready",
        "cycle wall s",
        "CPU cores",
        "RSS MiB",
        "API requests/cycle",
        "writes/cycle",
        "PromQL/cycle",
        "load step",
    ):
        out.add_column(column, justify="right")  # fmt: skip
    for r in results:
        api = r["api_requests_per_cycle"]
        by_verb: Counter[str] = Counter()
        for key, value in api.items():
            by_verb[key.split()[0]] += value
        step = r["load_step"]
        out.add_row(
            f"{r['services']:,}",
            f"{r['ready_services']:,}",
            _fmt(r["cycle_wall_s_median"]),
            _fmt(r["cpu_cores_mean"]),
            _fmt(r["rss_mib_max"], 0),
            " ".join(f"{verb} {n:g}" for verb, n in sorted(by_verb.items())) or "0",
            ",".join(str(w) for w in r["writes_per_cycle"]),
            _fmt(r["prometheus_queries_per_cycle"], 1),
            "-" if step["seconds"] is None else f"{step['seconds']:g} s ({step['cycles']} cyc)",
        )
    return out


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def verdicts(results: list[dict[str, Any]], interval_s: float) -> list[str]:
    """Issue 21's bars for 1,000 services, each with what was measured."""
    lines = []
    for r in results:
        if r["services"] != BARS_AT:
            continue
        checks = [
            ("steady cycle <= 15 s wall", r["cycle_wall_s_median"], 15.0),
            ("operator <= 0.5 core", r["cpu_cores_mean"], 0.5),
            ("RSS <= 250 MiB", r["rss_mib_max"], 250.0),
            ("0 API writes on a steady cycle", max(r["writes_per_cycle"], default=None), 0),
        ]
        for what, value, bar in checks:
            ok = value is not None and value <= bar
            lines.append(f"{'PASS' if ok else 'MISS'} {what}: measured {value}")
        if r.get("status_writes_by_field"):
            why = ", ".join(f"{field} {n}" for field, n in r["status_writes_by_field"].items())
            lines.append(f"     status writes in those cycles, by the field that changed: {why}")
        step = r["load_step"]["cycles"]
        ok = step is not None and step <= 1 + math.ceil(60 / interval_s)
        lines.append(
            f"{'PASS' if ok else 'MISS'} load step written within the rate window + one cycle: "
            f"{r['load_step']['seconds']} s, {step} cycles"
        )
    queries = {r["services"]: r["prometheus_queries_per_cycle"] for r in results}
    flat = len({q for q in queries.values() if q is not None}) <= 1
    lines.append(f"{'PASS' if flat else 'MISS'} PromQL queries per cycle by services: {queries}")
    return lines


def plot(results: list[dict[str, Any]], out: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = [r["services"] for r in results]
    panels = [
        ("cycle wall time, s", [r["cycle_wall_s_median"] for r in results], 15.0),
        ("operator CPU, cores", [r["cpu_cores_mean"] for r in results], 0.5),
        ("operator RSS, MiB", [r["rss_mib_max"] for r in results], 250.0),
        ("API requests per cycle",
         [sum(r["api_requests_per_cycle"].values()) for r in results], None),
    ]  # fmt: skip
    figure, axes = plt.subplots(2, 2, figsize=(9, 6.5))
    for axis, (title, values, bar) in zip(axes.flat, panels, strict=True):
        axis.plot(counts, [math.nan if v is None else v for v in values], marker="o")
        if bar is not None:
            axis.axhline(bar, color="grey", linestyle="--", linewidth=1, label="bar at 1,000")
            axis.legend(loc="upper left", fontsize=8)
        axis.set_xscale("log")
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("InferenceServices")
    figure.suptitle("infscale operator: cost of a cycle vs. fleet size")
    figure.tight_layout()
    figure.savefig(out, dpi=90)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("bench-scale.json"))
    parser.add_argument("--counts", default="100,1000,10000", help="fleet sizes, ascending")
    parser.add_argument("--cycles", type=int, default=4, help="steady cycles measured per size")
    parser.add_argument(
        "--settle", type=float, default=330.0, help="seconds before measuring (memory saved)"
    )
    parser.add_argument("--interval", type=float, default=15.0, help="operator cycle, seconds")
    parser.add_argument("--rps", type=float, default=0.2, help="EMULATED requests/s per service")
    parser.add_argument("--operator-kubeconfig", type=pathlib.Path, required=True)
    parser.add_argument("--audit-log", type=pathlib.Path, required=True)
    parser.add_argument("--prometheus-url", default=os.environ.get("INFSCALE_PROMETHEUS_URL"))
    parser.add_argument("--targets-dir", default=os.environ.get("INFSCALE_PROMETHEUS_TARGETS_DIR"))
    args = parser.parse_args(argv)
    args.counts = [int(c) for c in str(args.counts).split(",")]
    console = Console(width=None if sys.stdout.isatty() else 150)
    results = Bench(args, console).run()["results"]
    console.print(table(results, args.interval))
    for line in verdicts(results, args.interval):
        console.print(line)
    png = args.out.with_suffix(".png")
    plot(results, png)
    console.print(f"wrote {args.out} and {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
