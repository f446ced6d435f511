"""The economics benchmark (issue 24): an interactive and a batch service on shared on-demand and
spot pools, spot nodes reclaimed at a seeded rate; cost, energy and carbon per million requests.

Run through ``hack/bench-economics.sh``. Each case is one trace of the generated suite (the
first ``--cases`` of each half, over ``--hours``) carried by the interactive service, and seeded
batch jobs (the scenario's ``jobs``; their deadlines fall within the replay). Policies:

- ``infscale``: one plan for both services and the pools (``policies.JointInfscale``);
- ``infscale-no-spot``: the same planner without the spot pools (the saving spot brings);
- ``hpa+keda``: the pod autoscalers a platform team would run, on demand: HPA on the chat
  service's request rate (70 % of its replica's capacity), KEDA on the batch queue (scaling to
  zero on the job queue, a replica per half deadline of queued work), the Cluster Autoscaler;
- ``hpa+keda-spot``: the same with the batch Deployment on spot (a team can pin it there);
- ``reachable``: the chat service alone from the same start with capacity for its busiest second
  ordered at t=0 (``bench.reachable``): the attainment bound its bar is taken from; its cost
  means nothing;
- ``oracle``: a cost reference, the chat service's oracle (``oracle.solve``: its ILP knowing
  the trace, on demand: it cannot know when spot nodes go, and an interactive service must hold
  its SLO through their loss) plus the batch work's fluid floor (every request's mean service
  time on the cheapest replica slot, spot included, no start-up, no idle time, below what any
  policy can pay).

Bars (issue 24): batch deadlines met for >= 99.9 % of batch requests; interactive attainment
>= min(0.99, reachable - 0.005); cost <= 1.25x the oracle; total cost >= 30 % below
``infscale-no-spot``.
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
import statistics
import sys
import time
from collections.abc import Sequence

from rich import console as rich_console
from rich import table as rich_table

from infscale.domain import model, planner
from infscale.sim import autoscaler, bench, engine, oracle, policies, scenario, tracegen, traces

SPOT_SAVING_BAR = 0.30
BATCH_BAR = 0.999
INTERACTIVE_BAR = 0.99
HPA_FRACTION = 0.7  # of the chat replica's capacity: the bench's HPA sweep's middle
POLICIES = ("infscale", "infscale-no-spot", "hpa+keda", "hpa+keda-spot", "reachable", "oracle")


@dataclasses.dataclass(frozen=True)
class Record:
    """One (case, policy) row of the results."""

    case: str
    split: str
    policy: str
    cost_usd: float
    interactive_attainment: float
    batch_attainment: float  # share of batch requests done within their deadline
    interactive_requests: int
    batch_requests: int
    usd_per_million: float
    kwh_per_million: float
    g_co2_per_million: float
    interruptions: int
    scale_events: int
    elapsed_s: float


def _lanes(
    shared: scenario.SharedScenario, case: tracegen.Case, hours: float
) -> list[tuple[scenario.Scenario, traces.Trace]]:
    """Each service's scenario and trace: the interactive one carries the case's trace (as its
    tenants), the batch one seeded jobs whose deadlines fall within the replay."""
    duration_s = hours * 3600.0
    lanes = []
    for spec, scen in zip(shared.services, shared.lanes(), strict=True):
        if spec.jobs is None:
            base = tracegen.generate(case.seed, scen.traffic.mean_rps or case.mean_rps, duration_s)
            trace = scen.workload(base, case.seed)
        else:
            deadline_s = spec.slo.deadline_s or 0.0
            jobs = spec.jobs
            last_s = duration_s - deadline_s - jobs.submit_s[1]
            trace = tracegen.batch_jobs(
                case.seed, duration_s, jobs.per_hour, jobs.requests, jobs.submit_s, last_s
            )
        lanes.append((scen, trace))
    return lanes


def replay(
    shared: scenario.SharedScenario, case: tracegen.Case, policy: str, hours: float
) -> Record:
    """One policy on one case."""
    t0 = time.perf_counter()
    on = shared.without_spot() if policy == "infscale-no-spot" else shared
    lanes = _lanes(on, case, hours)
    if policy == "reachable":
        return _reachable(lanes[0], case, t0)
    if policy == "oracle":
        return _oracle(lanes, case, t0)
    cluster = engine.Cluster.of(lanes[0][0], case.seed)
    pools = list(cluster.pools.values())
    services = [scen.domain_service() for scen, _ in lanes]
    joint: policies.JointInfscale | None = None
    manager: engine.NodeManager | None = None
    lane_policies: list[engine.Policy] = []
    running: list[str] = []  # per lane: the variant its pods run (the pod autoscalers' one)
    for service in services:
        on_spot = policy == "hpa+keda-spot" and service.batch
        running.append(
            next(v for v in service.variants if cluster.pools[v.pool].spot == on_spot).name
        )
    if policy.startswith("infscale"):
        joint = policies.JointInfscale(services, pools, name=policy)
        lane_policies = [engine.Group.joint_tick(joint) for _ in services]
    else:
        manager = autoscaler.ClusterAutoscaler()
        for service, variant in zip(services, running, strict=True):
            capacity_rps = service.variant(variant).capacity_rps
            pod_policy: policies.Hpa | policies.Keda
            if service.batch:  # a replica per half deadline of queued work
                threshold = capacity_rps * (service.deadline_s or 0.0) / 2
                pod_policy = policies.Keda(service, variant, threshold, to_zero=True)
            else:
                pod_policy = policies.Hpa(service, variant, HPA_FRACTION * capacity_rps)
            pod_policy.name = policy
            lane_policies.append(pod_policy)
    # Every policy starts alike: the interactive service warm on demand (replicas Ready for
    # its first minutes' busiest minute, as the benchmark starts), the batch one at zero.
    sims = []
    start_nodes: dict[str, int] = {}
    for (scen, trace), service, variant, lane_policy in zip(
        lanes, services, running, lane_policies, strict=True
    ):
        initial = nodes = None
        if not service.batch:
            alone = scen.domain_service(only_variant=variant)
            initial, nodes = bench.warm_start(trace, scen, alone, pools)
            start_nodes.update(nodes)
        sims.append(
            engine.Simulator(
                trace,
                scen,
                lane_policy,
                seed=case.seed,
                initial=initial,
                initial_nodes=nodes,
                cluster=cluster,
            )
        )
    if joint is not None:
        state = model.PlannerState(last_nodes=start_nodes)
        for sim in sims:
            state = planner.adopt(state, sim.service, dict(sim.desired), 0.0)
        joint.state = state
    result = engine.Group(cluster, sims, joint, manager).run()
    inter, batch = (result.services[s.service.key] for s in sims)
    per_million = 1e6 / max(1, result.requests)
    return Record(
        case=f"gen{case.seed}",
        split=case.split,
        policy=policy,
        cost_usd=result.cost_usd,
        interactive_attainment=inter.slo_attainment,
        batch_attainment=batch.slo_attainment,
        interactive_requests=inter.requests,
        batch_requests=batch.requests,
        usd_per_million=result.cost_usd * per_million,
        kwh_per_million=math.nan if result.energy_kwh is None else result.energy_kwh * per_million,
        g_co2_per_million=math.nan if result.co2_g is None else result.co2_g * per_million,
        interruptions=result.interruptions,
        scale_events=result.scale_events,
        elapsed_s=time.perf_counter() - t0,
    )


def _reachable(
    lane: tuple[scenario.Scenario, traces.Trace], case: tracegen.Case, t0: float
) -> Record:
    """The interactive service alone, capacity for its busiest second ordered at t=0 on demand."""
    scen, trace = lane
    service = scen.domain_service()
    pools = scen.domain_pools()
    spot = {p.name for p in scen.pools if p.spot}
    on_demand = next(v.name for v in service.variants if v.pool not in spot)
    warm = bench.warm_start(trace, scen, scen.domain_service(only_variant=on_demand), pools)
    bound = bench.reachable(trace, scen.without_spot().domain_service(), pools, warm)
    sim = engine.Simulator(
        trace, scen, bound, seed=case.seed, initial=warm[0], initial_nodes=warm[1]
    )
    result = sim.run()
    return Record(
        case=f"gen{case.seed}",
        split=case.split,
        policy="reachable",
        cost_usd=math.nan,
        interactive_attainment=result.slo_attainment,
        batch_attainment=math.nan,
        interactive_requests=result.requests,
        batch_requests=0,
        usd_per_million=math.nan,
        kwh_per_million=math.nan,
        g_co2_per_million=math.nan,
        interruptions=0,
        scale_events=0,
        elapsed_s=time.perf_counter() - t0,
    )


def _oracle(
    lanes: Sequence[tuple[scenario.Scenario, traces.Trace]], case: tracegen.Case, t0: float
) -> Record:
    """The interactive services' oracles plus the batch services' fluid floors."""
    cost = 0.0
    for scen, trace in lanes:
        service = scen.domain_service()
        if not service.batch:
            on_demand = scen.without_spot()
            cost += oracle.solve(trace, on_demand, attainment=bench.ATTAINMENT_BAR).cost_usd
            continue
        pools = {p.name: p for p in scen.domain_pools()}
        perf = scen.perf()
        usd_per_request = min(
            pools[v.pool].usd_per_hour / v.resources.fits_per_node(pools[v.pool].node) / 3600.0
            * perf[v.name].service_s / perf[v.name].slots
            for v in service.variants
        )  # fmt: skip
        cost += trace.arrivals_s.size * usd_per_request
    return Record(
        case=f"gen{case.seed}", split=case.split, policy="oracle", cost_usd=cost,
        interactive_attainment=math.nan, batch_attainment=math.nan, interactive_requests=0,
        batch_requests=0, usd_per_million=math.nan, kwh_per_million=math.nan,
        g_co2_per_million=math.nan, interruptions=0, scale_events=0,
        elapsed_s=time.perf_counter() - t0,
    )  # fmt: skip


def cases(per_half: int) -> list[tuple[tracegen.Case, str]]:
    """The first ``per_half`` cases of each half of the generated suite, interleaved."""
    suite = tracegen.suite()
    halves = [[c for c in suite if c.split == split] for split in tracegen.SPLITS]
    return [
        (c, c.split) for pair in zip(*(h[:per_half] for h in halves), strict=True) for c in pair
    ]


def _summary(records: Sequence[Record]) -> dict[str, object]:
    """Per policy: the means; infscale's spot saving over infscale-no-spot per case; the bars."""
    by_policy: dict[str, list[Record]] = {}
    for r in records:
        by_policy.setdefault(r.policy, []).append(r)
    means = {
        policy: {
            "cost_usd": statistics.fmean(r.cost_usd for r in rows),
            "interactive_attainment_min": min(r.interactive_attainment for r in rows),
            "interactive_attainment_mean": statistics.fmean(r.interactive_attainment for r in rows),
            "batch_attainment_min": min(r.batch_attainment for r in rows),
            "usd_per_million": statistics.fmean(r.usd_per_million for r in rows),
            "kwh_per_million": statistics.fmean(r.kwh_per_million for r in rows),
            "g_co2_per_million": statistics.fmean(r.g_co2_per_million for r in rows),
        }
        for policy, rows in by_policy.items()
    }
    ours = {r.case: r for r in by_policy.get("infscale", [])}
    bare = {r.case: r for r in by_policy.get("infscale-no-spot", [])}
    savings = {
        case: 1.0 - ours[case].cost_usd / bare[case].cost_usd for case in ours if case in bare
    }
    floor = {r.case: r.cost_usd for r in by_policy.get("oracle", [])}
    vs_oracle = {case: ours[case].cost_usd / floor[case] for case in ours if case in floor}
    reach = {r.case: r.interactive_attainment for r in by_policy.get("reachable", [])}
    bars = {case: min(INTERACTIVE_BAR, reach.get(case, 1.0) - 0.005) for case in ours}
    return {
        "policies": means,
        "spot_saving": savings,
        "interactive_bar": bars,
        "cost_vs_oracle": vs_oracle,
        "bars": {
            "batch >= 0.999": all(r.batch_attainment >= BATCH_BAR for r in ours.values()),
            "interactive >= min(0.99, reachable - 0.005)": all(
                r.interactive_attainment >= bars[case] for case, r in ours.items()
            ),
            "spot saving >= 30 %": bool(savings) and min(savings.values()) >= SPOT_SAVING_BAR,
            "cost <= 1.25x oracle": bool(vs_oracle) and max(vs_oracle.values()) <= 1.25,
        },
    }


