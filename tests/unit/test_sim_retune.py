"""`infscale.sim.retune`: infscale replayed alone with a tuning against a saved benchmark run."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from infscale.sim import bench, retune


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A benchmark run of one small trace (Azure LLM format, three minutes) on gpu-classes."""
    root = tmp_path_factory.mktemp("retune")
    rng = np.random.default_rng(7)
    stamps = np.sort(rng.uniform(0, 180, 900))
    stamps[stamps > 90] = 90 + (stamps[stamps > 90] - 90) * 0.5  # a burst in the second half
    csv = root / "small.csv"
    csv.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        + "".join(f"2023-11-16 18:{int(t // 60):02d}:{t % 60:09.6f},500,100\n" for t in stamps)
    )
    out = root / "base.json"
    argv = ["--out", str(out), "--suite", "none", "--trace", str(csv), "--scenario", "gpu-classes"]
    argv += ["--no-pod-baselines", "--skip-planning-time", "--jobs", "1", "--max-minutes", "3"]
    assert bench.main(argv) == 0
    return out


def _infscale(path: pathlib.Path) -> dict[str, object]:
    (ours,) = [r for r in json.loads(path.read_text())["records"] if r["role"] == "infscale"]
    return dict(ours)


def test_without_a_tuning_it_replays_the_base_exactly(
    base: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    out = tmp_path / "same.json"
    assert retune.main([str(base), "--jobs", "1", "--out", str(out)]) == 0
    before, after = _infscale(base), _infscale(out)
    before.pop("note")
    after.pop("note")
    assert after == before
    assert json.loads(out.read_text())["splits"] == json.loads(base.read_text())["splits"]


def test_a_tuning_changes_infscale_alone(base: pathlib.Path, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "tuned.json"
    # Ten standard deviations of margin and replicas never under 1.5x the demand cost more.
    planner = '{"margin_sigmas": 10, "target_utilization": 0.5}'
    assert retune.main([str(base), "--jobs", "1", "--planner", planner, "--out", str(out)]) == 0
    assert _infscale(out)["cost_usd"] > _infscale(base)["cost_usd"]  # type: ignore[operator]
    others = [r for r in json.loads(base.read_text())["records"] if r["role"] != "infscale"]
    kept = json.loads(out.read_text())["records"]
    assert all(r in kept for r in others if r["role"] != "reachable")
    assert json.loads(out.read_text())["planner"] == json.loads(planner)


@pytest.mark.parametrize(
    ("planner", "says"),
    [
        ('{"margin": 2}', "not a PlannerSettings field: margin"),
        ("[1]", "a JSON object"),
        ("{margin_sigmas: 2}", "not JSON"),
    ],
)
def test_a_bad_tuning_is_a_usage_error(
    base: pathlib.Path, planner: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        retune.parse_args([str(base), "--planner", planner])
    assert says in capsys.readouterr().err
