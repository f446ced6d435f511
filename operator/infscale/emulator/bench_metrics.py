"""Benchmark of the Prometheus adapter: queries and time per cycle for 1, 50 and 500 services.

Serves EMULATED vLLM metrics for the largest service count (two pods each, Poisson traffic) to a
real Prometheus, waits until a rate window is filled, then times `PrometheusMetrics.observe` for
each service count. Run it with `hack/bench-metrics.sh`; it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import threading
import time
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.table import Table

from infscale.adapters import prometheus
from infscale.emulator import model
from infscale.emulator import server as emulator_main
from infscale.ports import metrics


class StaticFleet:
    """N emulated services with two ready pods each, fed by Poisson arrivals in real time."""

    def __init__(self, count: int, rps: float, seed: int) -> None:
        self.lock = threading.Lock()
        self.services: dict[tuple[str, str], Any] = {}
        self.rng = np.random.default_rng(seed)
        self.rps = rps
        perf = emulator_main.replica_perf(capacity_rps=5, threshold_s=0.5)
        for i in range(count):
            state = _State(model.EmulatedService(f"ns{i % 20}", f"svc{i}", ["a"], seed + i))
            state.model.set_pods({f"svc{i}-a-{p}": ("a", perf) for p in range(2)})
            self.services[(f"ns{i % 20}", f"svc{i}")] = state
        self.started = time.monotonic()

    def run(self, until_s: float) -> None:
        """Deliver arrivals until `until_s` seconds after the start."""
        next_arrival = {key: 0.0 for key in self.services}
        while (now := time.monotonic() - self.started) < until_s:
            with self.lock:
                for key, state in self.services.items():
                    while next_arrival[key] <= now:
                        state.model.arrive(next_arrival[key])
                        next_arrival[key] += float(self.rng.exponential(1 / self.rps))
                    state.model.advance(now)
                    state.model.forget_before(now - 5)
            time.sleep(0.05)


class _State:
    preset = "vllm"

    def __init__(self, emulated: model.EmulatedService) -> None:
        self.model = emulated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prometheus", default=os.environ.get("INFSCALE_PROMETHEUS_URL"))
    parser.add_argument("--targets-dir", default=os.environ.get("INFSCALE_PROMETHEUS_TARGETS_DIR"))
    parser.add_argument("--services", type=int, nargs="+", default=[1, 50, 500])
    parser.add_argument("--window", type=int, default=30, help="rate window in seconds")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    console = Console()
    largest = max(args.services)
    fleet = StaticFleet(largest, rps=2.0, seed=1)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(emulator_main.Exporter(fleet))  # type: ignore[arg-type]
    server = emulator_main.serve(fleet, registry, "127.0.0.1", 0)  # type: ignore[arg-type]
    target = pathlib.Path(args.targets_dir) / "bench-metrics.json"
    target.write_text(json.dumps([{"targets": [f"127.0.0.1:{server.server_address[1]}"]}]))
    warmup_s = args.window + 15
    feeder = threading.Thread(target=fleet.run, args=(warmup_s + 600,), daemon=True)
    feeder.start()
    try:
        with console.status(f"EMULATED fleet of {largest} services; filling a {warmup_s} s window"):
            time.sleep(warmup_s)
        source = prometheus.PrometheusMetrics(
            prometheus.connect(args.prometheus), rate_window_s=args.window, staleness_s=30
        )
        table = Table(title="Prometheus adapter, one observe() per cycle")
        for column in ("services", "queries/cycle", "median s/cycle", "max s/cycle", "known rps"):
            table.add_column(column, justify="right")
        keys = list(fleet.services)
        for count in sorted(args.services):
            queries = [
                metrics.ServiceQuery(ns, svc, "vllm", "ttft", 95, 0.5) for ns, svc in keys[:count]
            ]
            times, issued, known = [], 0, 0
            for _ in range(args.repeats):
                before, start = source.queries_issued, time.perf_counter()
                result = source.observe(queries)
                times.append(time.perf_counter() - start)
                issued = source.queries_issued - before
                known = sum(1 for m in result.values() if m.total.rps is not None)
            table.add_row(
                str(count), str(issued), f"{statistics.median(times):.3f}",
                f"{max(times):.3f}", f"{known}/{count}",
            )  # fmt: skip
        console.print(table)
    finally:
        target.unlink(missing_ok=True)
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
