"""Replay infscale alone, with a planner tuning, on the cases of a saved benchmark run.

``python -m infscale.sim.retune BASE.json --planner '{"margin_sigmas": 2}' --split development``

The benchmark replays a dozen policies per case; a tuning changes only infscale's. This replays
infscale with the tuning (any field of :class:`infscale.domain.tuning.PlannerSettings`) on the
cases of ``BASE.json`` (a ``hack/bench.sh`` results file: the same traces, seed and options),
keeps every other policy's record, and prints per case what moved and the issue-19 summary per
split, before and after. A split's cases take about half a minute on two cores, where the whole
benchmark takes many. Tune on the development split; then run the validation split once.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import math
import multiprocessing
import os
import pathlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rich import console as rich_console
from rich import table as rich_table

from infscale.domain import tuning
from infscale.sim import bench, policies


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=pathlib.Path, help="a results JSON of hack/bench.sh")
    parser.add_argument(
        "--planner",
        type=_tuning,
        default={},
        metavar="JSON",
        help='PlannerSettings fields to change, e.g. {"margin_sigmas": 2}',
    )
    parser.add_argument(
        "--split",
        action="append",
        choices=("development", "validation", "real", "extra"),
        help="replay only this split's cases (repeatable; default: every case of BASE)",
    )
    parser.add_argument("--out", type=pathlib.Path, default=None, help="write the results JSON")
    parser.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if not args.base.is_file():
        parser.error(f"{args.base}: no such file")
    return args


def _tuning(text: str) -> dict[str, Any]:
    """The tuning as PlannerSettings' fields, checked against them."""
    try:
        changes = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None
    if not isinstance(changes, dict):
        raise argparse.ArgumentTypeError("a JSON object of PlannerSettings fields")
    known = {f.name for f in dataclasses.fields(tuning.PlannerSettings)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"not a PlannerSettings field: {', '.join(unknown)} (see infscale/domain/tuning.py)"
        )
    return changes


def replay(
    spec: bench.CaseSpec,
    options: bench.TraceOptions,
    changes: Mapping[str, Any],
) -> list[bench.Record]:
    """infscale's record on one case with the tuning, and the reachable bound where it misses
    the bar; their cost against the oracle is for the caller to fill in (the base has it)."""
    scen, _, workload = bench.case_workload(spec, options)
    service, pools = scen.domain_service(), scen.domain_pools()
    warm = bench.warm_start(workload, scen, service, pools)
    cfg = dataclasses.replace(tuning.PlannerSettings(), **changes)
    main = policies.Infscale(service, pools, cfg=cfg)
    main.seed_state(*warm)
    ours = bench._run(workload, scen, main, warm, False, options.seed)
    replays = [(main.name, "infscale", ours)]
    if ours.slo_attainment < bench.ATTAINMENT_BAR:
        bound = bench.reachable(workload, service, pools, warm)
        replays.append(
            (bound.name, "reachable", bench._run(workload, scen, bound, warm, False, options.seed))
        )
    novelty = bench.Novelty.of(workload, service, pools)
    return [
        bench.record(workload, scen.name, service, r, "", spec.split, math.nan, novelty)
        for r in replays
    ]


def _case_key(record: bench.Record) -> tuple[str, str]:
    return record.trace, record.scenario


def main(argv: Sequence[str] | None = None) -> int:
    """Replay, compare, print and (with --out) write."""
    args = parse_args(argv)
    con = rich_console.Console(width=160, log_path=False)
    base = json.loads(args.base.read_text())
    base_args = argparse.Namespace(**base["args"])
    records = bench.records_of(base)
    cases: dict[tuple[str, str], list[bench.Record]] = {}
    for r in records:
        cases.setdefault(_case_key(r), []).append(r)
    specs = [
        s for s in bench.select_cases(base_args, con.log) if not args.split or s.split in args.split
    ]
    options = bench.TraceOptions.of(base_args)
    con.log(f"{len(specs)} case(s) of {args.base}, planner {args.planner or 'as it is'}")
    replayed: dict[tuple[str, str], list[bench.Record]] = {}
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=spawn) as pool:
        futures = [pool.submit(replay, spec, options, args.planner) for spec in specs]
        for future in concurrent.futures.as_completed(futures):
            got = future.result()
            key = _case_key(got[0])
            oracle = [r.cost_usd for r in cases.get(key, []) if r.role == "oracle-ilp"]
            replayed[key] = [_against(r, oracle[0] if oracle else math.nan) for r in got]
            con.log(f"{key[0]} / {key[1]}: infscale {got[0].slo_attainment:.4f}")
    before = [cases[k] for k in replayed if k in cases]
    after = [_replace(cases[k], replayed[k]) for k in replayed if k in cases]
    rows_before = [bench.case_row(c) for c in before]
    rows_after = [bench.case_row(c) for c in after]
    con.print(_deltas(rows_before, rows_after, before, after))
    con.print("before:", bench.splits_table(bench.split_summaries(rows_before)))
    con.print("after:", bench.splits_table(bench.split_summaries(rows_after)))
    if args.out is not None:
        args.out.write_text(
            json.dumps(
                {
                    "records": [dataclasses.asdict(r) for c in after for r in c],
                    "bars": [dataclasses.asdict(r) for r in rows_after],
                    "splits": bench.split_summaries(rows_after),
                    "base": str(args.base),
                    "planner": args.planner,
                    "args": base["args"],
                },
                indent=2,
                default=str,
            )
        )
        con.print(f"wrote {args.out}")
    return 0


def _against(record: bench.Record, reference_usd: float) -> bench.Record:
    """The record with its cost against the oracle ILP's of its case."""
    ratio = record.cost_usd / reference_usd if reference_usd > 0 else math.inf
    return dataclasses.replace(record, cost_vs_oracle=ratio)


def _replace(base: list[bench.Record], new: list[bench.Record]) -> list[bench.Record]:
    """The case's records with infscale's (and the reachable bound) from the replay."""
    roles = {r.role for r in new}
    kept = [r for r in base if r.role not in roles]
    if "reachable" not in roles:  # the bound of the base stands only while infscale misses
        ours = new[0]
        if ours.slo_attainment >= bench.ATTAINMENT_BAR:
            kept = [r for r in kept if r.role != "reachable"]
    return kept + new


def _deltas(
    rows_before: Sequence[bench.CaseRow],
    rows_after: Sequence[bench.CaseRow],
    before: Sequence[list[bench.Record]],
    after: Sequence[list[bench.Record]],
) -> rich_table.Table:
    table = rich_table.Table(title="infscale before -> after, per case")
    columns = ("split", "trace", "scenario", "attainment", "bar", "cost", "events", "bars missed")
    for column in columns:
        table.add_column(column)
    for rb, ra, cb, ca in zip(rows_before, rows_after, before, after, strict=True):
        ob, oa = bench.best_of(cb, "infscale"), bench.best_of(ca, "infscale")
        assert ob is not None
        assert oa is not None
        table.add_row(
            ra.split,
            ra.trace,
            ra.scenario,
            f"{ob.slo_attainment:.4f} -> {oa.slo_attainment:.4f}",
            f"{ra.bar:.3f}",
            f"${ob.cost_usd:.2f} -> ${oa.cost_usd:.2f}",
            f"{ob.scale_events} -> {oa.scale_events}",
            f"{','.join(rb.misses) or 'none'} -> {','.join(ra.misses) or 'none'}",
        )
    return table


if __name__ == "__main__":
    from infscale.sim import retune

    sys.exit(retune.main())
