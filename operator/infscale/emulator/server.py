"""`infscale emulator`: model-server EMULATOR for tests and the demo (no model runs).

It watches the Ready pods of every InferenceService through the API server, replays a request
trace against them (time-compressed) through the shared queue model, and serves per-pod metrics
under the model server's own names on /metrics for Prometheus to scrape. /truth returns the exact
rate and latency percentile of recent requests, the ground truth tests compare Prometheus with.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import pathlib
import threading
import time
import urllib.parse
import zlib
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from kubernetes import client
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector

from infscale.adapters import kube_client, prometheus
from infscale.api import v1alpha1
from infscale.emulator import model
from infscale.labels import SERVICE_LABEL, VARIANT_LABEL
from infscale.sim import manifests, servers, traces

LOG = logging.getLogger(__name__)
LABELS = ["namespace", "infscale_dev_service", "infscale_dev_variant", "pod"]
SUPPORTED_PRESETS = ("vllm", "tgi", "tei", "sglang")
# What a gateway or ingress in front of the servers counts (istio_requests_total and the like):
# arrivals, also while a service has no replicas. For spec.metrics.arrivalRateQuery.
GATEWAY_COUNTER = "emulator_gateway_requests_total"


def load_trace(spec: str, seed: int) -> traces.Trace:
    """`synthetic`, `poisson:RPS[:SECONDS]`, `steps:RPS@SECONDS,...` (piecewise-constant
    Poisson), or a file (Azure LLM .csv, Azure Functions per-minute .csv, Mooncake .jsonl)."""
    if spec == "synthetic":
        return traces.synthetic(seed=seed)
    if spec.startswith("steps:"):
        pieces, start_s = [], 0.0
        for index, step in enumerate(spec.removeprefix("steps:").split(",")):
            rate, _, seconds = step.partition("@")
            if float(rate) > 0:  # a rate of 0 is a quiet spell
                piece = traces.poisson(float(rate), float(seconds), seed=seed + index)
                pieces.append(piece.arrivals_s + start_s)
            start_s += float(seconds)
        return traces.Trace(spec, np.concatenate(pieces) if pieces else np.zeros(0), start_s)
    if spec.startswith("poisson:"):
        parts = spec.split(":")
        duration_s = float(parts[2]) if len(parts) > 2 else 86400.0
        return traces.poisson(float(parts[1]), duration_s, seed=seed)
    path = pathlib.Path(spec)
    if path.suffix == ".jsonl":
        return traces.read_mooncake(path, seed=seed)
    with path.open() as handle:
        if handle.readline().startswith("HashFunction"):
            # Azure Functions per-minute counts: a day's shape at 5 rps on average
            # (--rate-scale changes the mean).
            return traces.read_azure_functions(path, mean_rps=5.0, seed=seed)
    return traces.read_azure_llm(path)


def arrival_times(trace: traces.Trace, speed: float, rate_scale: float, seed: int) -> np.ndarray:
    """Wall-clock arrival offsets: the trace's shape compressed `speed` times in time at the same
    request rates (arrivals are thinned by 1/speed), then the rate multiplied by `rate_scale`."""
    rng = np.random.default_rng(seed)
    arrivals = np.asarray(trace.arrivals_s, dtype=float) / speed
    scale = rate_scale / speed
    whole, fraction = int(scale), scale - int(scale)
    copies = [arrivals + rng.uniform(0, 1e-3, arrivals.size) for _ in range(whole)]
    copies.append(arrivals[rng.random(arrivals.size) < fraction])
    return np.sort(np.concatenate(copies))


class Exporter(Collector):
    """Renders every emulated pod's counters under the chosen preset's metric names."""

    def __init__(
        self, emulator: Emulator, shard: tuple[int, int] = (0, 1), slo_histograms_only: bool = False
    ) -> None:
        self.emulator = emulator
        self.shard = shard  # (index, count): the services this exporter renders, by name hash
        self.slo_histograms_only = slo_histograms_only
        """Render only the latency histograms the services' SLOs read (the operator reads no
        other): a third of the series of a vllm server, for fleets of thousands."""

    def collect(self) -> Iterable[Metric]:
        index, count = self.shard
        with self.emulator.lock:
            services = [
                state
                for key, state in self.emulator.services.items()
                if count == 1 or zlib.crc32("/".join(key).encode()) % count == index
            ]
            pods = [(s.preset, p) for s in services for p in s.model.all_pods()]
            arrived = [(s.model.namespace, s.model.name, s.model.arrived) for s in services]
        only = {s.spec.slo.metric.value for s in services} if self.slo_histograms_only else None
        gateway = CounterMetricFamily(
            GATEWAY_COUNTER.removesuffix("_total"),
            "EMULATED gateway: requests that arrived for the service, served or not",
            labels=["namespace", "service"],
        )
        for namespace, name, count in arrived:
            gateway.add_metric([namespace, name], count)
        yield gateway
        for preset in SUPPORTED_PRESETS:
            chosen = [p for name, p in pods if name == preset]
            if chosen:
                yield from self._families(prometheus.PRESETS[preset], chosen, only)

    @staticmethod
    def _families(
        preset: prometheus.Preset, pods: list[model.PodCounters], only: set[str] | None
    ) -> Iterable[Metric]:
        def values(pod: model.PodCounters) -> list[str]:
            i = pod.identity
            return [i.namespace, i.service, i.variant, i.pod]

        counter = preset.request_counter
        if counter and not counter.endswith("_count"):
            family: Metric
            if counter.endswith("_total"):
                family = CounterMetricFamily(
                    counter.removesuffix("_total"), "requests", labels=LABELS
                )
            else:
                family = UnknownMetricFamily(counter, "requests", labels=LABELS)
            for pod in pods:
                family.add_metric(values(pod), pod.requests)
            yield family
        histograms: dict[str, str] = {}
        for metric, field in (
            ("ttft", "latency"),
            ("e2e", "latency"),
            ("queue-time", "queue_time"),
        ):
            source = preset.latency.get(metric)
            if source and source.histogram and (only is None or metric in only):
                histograms[source.histogram] = field
        for histogram_name, field in histograms.items():
            hist = HistogramMetricFamily(histogram_name, "emulated latency", labels=LABELS)
            for pod in pods:
                data: model.Histogram = getattr(pod, field)
                buckets = [
                    ("+Inf" if bound == float("inf") else repr(bound), count)
                    for bound, count in data.cumulative()
                ]
                hist.add_metric(values(pod), buckets, data.total_s)
            yield hist
        gauges: tuple[tuple[str | None, str], ...] = (
            (preset.queue_gauge, "waiting"),
            (preset.running_gauge, "running"),
            (preset.kv_cache_gauge, "kv_cache_usage"),
        )
        for gauge_name, field in gauges:
            if gauge_name:
                gauge = GaugeMetricFamily(gauge_name, f"emulated {field}", labels=LABELS)
                for pod in pods:
                    gauge.add_metric(values(pod), float(getattr(pod, field)))
                yield gauge


class ServiceState:
    """One emulated service: its model, its preset and where its arrivals stand."""

    def __init__(self, body: dict[str, Any], seed: int) -> None:
        service = v1alpha1.InferenceService.model_validate(body)
        self.spec = service.spec
        self.preset = self.spec.metrics.preset.value
        meta = body["metadata"]
        variants = [v.name for v in self.spec.variants]
        self.model = model.EmulatedService(
            meta["namespace"],
            meta["name"],
            variants,
            seed,
            self.spec.slo.limit_seconds,
            routing="weighted" if self.spec.routing is not None else "spread",
        )
        self.next_arrival = 0
        self.offset_s = 0.0  # where in the trace this service starts (see Emulator.stagger_s)

    def perf(self, variant: str) -> servers.Perf | None:
        for v in self.spec.variants:
            if v.name == variant:
                return replica_perf(v.capacity_rps, self.spec.slo.threshold_seconds)
        return None


def replica_perf(capacity_rps: float, threshold_s: float | None) -> servers.Perf:
    """How an emulated replica serves: as the simulator's replay of the same manifests has it
    (``manifests.derived_perf``: ``capacityRps`` is 80 % of what four replicas sustain at 99 %
    within the threshold), so a live run and its replay in the simulator serve alike."""
    perf = manifests.derived_perf(capacity_rps, threshold_s)
    return servers.Perf(perf.slots, perf.service_s, perf.cv)


class Emulator:
    """Polls the cluster for services and Ready pods; feeds arrivals through the models."""

    def __init__(
        self,
        api: client.ApiClient,
        arrivals_s: np.ndarray,
        seed: int,
        namespaces: Sequence[str] = (),
        stagger_s: float = 0.0,
        start_delay_s: float = 0.0,
    ) -> None:
        self.namespaces = frozenset(namespaces)
        """Serve only the services of these namespaces (empty: every namespace)."""
        self.stagger_s = stagger_s
        """Each service replays the trace from its own random point within this span: 0, all
        alike (the demo's services follow one curve); a fleet of independent services needs
        their noise independent, or one quiet minute of the trace is every service's at once."""
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.arrivals_s = arrivals_s
        self.seed = seed
        self.services: dict[tuple[str, str], ServiceState] = {}
        self.lock = threading.Lock()
        self.started = time.monotonic() + start_delay_s
        """The trace's time zero: ``start_delay_s`` after now. Until then the Ready pods export
        their counters at zero, so whatever discovers series periodically (Prometheus' file_sd,
        prometheus-adapter's relist) knows the service before its first request."""

    def now_s(self) -> float:
        """Seconds of the (compressed) trace so far; negative before it starts."""
        return time.monotonic() - self.started

    def refresh(self) -> None:
        """Track the services and their Ready pods (one list call each)."""
        listed = self.custom.list_cluster_custom_object(
            v1alpha1.GROUP, v1alpha1.VERSION, "inferenceservices"
        )
        assert isinstance(listed, dict)
        items: list[dict[str, Any]] = listed["items"]
        response = self.core.list_pod_for_all_namespaces(
            label_selector=SERVICE_LABEL, _preload_content=False
        )
        pods: list[dict[str, Any]] = json.loads(response.data)["items"]  # type: ignore[attr-defined]
        ready: dict[tuple[str, str], dict[str, str]] = {}
        for pod in pods:
            meta = pod["metadata"]
            conditions = pod.get("status", {}).get("conditions", [])
            is_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            if is_ready and not meta.get("deletionTimestamp"):
                key = (meta["namespace"], meta["labels"][SERVICE_LABEL])
                ready.setdefault(key, {})[meta["name"]] = meta["labels"].get(VARIANT_LABEL, "")
        with self.lock:
            seen = set()
            for body in items:
                key = (body["metadata"]["namespace"], body["metadata"]["name"])
                if self.namespaces and key[0] not in self.namespaces:
                    continue
                seen.add(key)
                state = self.services.get(key)
                if state is None:
                    state = self.add(key, body)
                wanted: dict[str, tuple[str, servers.Perf]] = {}
                for pod_name, variant in ready.get(key, {}).items():
                    perf = state.perf(variant)
                    if perf is not None:
                        wanted[pod_name] = (variant, perf)
                state.model.set_pods(wanted)
                # The route's weights as the operator wrote them (its HTTPRoute has the same).
                variants = (body.get("status") or {}).get("variants") or []
                state.model.route({v["name"]: float(v.get("weight", 0)) for v in variants})
            for key in set(self.services) - seen:
                del self.services[key]

    def add(self, key: tuple[str, str], body: dict[str, Any]) -> ServiceState:
        """Start serving a service: its arrivals begin now, at its own point of the trace."""
        seed = self.seed + len(self.services)
        state = ServiceState(body, seed)
        state.offset_s = float(np.random.default_rng(seed).uniform(0, self.stagger_s))
        state.next_arrival = int(np.searchsorted(self.arrivals_s, self.now_s() + state.offset_s))
        self.services[key] = state
        return state

    def step(self) -> None:
        """Deliver every arrival up to now and finish what is done."""
        now = self.now_s()
        with self.lock:
            for state in self.services.values():
                while (
                    state.next_arrival < self.arrivals_s.size
                    and self.arrivals_s[state.next_arrival] - state.offset_s <= now
                ):
                    state.model.arrive(float(self.arrivals_s[state.next_arrival]) - state.offset_s)
                    state.next_arrival += 1
                state.model.advance(now)
                state.model.forget_before(now - 600)

    def truth(self, window_s: float) -> dict[str, Any]:
        now = self.now_s()
        with self.lock:
            return {
                f"{ns}/{name}": {
                    **s.model.ground_truth(now, window_s, s.spec.slo.percentile),
                    "totals": s.model.totals(s.spec.slo.percentile),
                }
                for (ns, name), s in self.services.items()
            }


def serve(
    emulator: Emulator, registry: CollectorRegistry, address: str, port: int
) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlparse(self.path)
            if url.path == "/metrics":
                body, kind = generate_latest(registry), "text/plain; version=0.0.4"
            elif url.path == "/truth":
                window = float(urllib.parse.parse_qs(url.query).get("window", ["60"])[0])
                body, kind = json.dumps(emulator.truth(window)).encode(), "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((address, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trace", default="synthetic", help="synthetic, poisson:RPS, or a file")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="time compression (rates stay the trace's)"
    )
    parser.add_argument("--rate-scale", type=float, default=1.0, help="multiply the request rate")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--targets-file", type=pathlib.Path, help="write a Prometheus file_sd target"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--duration", type=float, default=0, help="stop after seconds (0: trace end)"
    )
    parser.add_argument(
        "--start-delay",
        type=float,
        default=0.0,
        help="seconds of serving zero counters before the first request (series discovered)",
    )
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="serve only the services of this namespace (repeatable; default: all namespaces)",
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    trace = load_trace(args.trace, args.seed)
    arrivals = arrival_times(trace, args.speed, args.rate_scale, args.seed)
    emulator = Emulator(
        kube_client.api_client(),
        arrivals,
        args.seed,
        args.namespace,
        start_delay_s=args.start_delay,
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Exporter(emulator))
    server = serve(emulator, registry, args.address, args.port)
    port = server.server_address[1]
    LOG.info("EMULATOR (no model runs) serving /metrics and /truth on %s:%d", args.address, port)
    if args.targets_file:
        target = [{"targets": [f"{args.address}:{port}"], "labels": {"job_role": "emulator"}}]
        args.targets_file.write_text(json.dumps(target))
    end_s = args.duration or (trace.duration_s / args.speed)
    next_refresh = -math.inf  # from the start of the delay, not of the trace
    try:
        while emulator.now_s() < end_s:
            if emulator.now_s() >= next_refresh:
                try:
                    emulator.refresh()
                except client.ApiException as error:
                    LOG.warning("listing services and pods failed: %s", error.reason)
                next_refresh = emulator.now_s() + 1.0
            emulator.step()
            time.sleep(0.02)
    except KeyboardInterrupt:
        pass
    finally:
        if args.targets_file:
            args.targets_file.unlink(missing_ok=True)
        server.shutdown()
    return 0
