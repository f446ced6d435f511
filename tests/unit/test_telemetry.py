"""The operator's /metrics series follow the services: a deleted service or variant loses them."""

from __future__ import annotations

from prometheus_client import generate_latest

from infscale.controller import telemetry


def _exposition() -> str:
    return generate_latest(telemetry.REGISTRY).decode()


def test_series_of_deleted_services_and_variants_are_removed() -> None:
    status = {
        "variants": [
            {"name": "l4", "desiredReplicas": 2, "readyReplicas": 2},
            {"name": "h100", "desiredReplicas": 1, "readyReplicas": 0},
        ],
        "usdPerHour": 3.2,
        "sloAttainment": 0.99,
    }
    telemetry.record_service("tel", "gone", status)
    telemetry.record_service("tel", "kept", status)
    telemetry.DECISIONS.labels("tel", "gone").inc()
    assert 'service="gone"' in _exposition()

    telemetry.keep_services([("tel", "kept")])
    telemetry.record_service("tel", "kept", {"variants": [status["variants"][0]]})
    text = _exposition()
    assert 'service="gone"' not in text
    assert 'infscale_ready_replicas{namespace="tel",service="kept",variant="l4"} 2.0' in text
    assert 'service="kept",variant="h100"' not in text
    assert 'infscale_service_usd_per_hour{namespace="tel",service="kept"} 3.2' in text


def test_a_pool_exports_its_energy_figures_and_none_once_unknown() -> None:
    telemetry.record_pool("grid-l4", 1, 1, 0.8, 40.0, 0.31, 412.0)
    assert (
        telemetry.REGISTRY.get_sample_value("infscale_pool_usd_per_kwh", {"pool": "grid-l4"})
        == 0.31
    )
    telemetry.record_pool("grid-l4", 1, 1, 0.8, 40.0, 0.31, None)
    assert (
        telemetry.REGISTRY.get_sample_value("infscale_pool_grams_co2_per_kwh", {"pool": "grid-l4"})
        is None
    )


def test_a_pool_exports_its_standby_nodes_only_while_it_has_a_standby() -> None:
    telemetry.record_pool("warm-l4", 5, 5, 4.0, standby=2)
    labels = {"pool": "warm-l4", "state": "standby"}
    assert telemetry.REGISTRY.get_sample_value("infscale_pool_nodes", labels) == 2
    telemetry.record_pool("warm-l4", 3, 3, 2.4)
    assert telemetry.REGISTRY.get_sample_value("infscale_pool_nodes", labels) is None
