"""The Helm chart's generated parts match their sources."""

from __future__ import annotations

from pathlib import Path

import yaml

from infscale.controller import chart_values

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "infscale"


def test_values_schema_is_generated_from_the_settings_model() -> None:
    assert (CHART / "values.schema.json").read_text() == chart_values.render(), (
        "charts/infscale/values.schema.json is stale: run hack/gen-crds.sh"
    )


def test_chart_crds_match_crds_dir() -> None:
    for crd in sorted((ROOT / "crds").glob("*.yaml")):
        assert (CHART / "crds" / crd.name).read_text() == crd.read_text(), (
            f"charts/infscale/crds/{crd.name} is stale: run hack/gen-crds.sh"
        )


def test_default_values_validate_and_match_the_model_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    parsed = chart_values.ChartValues.model_validate(values)
    assert parsed == chart_values.ChartValues()
