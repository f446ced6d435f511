"""`infscale whatif`: the examples' manifests and a short trace through every policy, and the
messages (exit 2, no traceback) for manifests and traces it cannot replay."""

from __future__ import annotations

import datetime
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from infscale.cli import main
from infscale.sim import bench, manifests, traces
from tests.examples import EXAMPLES

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
KINDS = ("infscale", "single-variant", "hpa", "keda", "kpa", "static", "oracle")


def write_trace(path: Path, minutes: float, rps: float, seed: int = 0) -> Path:
    """Poisson arrivals at ``rps`` with a doubled middle third, as the Azure LLM CSV."""
    rng = np.random.default_rng(seed)
    start = datetime.datetime(2023, 11, 16, 18, 0, 0)
    lines = [HEADER]
    t, end = 0.0, minutes * 60.0
    while True:
        busy = end / 3 <= t < 2 * end / 3
        t += float(rng.exponential(1.0 / (2 * rps if busy else rps)))
        if t >= end:
            break
        moment = start + datetime.timedelta(seconds=t)
        lines.append(f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond:06d}0,1024,128\n")
    path.write_text("".join(lines))
    return path


def table_rows(out: str) -> dict[str, list[str]]:
    """The printed table's rows by policy kind."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) == 9 and cells[0] in KINDS:
            rows[cells[0]] = cells
    return rows


def test_whatif_replays_the_examples_with_every_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = write_trace(tmp_path / "chat.csv", minutes=6, rps=4)
    png = tmp_path / "chat.png"
    argv = ["whatif", "-f", str(EXAMPLES), "--service", "team-a/chat", "--trace", str(trace)]
    out_json = tmp_path / "records.json"
    options = ["--max-minutes", "5", "--quick", "--png", str(png), "--json", str(out_json)]
    code = main.main([*argv, *options])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = table_rows(out)
    assert set(rows) == set(KINDS), out
    for kind, row in rows.items():
        _, setting, cost, attainment, by_novelty, met, per_million, kwh, events = row
        assert met == ("yes" if float(attainment) >= 0.95 else "no"), kind
        seen, unseen = (part.strip() for part in by_novelty.split("/"))
        assert 0.0 <= float(seen) <= 1.0, (kind, seen)  # the steady trace holds seen minutes
        assert unseen == "-" or 0.0 <= float(unseen) <= 1.0, (kind, unseen)
        assert setting, kind
        assert math.isfinite(float(cost)), (kind, cost)
        assert float(cost) > 0, (kind, cost)
        assert 0.0 <= float(attainment) <= 1.0, (kind, attainment)
        assert math.isfinite(float(per_million)), (kind, per_million)
        assert float(kwh) > 0, (kind, kwh)  # the example pools declare their power
        assert int(events) >= 0
    assert "5 min" in out  # --max-minutes clipped the six-minute trace
    assert png.stat().st_size > 0
    saved = json.loads(out_json.read_text())
    assert saved["service"] == "team-a/chat"
    assert {r["role"] for r in saved["records"]} >= set(KINDS)


def test_the_scenario_carries_the_manifests(tmp_path: Path) -> None:
    found = manifests.parse(manifests.read_documents(manifests.files([str(EXAMPLES)])))
    scen = manifests.to_scenario(manifests.pick(found, "embed"), found, peak_rps=40.0)
    assert [p.name for p in scen.pools] == ["cpu", "gpu-l4"]  # only the pools it uses
    cpu = next(p for p in scen.pools if p.name == "cpu")
    assert (cpu.node.cpu, cpu.node.memory_gib, cpu.usd_per_hour) == (2.0, 8.0, 0.0816)
    assert (cpu.min_nodes, cpu.max_nodes, cpu.provisioning_s) == (1, 50, 120.0)
    assert (cpu.standby_max_nodes, cpu.standby_warm) == (0, False)
    gpu = next(p for p in scen.pools if p.name == "gpu-l4")
    assert (gpu.standby_max_nodes, gpu.standby_warm) == (3, True)  # its spec.standby
    assert (scen.slo.latency_s, scen.slo.percentile) == (0.2, 99.0)
    assert (scen.service.min_replicas, scen.service.max_replicas) == (0, 20)
    assert scen.service.idle_timeout_s == 900.0
    l4 = next(v for v in scen.variants if v.name == "l4")
    assert (l4.pool, l4.capacity_rps, l4.startup_s) == ("gpu-l4", 200.0, 60.0)
    assert l4.resources.extended == {"nvidia.com/gpu": 1.0, "pods": 1.0}  # and its pod slot
    assert next(v for v in scen.variants if v.name == "cpu").resources.cpu == 1.5
    assert scen.service.routing == "spread"  # no route: the team's plain Service
    paths = [str(EXAMPLES / "model-variants"), str(EXAMPLES / "node-pools.yaml")]
    found = manifests.parse(manifests.read_documents(manifests.files(paths)))
    scen = manifests.to_scenario(manifests.pick(found, "assistant"), found, peak_rps=40.0)
    assert scen.service.routing == "weighted"
    assert (scen.service.quality_floor, scen.service.quality_average) == (0.95, True)
    assert {v.name: v.quality for v in scen.variants}["awq-l4"] == 0.97


@pytest.mark.parametrize(
    ("service", "variant"), [("chat", "h100"), ("chat", "l4"), ("embed", "cpu"), ("embed", "l4")]
)
def test_the_derived_replica_makes_capacity_a_cautious_share(service: str, variant: str) -> None:
    # As in the bundled scenarios: capacityRps is 70-100 % of the rate four simulated replicas
    # sustain at the attainment bar.
    found = manifests.parse(manifests.read_documents(manifests.files([str(EXAMPLES)])))
    scen = manifests.to_scenario(manifests.pick(found, service), found)
    spec_rps = scen.domain_service().variant(variant).capacity_rps
    assert bench.replica_attainment(scen, variant, spec_rps) >= bench.ATTAINMENT_BAR
    assert bench.replica_attainment(scen, variant, spec_rps / 0.7) < bench.ATTAINMENT_BAR


def whatif(tmp_path: Path, documents: list[dict[str, object]], trace: Path | None = None) -> int:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    trace = trace or write_trace(tmp_path / "t.csv", minutes=1, rps=1)
    return main.main(
        ["whatif", "-f", str(path), "--trace", str(trace), "--png", str(tmp_path / "x.png")]
    )


def example_documents() -> list[dict[str, object]]:
    docs = [yaml.safe_load_all(p.read_text()) for p in sorted(EXAMPLES.glob("*.yaml"))]
    return [d for group in docs for d in group if d and d["metadata"]["name"] != "embed"]


def test_an_invalid_manifest_exits_2_naming_the_document_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    documents = example_documents()
    chat = next(d for d in documents if d["kind"] == "InferenceService")
    chat["spec"]["variants"][1]["capacityRps"] = 0
    assert whatif(tmp_path, documents) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "document 2 (InferenceService team-a/chat)" in err
    assert "spec.variants[1].capacityRps: Input should be greater than 0" in err


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("gpu-l4", "minNodes", 50), "spec.minNodes: minNodes must not exceed maxNodes"),
        (("gpu-l4", "node", {"capacity": {"cpu": "4"}}), "must include cpu and memory"),
        (("chat", "replicas", {"min": 5, "max": 2}), "replicas.min must not exceed"),
        (("gpu-l4", "metadata", {"name": "gpu-a10"}), "nodePool: no InferenceNodePool 'gpu-l4'"),
        (("chat", "apiVersion", "infscale.dev/v1"), "apiVersion: expected infscale.dev/v1alpha1"),
    ],
)
def test_manifests_it_cannot_replay_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: tuple[str, str, object],
    expected: str,
) -> None:
    name, field, value = edit
    documents = example_documents()
    target = next(d for d in documents if d["metadata"]["name"] == name)
    if field in ("metadata", "apiVersion"):
        target[field] = value
    else:
        target["spec"][field] = value
    assert whatif(tmp_path, documents) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err


def test_two_services_need_a_choice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = write_trace(tmp_path / "t.csv", minutes=1, rps=1)
    assert main.main(["whatif", "-f", str(EXAMPLES), "--trace", str(trace)]) == 2
    err = capsys.readouterr().err
    assert "2 InferenceServices (team-a/chat, team-b/embed)" in err
    assert "--service" in err


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("2023-11-16 18:00:03.1000000,12,x", "line 4, column 3 (GeneratedTokens): 'x' is not"),
        ("16/11/2023 18:00:03,12,3", "line 4, column 1 (TIMESTAMP): '16/11/2023 18:00:03'"),
        ("2023-11-16 18:00:03.1,12", "line 4: 2 field(s), expected 3"),
    ],
)
def test_a_malformed_trace_exits_2_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, expected: str
) -> None:
    good = "2023-11-16 18:00:0{}.5000000,100,20\n"
    trace = tmp_path / "bad.csv"
    trace.write_text(HEADER + good.format(1) + good.format(2) + line + "\n" + good.format(4))
    assert whatif(tmp_path, example_documents(), trace) == 2
    err = capsys.readouterr().err
    assert f"{trace}: {expected}" in err, err
    assert "Traceback" not in err


def test_a_trace_without_the_timestamp_column_is_named(tmp_path: Path) -> None:
    trace = tmp_path / "other.csv"
    trace.write_text("time,tokens\n1,2\n")
    with pytest.raises(traces.TraceFormatError, match=re.escape(f"{trace}: line 1: the header")):
        traces.read_azure_llm(trace)


def test_the_azure_reader_keeps_the_fraction_of_each_second(tmp_path: Path) -> None:
    trace = tmp_path / "ok.csv"
    trace.write_text(
        HEADER
        + "2023-11-16 18:15:46.6805900,10,1\n\n"
        + "2023-11-16 18:15:48.0000001,10,1\n2023-11-16T18:15:47,1,1\n"
    )
    read = traces.read_azure_llm(trace)
    assert read.arrivals_s.tolist() == pytest.approx([0.68059, 1.0, 2.0000001])


def prometheus(values: list[list[object]], series: int = 1) -> str:
    result = [{"metric": {}, "values": values} for _ in range(series)]
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}})


def test_a_prometheus_rate_series_becomes_poisson_arrivals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 4 rps for two minutes, then 12 rps for two, at a 15 s step.
    values: list[list[object]] = [
        [1_700_000_000 + 15 * i, "4" if i < 8 else "12"] for i in range(16)
    ]
    path = tmp_path / "rate.json"
    path.write_text(prometheus(values))
    read = traces.read_prometheus_rate(path, seed=3)
    assert read.duration_s == 240.0
    per_minute = read.rate_per_bin(60.0)
    assert per_minute[:2] == pytest.approx([4, 4], rel=0.25)
    assert per_minute[2:] == pytest.approx([12, 12], rel=0.15)
    argv = ["whatif", "-f", str(EXAMPLES), "--service", "chat", "--trace", str(path), "--quick"]
    assert main.main([*argv, "--png", str(tmp_path / "p.png")]) == 0
    assert set(table_rows(capsys.readouterr().out)) == set(KINDS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"data": {"resultType": "matrix",\n "result": [}}', "line 2, column 13: not valid JSON"),
        (prometheus([[1, "1"]], series=2), "data.result: 2 series, expected one"),
        (prometheus([[1, "1"], [2, "x"]]), "data.result[0].values[1]: [2, 'x'] is not [unix time"),
        (prometheus([[1, "1"], [2, "-1"]]), "rate '-1' is not a finite non-negative number"),
        ('{"data": {"resultType": "vector", "result": []}}', 'resultType: expected "matrix"'),
    ],
)
def test_a_malformed_prometheus_export_is_named(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "rate.json"
    path.write_text(text)
    with pytest.raises(traces.TraceFormatError, match=re.escape(f"{path}: ")) as caught:
        traces.read_prometheus_rate(path)
    assert expected in str(caught.value)


def test_missing_files_and_bad_yaml_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = write_trace(tmp_path / "t.csv", minutes=1, rps=1)
    assert main.main(["whatif", "-f", str(tmp_path / "none.yaml"), "--trace", str(trace)]) == 2
    assert "none.yaml: no such file or directory" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: InferenceService\nspec: [unclosed\n")
    assert main.main(["whatif", "-f", str(bad), "--trace", str(trace)]) == 2
    assert f"{bad}: line 3, column 1: not valid YAML" in capsys.readouterr().err
    argv = ["whatif", "-f", str(EXAMPLES), "--service", "chat", "--trace", str(tmp_path / "x")]
    assert main.main(argv) == 2
    assert "cannot read" in capsys.readouterr().err
    argv = ["whatif", "-f", str(EXAMPLES), "--service", "chat", "--trace", str(trace)]
    assert main.main([*argv, "--png", str(tmp_path / "no" / "p.png")]) == 2  # before replaying
    assert "--png" in capsys.readouterr().err


def test_a_kubectl_list_counts_each_item(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = example_documents()
    chat = next(d for d in items if d["kind"] == "InferenceService")
    chat["spec"]["replicas"]["max"] = 0
    listing: dict[str, object] = {"apiVersion": "v1", "kind": "List", "items": items}
    assert whatif(tmp_path, [listing]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'mine.yaml'}: document 1, items[1] (InferenceService team-a/chat)" in err
    assert "spec.replicas.max: Input should be greater than or equal to 1" in err