def _table(records: Sequence[Record]) -> rich_table.Table:
    table = rich_table.Table(title="economics: chat (interactive) + index (batch), shared pools")
    for column in (
        "case", "split", "policy", "$", "chat att", "batch att", "$/1M", "kWh/1M", "gCO2/1M",
        "spot lost", "events",
    ):  # fmt: skip
        table.add_column(
            column, justify="left" if column in ("case", "split", "policy") else "right"
        )
    for r in records:
        table.add_row(
            r.case, r.split, r.policy, f"{r.cost_usd:.2f}", f"{r.interactive_attainment:.4f}",
            f"{r.batch_attainment:.4f}", f"{r.usd_per_million:.2f}", f"{r.kwh_per_million:.2f}",
            f"{r.g_co2_per_million:.0f}", str(r.interruptions), str(r.scale_events),
        )  # fmt: skip
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: every policy on every case, a table, a summary and the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="economics-results.json")
    parser.add_argument("--scenario", default="economics", help="name or YAML path")
    parser.add_argument("--cases", type=int, default=4, help="generated cases per half")
    parser.add_argument("--hours", type=float, default=2.0, help="replay length")
    parser.add_argument("--policy", action="append", choices=POLICIES, help="(repeatable)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    con = rich_console.Console(width=160, log_path=False)
    shared = scenario.load_shared(args.scenario)
    tasks = [(case, policy) for case, _ in cases(args.cases) for policy in args.policy or POLICIES]
    con.log(f"{len(tasks)} replay(s) of {args.hours:g} h on {args.jobs} process(es)")
    records: list[Record] = []
    t0 = time.perf_counter()
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=spawn) as pool:
        futures = [pool.submit(replay, shared, case, policy, args.hours) for case, policy in tasks]
        for future in concurrent.futures.as_completed(futures):
            r = future.result()
            records.append(r)
            con.log(
                f"{r.case} / {r.policy}: ${r.cost_usd:.2f}, chat {r.interactive_attainment:.4f}, "
                f"batch {r.batch_attainment:.4f} ({r.elapsed_s:.0f} s) "
                f"[{len(tasks) - len(records)} left, {time.perf_counter() - t0:.0f} s elapsed]"
            )
    order = {(c.seed, p): i for i, (c, p) in enumerate(tasks)}
    records.sort(key=lambda r: order[(int(r.case[3:]), r.policy)])
    summary = _summary(records)
    con.print(_table(records))
    con.print_json(data=summary)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"records": [dataclasses.asdict(r) for r in records], "summary": summary,
             "args": vars(args)},
            indent=2,
        )
    )  # fmt: skip
    con.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    from infscale.sim import economics  # the spawned workers unpickle infscale.sim.economics's

    sys.exit(economics.main())
