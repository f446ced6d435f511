"""The oracle: the cost of the cheapest schedule that knows the future, as an integer program.

It knows the whole trace, and still pays every replica's startup and every node's provisioning
time. Per slice ``t`` (``slice_s`` wide) and variant ``v`` / pool ``p``:

    x[t,v]  Ready replicas          a[t,v]  alive replicas (Ready or starting)
    m[t,p]  Ready nodes in use      n[t,p]  billed nodes (Ready or provisioning)
    z[t]    1 if the slice may miss its burst need (below)

    minimise   sum_t,p usd_per_hour[p] * n[t,p] * slice_s / 3600
    s.t.       sum_v capacity_rps[v] x[t,v] >= mean_rps[t]      (the slice's arrival rate)
               sum_v drain_rps[v] x[t,v] >= (1 - z[t]) burst_factor burst_rps[t]
               sum_t arrivals[t] z[t] <= (1 - attainment) * all arrivals
               a[t,v] >= x[t+k,v]   for k = 0..ceil(startup_s / slice_s)
               sum_{v on p} request[v,k] a[t,v] <= shape[p,k] m[t,p]
               sum_{v on p} a[t,v] / fits[v,p] <= m[t,p]     (whole replicas per node)
               n[t,p] >= m[t+k,p]   for k = 0..ceil(provisioning_s / slice_s)
               min_nodes <= m, n <= max_nodes;  sum_v x[t,v] >= min_replicas

``capacity_rps`` is the spec's sustainable rate at the SLO, the unit every policy plans in.
``drain_rps`` = slots / service_s is what a replica serves flat out, and ``burst_rps[t]`` the
largest A / (w + wait_s) over the windows of 1 to 60 whole seconds ending in the slice (A arrivals
in w seconds; ``wait_s`` = the SLO minus the slowest variant's service time): requests that come
faster than the replicas drain them must all be done within their wait, so a one-second burst of
67 requests (the Azure code trace has them) needs capacity its minute's rate does not show (an
earlier oracle that covered the peak of 10 s bins met 95.5 % of that trace's requests). Slices
holding at most 1 - attainment of the requests may skip the burst need, as the bar allows. The
fluid view ignores the variance of service times, so the benchmark replays the schedule and
raises ``burst_factor`` until the replay reaches the bar.

A replica Ready in slice t+k must be alive since t (it started before), and a node used at t+k
was billed since t. Packing is the per-resource (fluid) bound plus the count of whole replicas a
node holds of each shape (exact for the scenarios' one-shape pools: a 3-cpu replica takes a whole
4-cpu node in any real schedule). Capacity before t = 0 is free (every policy starts warm).
Solved with HiGHS (scipy milp). It is a reference, not a proof of optimality: its rounding to
whole slices is conservative, so a policy can come in a few percent under it.
Also reported: the fluid floor (divisible capacity, no cold start, mean rate per slice).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import optimize as sp_optimize
from scipy import sparse

from infscale.domain import pricing
from infscale.sim import scenario as scenario_mod
from infscale.sim import traces


@dataclasses.dataclass(frozen=True)
class OracleSolution:
    """The oracle's cost and its schedule."""

    cost_usd: float
    lower_bound_usd: float  # HiGHS's dual bound: equals cost_usd when solved to optimality
    fluid_floor_usd: float
    slice_s: float
    replicas: list[dict[str, int]]  # alive replicas per slice
    nodes: list[dict[str, int]]
    status: str


