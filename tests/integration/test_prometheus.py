"""Real Prometheus scrapes an exporter started by the test; prometheus-api-client reads it, and
the operator prices a pool's electricity from it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from prometheus_api_client import PrometheusConnect

from tests.integration import manifests, waiting
from tests.integration.operator_process import OperatorProcess

pytestmark = pytest.mark.integration

GROUP, VERSION = "infscale.dev", "v1alpha1"


class Gauge:
    """The one value the test exporter serves; the test changes it while Prometheus scrapes."""

    def __init__(self, value: float) -> None:
        self.value = value


@pytest.fixture
def exporter(unique_name: str) -> Iterator[tuple[str, Gauge]]:
    gauge = Gauge(42.5)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (
                "# TYPE infscale_test_exporter_value gauge\n"
                f'infscale_test_exporter_value{{run="{unique_name}"}} {gauge.value}\n'
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", gauge
    server.shutdown()


@pytest.fixture
def scrape_target(
    exporter: tuple[str, Gauge], prometheus_targets_dir: Path, unique_name: str
) -> Iterator[Gauge]:
    address, gauge = exporter
    target_file = prometheus_targets_dir / f"{unique_name}.json"
    target_file.write_text(json.dumps([{"targets": [address], "labels": {"test": unique_name}}]))
    yield gauge
    target_file.unlink()


def test_prometheus_scrapes_a_live_exporter(
    scrape_target: Gauge, prometheus_url: str, unique_name: str
) -> None:
    prometheus = PrometheusConnect(url=prometheus_url, disable_ssl=True)
    # Not check_prometheus_connection(): it fetches a UI page that Debian's build does not ship.
    assert prometheus.custom_query("vector(1)")[0]["value"][1] == "1"

    def value() -> float | None:
        result = prometheus.custom_query(f'infscale_test_exporter_value{{test="{unique_name}"}}')
        return float(result[0]["value"][1]) if result else None

    assert waiting.until(value, timeout_s=30, what="the first scrape") == 42.5
    up = prometheus.custom_query(f'up{{test="{unique_name}"}}')
    assert [float(s["value"][1]) for s in up] == [1.0]

    scrape_target.value = 7.25
    waiting.until(lambda: value() == 7.25, timeout_s=30, what="the changed value to be scraped")


def test_a_pool_prices_its_electricity_from_a_prometheus_query(
    scrape_target: Gauge,
    prometheus_url: str,
    custom: client.CustomObjectsApi,
    namespace: str,
    unique_name: str,
    tmp_path: Path,
) -> None:
    # A spot tariff an exporter publishes (the test exporter's gauge), and a carbon series that
    # does not exist: the first sets the price every cycle, the second falls back to the
    # constant, and the pool's status says both.
    scrape_target.value = 0.31
    name = f"grid-{unique_name}"
    pool = manifests.kwok_pool(name)
    pool["spec"]["power"] = {
        "idleWatts": 24,
        "maxWatts": 92,
        "usdPerKwh": 0.5,
        "usdPerKwhQuery": f'infscale_test_exporter_value{{test="{unique_name}"}}',
        "gramsCo2PerKwh": 400,
        "gramsCo2PerKwhQuery": f'infscale_test_grid_intensity{{test="{unique_name}"}}',
    }
    custom.create_cluster_custom_object(GROUP, VERSION, "inferencenodepools", pool)
    operator = OperatorProcess(
        tmp_path / "operator.log", 1.0, f"--prometheus-url={prometheus_url}",
        namespaces=[namespace], pools=[name],
    )  # fmt: skip
    operator.start()
    try:

        def status() -> dict[str, Any]:
            body = custom.get_cluster_custom_object(GROUP, VERSION, "inferencenodepools", name)
            assert isinstance(body, dict)
            return dict(body.get("status") or {})

        seen = waiting.until(
            lambda: (s := status()).get("usdPerKwh") == 0.31 and s,
            timeout_s=60,
            what="the queried price in the pool's status",
        )
        assert seen["gramsCo2PerKwh"] == 400
        assert "usdPerKwh from its query" in seen["energyFigures"]
        assert "gramsCo2PerKwhQuery: query returned no series" in seen["energyFigures"]
        scrape_target.value = 0.07
        waiting.until(lambda: status().get("usdPerKwh") == 0.07, timeout_s=60, what="the new price")
    finally:
        operator.stop()
        custom.delete_cluster_custom_object(GROUP, VERSION, "inferencenodepools", name)
