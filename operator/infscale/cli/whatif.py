"""`infscale whatif`: replay a trace against your own manifests, with infscale and the baselines.

Reads one InferenceService and the InferenceNodePools its variants name (`-f`, repeatable: files,
multi-document YAML or directories), builds a simulator scenario from them
(``infscale.sim.manifests``), reads the trace (Azure LLM CSV, or a Prometheus range query's JSON
of one request-rate series) and runs the benchmark's policies on
it (``infscale.sim.bench.bench_one``): infscale, the planner on each single variant, HPA and KEDA
sweeps, Knative KPA, static peak provisioning, the cheapest static allocation reaching 0.99 and
the oracle. Prints a table and writes a PNG. Bad input exits 2 with a message naming the file
and the field or line; matplotlib and rich (the `bench` extra) load only when it runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infscale.sim.manifests import Service
    from infscale.sim.scenario import Scenario
    from infscale.sim.traces import Trace


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The subcommand's options."""
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="PATH",
        help="manifests: a (multi-document) YAML file or a directory of them (repeatable)",
    )
    parser.add_argument(
        "--trace",
        required=True,
        metavar="FILE",
        help="request trace: Azure LLM CSV (TIMESTAMP,ContextTokens,GeneratedTokens), or *.json: "
        "a Prometheus /api/v1/query_range response with one series of requests/s",
    )
    parser.add_argument(
        "--service", default=None, help="the InferenceService to replay (name or namespace/name)"
    )
    parser.add_argument(
        "--max-minutes", type=float, default=0.0, help="replay only this much of the trace"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smaller HPA/KEDA sweep and no search for the cheapest static allocation",
    )
    parser.add_argument("--png", default=None, help="plot path (default whatif-SERVICE.png)")
    parser.add_argument(
        "--json", default=None, metavar="PATH", help="also write every replay's record as JSON"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated service times")


class _InputError(Exception):
    """Input the replay cannot use: the message says where and why (exit 2)."""


def run(args: argparse.Namespace) -> int:
    """Run the replay; 0 on success, 2 (a message on stderr, no traceback) on bad input."""
    try:
        return _run(args)
    except _InputError as error:
        print(f"infscale whatif: error: {error}", file=sys.stderr)
        return 2


def _load(args: argparse.Namespace) -> tuple[Service, Trace, Scenario, list[str]]:
    """The service, the trace (clipped to --max-minutes), the scenario built from them and the
    documents skipped."""
    # Here, not at the top: `infscale operator` builds this parser and needs none of it (scipy).
    from infscale.sim import manifests, traces

    if args.max_minutes < 0:
        raise _InputError("--max-minutes must not be negative")
    for option, given in (("--png", args.png), ("--json", args.json)):
        if given and not pathlib.Path(given).resolve().parent.is_dir():
            raise _InputError(f"{option} {given}: no such directory")
    try:
        found = manifests.parse(manifests.read_documents(manifests.files(args.filename)))
        service = manifests.pick(found, args.service)
        trace_path = pathlib.Path(args.trace)
        if trace_path.suffix == ".json":
            trace = traces.read_prometheus_rate(trace_path, seed=args.seed)
        else:
            trace = traces.read_azure_llm(trace_path)
        if args.max_minutes and args.max_minutes * 60.0 < trace.duration_s:
            end_s = args.max_minutes * 60.0
            trace = traces.Trace(trace.name, trace.arrivals_s[trace.arrivals_s < end_s], end_s)
        if not trace.arrivals_s.size:
            raise _InputError(f"{trace_path}: no requests to replay")
        peak = float(trace.rate_per_bin(60.0).max())
        return service, trace, manifests.to_scenario(service, found, peak), found.ignored
    except (manifests.ManifestError, traces.TraceFormatError) as error:
        raise _InputError(str(error)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise _InputError(f"{args.trace}: cannot read: {error}") from None


def _run(args: argparse.Namespace) -> int:
    service, trace, scen, ignored = _load(args)
    try:
        from rich import console as rich_console
        from rich import table as rich_table

        from infscale.sim import bench
    except ImportError as error:
        raise _InputError(
            f"whatif needs the bench extra (pip install 'infscale[bench]'): {error}"
        ) from None

    con = rich_console.Console(width=140, log_path=False)
    for document in ignored:
        con.log(f"skipped {document}")
    con.log(
        f"{service.key}: {trace.arrivals_s.size} requests over {trace.duration_s / 60:.1f} min; "
        "variants "
        + ", ".join(
            f"{v.name} on {v.pool} ({v.perf.slots} slots x {v.perf.service_s:g} s)"
            for v in scen.variants
        )
    )
    t0 = time.perf_counter()
    records, results = bench.bench_one(
        trace,
        scen,
        args.seed,
        con.log,
        static_bar=not args.quick,
        split="whatif",
        hpa_fractions=bench.QUICK_HPA if args.quick else bench.HPA_FRACTIONS,
        keda_thresholds=bench.QUICK_KEDA if args.quick else bench.KEDA_THRESHOLDS,
    )
    chosen = {kind: rec for kind, rec in bench.picks(records).items() if rec is not None}
    table = rich_table.Table(
        title=(
            f"what if: {service.key} on {trace.name} ({trace.arrivals_s.size} requests, "
            f"{trace.duration_s / 60:.0f} min; SLO p{scen.slo.percentile:g} <= "
            f"{scen.slo.latency_s:g} s)"
        )
    )
    columns = (
        "policy", "setting", "cost USD", "SLO attainment", "seen / unseen", "SLO met",
        "$ / 1M requests", "kWh / 1M",
    )  # fmt: skip
    for col in (*columns, "events"):
        table.add_column(col, justify="left" if col in ("policy", "setting") else "right")
    for kind, rec in chosen.items():
        per_million = rec.cost_usd / rec.requests * 1e6 if rec.requests else math.nan
        table.add_row(
            kind,
            rec.policy,
            f"{rec.cost_usd:.3f}",
            f"{rec.slo_attainment:.4f}",
            f"{_attained(rec.attainment_seen)} / {_attained(rec.attainment_unseen)}",
            "yes" if rec.slo_attainment >= scen.slo.percentile / 100 else "no",
            f"{per_million:.2f}",
            "-" if math.isnan(rec.kwh_per_million) else f"{rec.kwh_per_million:.2f}",
            str(rec.scale_events),
        )
    con.print(table)
    con.print(
        "SLO attainment: share of requests within the threshold (met: at least the SLO's "
        "percentile); seen / unseen: the same over requests in minutes at a rate the trace had "
        "shown a lead earlier, and in minutes above any such rate (first bursts, which only "
        "capacity held before them serves). HPA, KEDA and single-variant: the cheapest setting "
        "reaching infscale's attainment (or 0.99), else the best; oracle: the cheapest schedule "
        "found knowing the future that reaches 0.99."
    )
    png = pathlib.Path(args.png or f"whatif-{service.name}.png")
    shown = {rec.policy: results[rec.policy] for rec in chosen.values()}
    title = f"{service.key} / {trace.name}"
    try:
        bench.plot(png, {scen.name: title}, {scen.name: shown}, {scen.name: list(shown)})
        if args.json:
            saved = {
                "service": service.key,
                "trace": args.trace,
                "scenario": scen.model_dump(),
                "records": [dataclasses.asdict(r) for r in records],
            }
            pathlib.Path(args.json).write_text(json.dumps(saved, indent=2, default=str))
            con.print(f"wrote {args.json}")
    except OSError as error:
        raise _InputError(f"cannot write: {error}") from None
    con.print(f"wrote {png} ({time.perf_counter() - t0:.0f} s of simulation)")
    return 0


def _attained(share: float) -> str:
    return "-" if math.isnan(share) else f"{share:.3f}"