def solve(
    trace: traces.Trace,
    scen: scenario_mod.Scenario,
    slice_s: float = 60.0,
    time_limit_s: float = 60.0,
    attainment: float = 0.99,
    burst_factor: float = 1.0,
) -> OracleSolution:
    """Solve the time-sliced program for one trace and scenario (``burst_factor`` scales the
    burst need, for a replay that finds the fluid view too kind)."""
    service = scen.domain_service()
    pools = {p.name: p for p in scen.domain_pools()}
    # A per-request quality floor bars the variants under it; an average floor is a row a slice.
    variants = [
        v
        for v in service.variants
        if v.resources.fits_per_node(pools[v.pool].node) > 0
        and (service.quality_average or not service.below_floor(v))
    ]
    pool_names = sorted(pools)
    n_t = max(1, math.ceil(trace.duration_s / slice_s))
    perf = scen.perf()
    wait_s = max(0.0, service.slo_latency_s - max(perf[v.name].service_s for v in variants))
    burst = burst_factor * burst_rps(trace, n_t, slice_s, wait_s)
    mean = np.pad(trace.rate_per_bin(slice_s), (0, n_t))[:n_t]
    n_v, n_p = len(variants), len(pool_names)

    def xi(t: int, v: int) -> int:
        return t * n_v + v

    def ai(t: int, v: int) -> int:
        return n_t * n_v + t * n_v + v

    def mi(t: int, p: int) -> int:
        return 2 * n_t * n_v + t * n_p + p

    def ni(t: int, p: int) -> int:
        return 2 * n_t * n_v + n_t * n_p + t * n_p + p

    def zi(t: int) -> int:  # 1: the slice may miss the SLO (its requests count against the bar)
        return 2 * n_t * n_v + 2 * n_t * n_p + t

    n_vars = 2 * n_t * n_v + 2 * n_t * n_p + n_t
    c = np.zeros(n_vars)
    upper = np.full(n_vars, float(service.max_replicas))
    lower = np.zeros(n_vars)
    for t in range(n_t):
        for p, name in enumerate(pool_names):
            c[ni(t, p)] = pools[name].usd_per_hour * slice_s / 3600.0
            for idx in (mi(t, p), ni(t, p)):
                upper[idx] = pools[name].max_nodes
            lower[ni(t, p)] = pools[name].min_nodes
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lb: list[float] = []
    ub: list[float] = []

    def row(entries: list[tuple[int, float]], lo: float, hi: float) -> None:
        r = len(lb)
        for col, val in entries:
            rows.append(r)
            cols.append(col)
            vals.append(val)
        lb.append(lo)
        ub.append(hi)

    drain_rps = [perf[var.name].slots / perf[var.name].service_s for var in variants]
    for t in range(n_t):
        upper[zi(t)] = 1.0
        row([(xi(t, v), var.capacity_rps) for v, var in enumerate(variants)], mean[t], np.inf)
        drain = [(xi(t, v), rate) for v, rate in enumerate(drain_rps)]
        row([*drain, (zi(t), float(burst[t]))], float(burst[t]), np.inf)
        if service.min_replicas > 0:
            row([(xi(t, v), 1.0) for v in range(n_v)], float(service.min_replicas), np.inf)
        if service.quality_average and service.quality_floor is not None:
            floor = service.quality_floor
            mix = [
                (xi(t, v), var.capacity_rps * ((var.quality or 0.0) - floor))
                for v, var in enumerate(variants)
            ]
            row(mix, 0.0, np.inf)
        for v, var in enumerate(variants):
            for k in range(math.ceil(var.startup_s / slice_s) + 1):
                if t + k < n_t:
                    row([(ai(t, v), 1.0), (xi(t + k, v), -1.0)], 0.0, np.inf)
        for p, name in enumerate(pool_names):
            shape = pools[name].node.as_dict()
            on_pool = [(v, var) for v, var in enumerate(variants) if var.pool == name]
            dims = {d for _, var in on_pool for d, q in var.resources.as_dict().items() if q > 0}
            for dim in sorted(dims):
                entries = [(ai(t, v), var.resources.as_dict().get(dim, 0.0)) for v, var in on_pool]
                row([*entries, (mi(t, p), -shape.get(dim, 0.0))], -np.inf, 0.0)
            if on_pool:
                shares = [(ai(t, v), pricing.replica_share(var, pools[name])) for v, var in on_pool]
                row([*shares, (mi(t, p), -1.0)], -np.inf, 0.0)
            for k in range(math.ceil(pools[name].provisioning_s / slice_s) + 1):
                if t + k < n_t:
                    row([(ni(t, p), 1.0), (mi(t + k, p), -1.0)], 0.0, np.inf)
    counts = mean * slice_s
    row([(zi(t), float(counts[t])) for t in range(n_t)], 0.0, (1.0 - attainment) * counts.sum())
    matrix = sparse.csr_array((vals, (rows, cols)), shape=(len(lb), n_vars))
    result = sp_optimize.milp(
        c,
        constraints=sp_optimize.LinearConstraint(matrix, np.array(lb), np.array(ub)),
        integrality=np.ones(n_vars),
        bounds=sp_optimize.Bounds(lower, upper),
        options={"time_limit": time_limit_s, "mip_rel_gap": 1e-3, "disp": False},
    )
    if result.x is None:
        raise RuntimeError(f"oracle found no solution: {result.message}")
    x = np.round(np.asarray(result.x)).astype(int)
    replicas = [{var.name: int(x[ai(t, v)]) for v, var in enumerate(variants)} for t in range(n_t)]
    nodes = [{name: int(x[ni(t, p)]) for p, name in enumerate(pool_names)} for t in range(n_t)]
    cost = float(sum(x[ni(t, p)] * c[ni(t, p)] for t in range(n_t) for p in range(n_p)))
    cheapest = min(
        pricing.usd_per_rps_hour(var, pools[var.pool], var.capacity_rps) for var in variants
    )
    floor = float(np.sum(mean) * cheapest * slice_s / 3600.0)
    bound = getattr(result, "mip_dual_bound", None)
    dual_usd = float(bound) if bound is not None and math.isfinite(bound) else cost
    status = "optimal" if result.status == 0 else f"time limit, dual bound ${dual_usd:.2f}"
    return OracleSolution(cost, min(dual_usd, cost), floor, slice_s, replicas, nodes, status)


def burst_rps(
    trace: traces.Trace,
    n_t: int,
    slice_s: float,
    wait_s: float,
    max_window_s: int = 60,
) -> np.ndarray:
    """Per slice, the largest arrivals / (window + ``wait_s``) over the windows of 1 to
    ``max_window_s`` whole seconds that end in it."""
    seconds = int(n_t * slice_s)
    counts, _ = np.histogram(trace.arrivals_s, bins=seconds, range=(0.0, float(seconds)))
    total = np.concatenate([[0.0], np.cumsum(counts, dtype=float)])
    need = np.zeros(seconds)
    for width in range(1, max_window_s + 1):
        if width > seconds:
            break
        arrivals = total[width:] - total[:-width]  # the window ending at second width-1+i
        need[width - 1 :] = np.maximum(need[width - 1 :], arrivals / (width + wait_s))
    return np.asarray(need.reshape(n_t, int(slice_s)).max(axis=1))
