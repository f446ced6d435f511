"""Cost-optimal allocation: replicas per variant and nodes per pool, as one MILP over all services.

Variables: integer replicas ``r[s,v]``, integer nodes ``n[p]`` (within the pool's min/max),
continuous shortfall ``u[s]`` (rps left uncovered, heavily penalised, so the program is always
feasible and the shortfall is reported), continuous new replicas ``d[s,v] >= r[s,v] - current``
(only where a pair runs replicas now; where it runs none, ``d = r`` and its cost is on ``r``).

    minimise  sum_p usd_per_hour[p] n[p]                     (what the cluster pays)
            + sum cold_start[s,v] d[s,v]          (a new replica's start, spread over amortize_s)
            + tiny replica cost + sum penalty[s] u[s]  (interactive services' above batch ones')
    s.t.      sum_v capacity_rps[s,v] r[s,v] + u[s] >= demand_rps[s]
              sum_v capacity_rps[s,v] r[s,v] (quality[v] - floor[s]) >= 0  (an average floor)
              min_total[s] <= sum_v r[s,v] <= max_total[s]
              sum_{(s,v) on p} request[v,k] r[s,v] <= shape[p,k] n[p]   for each resource k
              sum_{(s,v) on p} r[s,v] / fits[v,p] <= n[p]                (whole replicas per node)

The per-resource rows are the fluid relaxation of bin packing; the share row counts what a node
really holds of each shape (two 3-cpu replicas never share a 4-cpu node), exact for a pool of one
shape and conservative for mixed shapes. The node count of the plan is then what
first-fit-decreasing needs on the real node shapes, so the plan always packs. HiGHS
(``scipy.optimize.milp``) solves it with a time limit. A large fleet may not be solved in time,
and HiGHS's best so far can then be far from optimal; the plan is then the cheapest, by the same
objective, of that and the LP relaxation (fast) rounded down and topped up by the greedy
allocator (cheapest usd per rps first; alone only if the relaxation fails too). Past
``solver_max_pairs`` the MILP is not tried at all: it never finishes in time there.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
from scipy import optimize as sp_optimize
from scipy import sparse

from infscale.domain import model, pricing, tuning


@dataclasses.dataclass(frozen=True)
class Demand:
    """One service's requirement for this decision."""

    service: model.ServiceSpec
    demand_rps: float
    capacity_rps: Mapping[str, float]  # usable rps per replica of each variant
    min_total: int
    max_total: int
    current: Mapping[str, int] = dataclasses.field(default_factory=dict)
    cold_start_s: Mapping[str, float] = dataclasses.field(default_factory=dict)  # per new replica
    switch_weight: float | None = None  # None: the settings'; 0 once a move has been paid for
    loss_floor_rps: float = 0.0
    """What the capacity off each spot pool must carry (the rate arriving now): losing one costs
    headroom until its replacements are Ready, not the SLO."""
    fallback_rps: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """Variants another one dominates (``demand.dominated``), out of ``capacity_rps``: their
    rps per replica, used only where the others cannot cover the demand: a replica of one costs
    as much again as a new replica of the service's dearest other variant."""

    def usable_rps(self, variant: str) -> float:
        """What one replica of ``variant`` carries, a dominated variant's included."""
        return self.capacity_rps.get(variant, 0.0) or self.fallback_rps.get(variant, 0.0)


@dataclasses.dataclass(frozen=True)
class Cover:
    """The cheapest single-variant cover of one demand, by node share, and the cost of moving."""

    variant: str
    replicas: int
    usd_per_hour: float
    move_usd: float  # paid once: the new replicas' node share while they start


@dataclasses.dataclass(frozen=True)
class Allocation:
    """The optimiser's answer before stabilisation."""

    replicas: Mapping[str, Mapping[str, int]]
    nodes: Mapping[str, int]
    shortfall_rps: Mapping[str, float]
    method: str  # "milp", "milp-time-limit", "lp-rounded: <why>" or "greedy: <why>"


def cheapest_cover(dem: Demand, pools: Mapping[str, model.PoolSpec]) -> Cover | None:
    """The single variant that covers ``dem`` (within its bounds) at the lowest node share."""
    best: Cover | None = None
    for variant in dem.service.variants:
        pool = pools.get(variant.pool)
        cap = dem.capacity_rps.get(variant.name, 0.0)
        fits = 0 if pool is None else variant.resources.fits_per_node(pool.node)
        if pool is None or cap <= 0 or fits == 0:
            continue
        if _average_floor(dem) is not None and dem.service.below_floor(variant):
            continue  # alone, it would be the whole mix
        if pool.spot and not _spot_alone(dem):
            continue
        share_usd = pool.usd_per_hour * (1.0 / fits)  # pricing.replica_usd_per_hour
        count = max(dem.min_total, math.ceil(dem.demand_rps / cap - 1e-9))
        if count > min(dem.max_total, fits * pool.max_nodes):
            continue
        new = max(0, count - dem.current.get(variant.name, 0))
        cold_s = dem.cold_start_s.get(variant.name, variant.startup_s)
        cover = Cover(variant.name, count, count * share_usd, new * share_usd * cold_s / 3600.0)
        if best is None or (cover.usd_per_hour, cover.variant) < (best.usd_per_hour, best.variant):
            best = cover
    return best


def optimize(
    demands: Sequence[Demand],
    pools: Mapping[str, model.PoolSpec],
    cfg: tuning.PlannerSettings,
) -> Allocation:
    """Cheapest replicas and nodes covering every demand: the MILP's optimum when HiGHS proves
    one within its time limit; otherwise the cheaper by the program's own objective of the
    MILP's best so far and its LP relaxation rounded down and topped up greedily (the greedy
    allocation alone when the relaxation fails too: on 1,000 services the rounded relaxation
    cost 12-38 % less than it in every plan of ``bench.planning_time``)."""
    if not (cfg.use_solver and demands):
        return _greedy(demands, pools, "greedy: solver disabled")
    program = _program(demands, pools, cfg)
    why = f"more than {cfg.solver_max_pairs} (service, variant) pairs for the MILP"
    candidates = []
    if len(program.pairs) <= cfg.solver_max_pairs:
        result = _solve(program, cfg, integral=True)
        if result.status == 0 and result.x is not None:
            return _allocation(program, np.asarray(result.x), demands, pools, "milp")
        why = "the MILP did not finish within its time limit"
        if result.x is not None:
            best = _allocation(program, np.asarray(result.x), demands, pools, "milp-time-limit")
            candidates.append(best)
    relaxed = _solve(program, cfg, integral=False)
    if relaxed.status == 0 and relaxed.x is not None:
        candidates.append(_rounded(program, np.asarray(relaxed.x), demands, pools, why))
    else:
        candidates.append(_greedy(demands, pools, f"greedy: {why}, nor the LP relaxation"))
    return min(candidates, key=lambda a: program.usd(a, demands))


def _pairs(
    demands: Sequence[Demand], pools: Mapping[str, model.PoolSpec]
) -> list[tuple[int, model.VariantSpec, model.PoolSpec]]:
    pairs = []
    for i, dem in enumerate(demands):
        for variant in dem.service.variants:
            pool = pools.get(variant.pool)
            if pool is not None and variant.resources.fits_per_node(pool.node) > 0:
                pairs.append((i, variant, pool))
    return pairs


@dataclasses.dataclass(frozen=True)
class _Program:
    """The MILP of the module docstring. Columns: replicas of each (service, variant) pair, nodes
    per pool (``pool_names`` order), shortfall per service, new replicas of each pair that has
    replicas now (where it has none, every replica is new: its start is priced on the replica)."""

    pairs: list[tuple[int, model.VariantSpec, model.PoolSpec]]
    pool_names: list[str]
    c: npt.NDArray[np.float64]
    replica_usd: npt.NDArray[np.float64]  # per pair: a replica's tiny tie-break and its carbon
    switch_usd: npt.NDArray[np.float64]  # per pair: a new replica's start, amortised
    constraints: sp_optimize.LinearConstraint
    integrality: npt.NDArray[np.float64]
    bounds: sp_optimize.Bounds
    penalties: npt.NDArray[np.float64]  # per service: usd per uncovered rps

    @property
    def off_n(self) -> int:
        return len(self.pairs)

    @property
    def off_u(self) -> int:
        return self.off_n + len(self.pool_names)

    def usd(self, allocation: Allocation, demands: Sequence[Demand]) -> float:
        """The program's objective at ``allocation`` (with its first-fit-decreasing nodes)."""
        total = sum(
            self.c[self.off_n + j] * allocation.nodes.get(name, 0)
            for j, name in enumerate(self.pool_names)
        )
        for k, (i, variant, _) in enumerate(self.pairs):
            count = allocation.replicas[demands[i].service.key].get(variant.name, 0)
            new = max(0, count - demands[i].current.get(variant.name, 0))
            total += self.replica_usd[k] * count + self.switch_usd[k] * new
        for i, dem in enumerate(demands):
            total += self.penalties[i] * allocation.shortfall_rps.get(dem.service.key, 0.0)
        return float(total)


INTERACTIVE_FIRST = 100.0
"""How much more an interactive service's node-worth of uncovered rps costs than a batch
service's: batch yields a node to interactive work however many more rps its replicas carry
per node (see _program)."""


def _shortfall_penalty(demands: Sequence[Demand], pools: Mapping[str, model.PoolSpec]) -> float:
    """The cost of one uncovered rps: more than any whole node that could cover it (a sliver under
    max_price / penalty, < 0.1 rps, may stay uncovered rather than take a whole new node)."""
    min_capacity = min(
        (c for d in demands for c in (*d.capacity_rps.values(), *d.fallback_rps.values()) if c > 0),
        default=1.0,
    )
    carbon = max((d.service.carbon_usd_per_tonne for d in demands), default=0.0)
    max_price = max(
        (
            p.usd_per_hour
            + pricing.energy_usd_per_hour(p)
            + (0.0 if p.power is None else (p.power.g_co2_per_kwh or 0.0) * p.power.max_w)
            * carbon
            / 1e9
            for p in pools.values()
        ),
        default=1.0,
    )
    return 10.0 * max_price * max(1.0, 1.0 / min_capacity) + 1.0


def _program(
    demands: Sequence[Demand], pools: Mapping[str, model.PoolSpec], cfg: tuning.PlannerSettings
) -> _Program:
    pairs = _pairs(demands, pools)
    pool_names = sorted(pools)
    pool_index = {name: j for j, name in enumerate(pool_names)}
    n_r, n_p, n_s = len(pairs), len(pool_names), len(demands)
    off_n, off_u, off_d = n_r, n_r + n_p, n_r + n_p + n_s
    penalty = _shortfall_penalty(demands, pools)
    # One entry per (service, variant) pair, in service order.
    service = np.array([i for i, _, _ in pairs], dtype=np.int64)
    on_pool = np.array([pool_index[p.name] for _, _, p in pairs], dtype=np.int64)
    fits = np.array([v.resources.fits_per_node(p.node) for _, v, p in pairs], dtype=float)
    share_usd = np.array([pricing.planned_usd_per_hour(p) for _, _, p in pairs]) * (1.0 / fits)
    cap = np.array([demands[i].usable_rps(v.name) for i, v, _ in pairs])
    fallback = np.array(
        [0.0 if demands[i].capacity_rps.get(v.name, 0.0) > 0 else cap[k]
         for k, (i, v, _) in enumerate(pairs)]
    )  # fmt: skip
    cold_s = np.array([demands[i].cold_start_s.get(v.name, v.startup_s) for i, v, _ in pairs])
    # Interactive before batch: with batch work in the program, an interactive service's
    # uncovered rps costs INTERACTIVE_FIRST times a batch one's, and a batch one's is further
    # divided by how many more rps a node carries of the batch work than of the interactive
    # (an embedding batch at 1,000 rps a replica must not outweigh chat at 5): batch waits.
    batch = np.array([demands[i].service.batch for i, _, _ in pairs], dtype=bool)
    per_node = cap * fits
    batch_node = float(per_node[batch].max(initial=0.0))
    interactive_node = float(per_node[~batch & (per_node > 0)].min(initial=np.inf))
    denser = max(1.0, batch_node / interactive_node) if np.isfinite(interactive_node) else 1.0
    first = INTERACTIVE_FIRST if batch.any() else 1.0
    penalties = np.array(
        [penalty / denser if d.service.batch else penalty * first for d in demands]
    )
    weights = [cfg.switch_weight if d.switch_weight is None else d.switch_weight for d in demands]
    current = np.array([float(demands[i].current.get(v.name, 0)) for i, v, _ in pairs])
    max_total = np.array([float(d.max_total) for d in demands])
    max_nodes = np.array([float(p.max_nodes) for _, _, p in pairs])
    carbon_usd = np.array(
        [pricing.carbon_usd_per_hour(v, p, demands[i].service.carbon_usd_per_tonne)
         for i, v, p in pairs]
    )  # fmt: skip
    switch_usd = np.array(weights)[service] * share_usd * cold_s / cfg.amortize_s
    # A dominated variant's replica costs, beyond its own price, what a new replica of the
    # service's dearest planned variant costs: never cheaper than one of those where they fit.
    planned_usd = np.zeros(n_s)
    planned = (fallback <= 0) & (cap > 0)
    np.maximum.at(planned_usd, service, np.where(planned, share_usd + switch_usd, 0.0))
    fallback_usd = np.where(fallback > 0, planned_usd[service], 0.0)
    replica_usd = 1e-4 * share_usd + carbon_usd + fallback_usd
    running = current > 0  # the pairs with a column of new replicas
    n_vars = off_d + int(running.sum())

    c = np.zeros(n_vars)
    lower = np.zeros(n_vars)
    upper = np.full(n_vars, np.inf)
    integrality = np.zeros(n_vars)
    c[:n_r] = replica_usd + np.where(running, 0.0, switch_usd)
    c[off_d:] = switch_usd[running]
    integrality[:n_r] = 1
    # A variant that may carry no traffic (too slow, under a quality floor) gets no replicas.
    upper[:n_r] = np.where(cap > 0, np.minimum(max_total[service], fits * max_nodes), 0.0)
    for name, j in pool_index.items():
        c[off_n + j] = pricing.planned_usd_per_hour(pools[name]) + pricing.energy_usd_per_hour(
            pools[name]
        )
        lower[off_n + j] = pools[name].min_nodes
        upper[off_n + j] = pools[name].max_nodes
        integrality[off_n + j] = 1
    c[off_u : off_u + n_s] = penalties

    # Per service: its coverage row, its replica-count row (when it has pairs), one row per pair
    # with replicas now bounding its new replicas.
    per_service = np.bincount(service, minlength=n_s)
    has_pairs = (per_service > 0).astype(np.int64)
    runs = np.bincount(service[running], minlength=n_s)
    first_row = np.concatenate(([0], np.cumsum(1 + has_pairs + runs)[:-1]))
    first_run = np.concatenate(([0], np.cumsum(runs)[:-1]))
    pair = np.arange(n_r)
    run = np.arange(int(running.sum()))  # the new-replica columns, in pair order
    run_service = service[running]
    new_row = first_row[run_service] + 1 + has_pairs[run_service] + run - first_run[run_service]
    n_rows = int(first_row[-1] + 1 + has_pairs[-1] + runs[-1]) if n_s else 0
    row_lb = np.full(n_rows, -np.inf)
    row_ub = np.full(n_rows, np.inf)
    row_lb[first_row] = [d.demand_rps for d in demands]
    counted = first_row[has_pairs > 0] + 1
    served = [d for d, n in zip(demands, per_service, strict=True) if n]
    row_lb[counted] = [float(d.min_total) for d in served]
    row_ub[counted] = [float(d.max_total) for d in served]
    row_ub[new_row] = current[running]
    rows = [first_row[service], first_row, first_row[service] + 1, new_row, new_row]
    cols = [pair, off_u + np.arange(n_s), pair, pair[running], off_d + run]
    vals = [cap, np.ones(n_s), np.ones(n_r), np.ones(run.size), -np.ones(run.size)]

    # Per pool: one row per resource its variants request, and the whole-replica share row.
    requests: dict[str, npt.NDArray[np.float64]] = {}
    for k, (_, variant, _) in enumerate(pairs):
        for dim, amount in variant.resources.as_dict().items():
            if amount > 0:
                requests.setdefault(dim, np.zeros(n_r))[k] = amount
    pool_rows_lb: list[float] = []
    for name, j in pool_index.items():
        mine = np.flatnonzero(on_pool == j)
        if not mine.size:
            continue
        shape = pools[name].node.as_dict()
        for dim in sorted(d for d, amount in requests.items() if amount[mine].any()):
            rows += [np.full(mine.size + 1, n_rows + len(pool_rows_lb))]
            cols += [np.append(mine, off_n + j)]
            vals += [np.append(requests[dim][mine], -shape.get(dim, 0.0))]
            pool_rows_lb.append(-np.inf)
        # Whole replicas per node: 3-cpu replicas on 4-cpu nodes take one node each.
        rows += [np.full(mine.size + 1, n_rows + len(pool_rows_lb))]
        cols += [np.append(mine, off_n + j)]
        vals += [np.append(1.0 / fits[mine], -1.0)]
        pool_rows_lb.append(-np.inf)

    # An average quality floor: the capacity-weighted mean quality of the mix reaches it (each
    # variant's share of the traffic is its share of the capacity).
    floor_rows = 0
    for i, dem in enumerate(demands):
        floor = _average_floor(dem)
        if floor is None:
            continue
        mine = np.flatnonzero(service == i)
        quality = np.array([pairs[k][1].quality or 0.0 for k in mine])
        rows += [np.full(mine.size, n_rows + len(pool_rows_lb) + floor_rows)]
        cols += [mine]
        vals += [cap[mine] * (quality - floor)]
        floor_rows += 1
    # Spot: at most the service's share of its capacity on spot pools, and the capacity off each
    # spot pool carries its loss floor (the shortfall column keeps the program feasible).
    spot_lb: list[float] = []
    spot_ub: list[float] = []
    first_spot_row = n_rows + len(pool_rows_lb) + floor_rows
    for i, dem in enumerate(demands):
        mine = np.flatnonzero(service == i)
        on_spot = np.array([pairs[k][2].spot for k in mine], dtype=bool)
        if not on_spot.any() or on_spot.all():
            continue  # nothing on spot, or nothing else to put it on (demand.py says so)
        rows += [np.full(mine.size, first_spot_row + len(spot_lb))]
        cols += [mine]
        vals += [cap[mine] * (on_spot - dem.service.spot_max_share)]
        spot_lb.append(-np.inf)
        spot_ub.append(0.0)
        if dem.loss_floor_rps <= 0:
            continue
        for name in sorted({pairs[k][2].name for k in mine[on_spot]}):
            off = np.array([pairs[k][2].name != name for k in mine], dtype=bool)
            rows += [np.full(int(off.sum()) + 1, first_spot_row + len(spot_lb))]
            cols += [np.append(mine[off], off_u + i)]
            vals += [np.append(cap[mine[off]], 1.0)]
            spot_lb.append(dem.loss_floor_rps)
            spot_ub.append(np.inf)
    row_lb = np.concatenate((row_lb, pool_rows_lb, np.zeros(floor_rows), spot_lb))
    row_ub = np.concatenate(
        (row_ub, np.zeros(len(pool_rows_lb)), np.full(floor_rows, np.inf), spot_ub)
    )

    matrix = sparse.csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(row_lb), n_vars),
    )
    constraints = sp_optimize.LinearConstraint(matrix, row_lb, row_ub)
    bounds = sp_optimize.Bounds(lower, upper)
    return _Program(
        pairs, pool_names, c, replica_usd, switch_usd, constraints, integrality, bounds, penalties
    )


def spot_holds(
    dem: Demand, replicas: Mapping[str, int], pools: Mapping[str, model.PoolSpec]
) -> bool:
    """Whether ``replicas`` keep the service's spot rules: its share of the capacity on spot
    pools, and its loss floor carried off each one."""
    caps = {v.name: dem.capacity_rps.get(v.name, 0.0) * replicas.get(v.name, 0) for v in
            dem.service.variants}  # fmt: skip
    placed = [v for v in dem.service.variants if v.pool in pools]
    spot = {v.name: v.pool for v in placed if pools[v.pool].spot}
    if not spot or len(spot) == len(placed) or _spot_alone(dem):
        return True
    total = sum(caps.values())
    if sum(caps[v] for v in spot) > dem.service.spot_max_share * total + 1e-9:
        return False
    return all(
        sum(c for v, c in caps.items() if spot.get(v) != pool) >= dem.loss_floor_rps - 1e-9
        for pool in set(spot.values())
    )


def _spot_alone(dem: Demand) -> bool:
    """Whether a spot variant may carry the whole service (no share cap, no loss floor)."""
    return dem.service.spot_max_share >= 1.0 and dem.loss_floor_rps <= 0


def _average_floor(dem: Demand) -> float | None:
    """The service's quality floor when it holds on average over its traffic; else None."""
    return dem.service.quality_floor if dem.service.quality_average else None


def _solve(
    program: _Program, cfg: tuning.PlannerSettings, integral: bool
) -> sp_optimize.OptimizeResult:
    return sp_optimize.milp(
        program.c,
        constraints=program.constraints,
        integrality=program.integrality if integral else np.zeros_like(program.integrality),
        bounds=program.bounds,
        options={
            "time_limit": cfg.solver_time_limit_s,
            "mip_rel_gap": cfg.solver_mip_gap,
            "disp": False,
        },
    )


def _allocation(
    program: _Program,
    x: npt.NDArray[np.float64],
    demands: Sequence[Demand],
    pools: Mapping[str, model.PoolSpec],
    method: str,
) -> Allocation:
    replicas: dict[str, dict[str, int]] = {d.service.key: {} for d in demands}
    for k, (i, variant, _) in enumerate(program.pairs):
        replicas[demands[i].service.key][variant.name] = round(float(x[k]))
    for dem in demands:  # variants that cannot run anywhere get an explicit zero
        for variant in dem.service.variants:
            replicas[dem.service.key].setdefault(variant.name, 0)
    shortfall = {
        d.service.key: max(0.0, float(x[program.off_u + i])) for i, d in enumerate(demands)
    }
    return Allocation(replicas, _repack(replicas, demands, pools), shortfall, method)


def _rounded(
    program: _Program,
    x: npt.NDArray[np.float64],
    demands: Sequence[Demand],
    pools: Mapping[str, model.PoolSpec],
    why: str,
) -> Allocation:
    """The LP relaxation's replicas rounded down, and what that leaves uncovered filled in by
    the greedy allocator."""
    floors: dict[str, dict[str, int]] = {d.service.key: {} for d in demands}
    for k, (i, variant, _) in enumerate(program.pairs):
        # Rounding may tip an average floor over: the greedy top-up keeps to variants above it.
        below = _average_floor(demands[i]) is not None and demands[i].service.below_floor(variant)
        # Spot is the MILP's alone where it is bounded: rounding could break its rows.
        spot = pools[variant.pool].spot and not _spot_alone(demands[i])
        floors[demands[i].service.key][variant.name] = (
            0 if below or spot else math.floor(float(x[k]) + 1e-6)
        )
    return _greedy(demands, pools, f"lp-rounded: {why}", start=floors)


def _repack(
    replicas: Mapping[str, Mapping[str, int]],
    demands: Sequence[Demand],
    pools: Mapping[str, model.PoolSpec],
) -> dict[str, int]:
    """Node counts from first-fit-decreasing on the real shapes, within the pool's bounds (the
    program's own count may be higher where its share row over-counts mixed shapes)."""
    needed = pricing.pool_nodes_needed(replicas, [d.service for d in demands], pools)
    return {
        name: max(pool.min_nodes, min(needed.get(name, 0), pool.max_nodes))
        for name, pool in pools.items()
    }


def _greedy(
    demands: Sequence[Demand],
    pools: Mapping[str, model.PoolSpec],
    why: str,
    start: Mapping[str, Mapping[str, int]] | None = None,
) -> Allocation:
    """Cheapest usd per rps first, within the room left in each pool (aggregate resources), on
    top of the ``start`` replicas (none by default)."""
    start = start or {}
    chosen_by_service = {
        d.service.key: {
            v.name: start.get(d.service.key, {}).get(v.name, 0) for v in d.service.variants
        }
        for d in demands
    }
    room = {
        name: {k: v * p.max_nodes for k, v in p.node.as_dict().items()} for name, p in pools.items()
    }

    def take(variant: model.VariantSpec, count: int) -> None:
        for k, v in variant.resources.as_dict().items():
            room[variant.pool][k] = room[variant.pool].get(k, 0.0) - v * count

    for dem in demands:
        for variant in dem.service.variants:
            if variant.pool in pools:
                take(variant, chosen_by_service[dem.service.key][variant.name])
    replicas: dict[str, dict[str, int]] = {}
    shortfall: dict[str, float] = {}
    for dem in sorted(demands, key=lambda d: (d.service.batch, d.service.key)):  # batch last
        chosen = chosen_by_service[dem.service.key]
        left_rps = dem.demand_rps - sum(n * dem.usable_rps(name) for name, n in chosen.items())
        total = sum(chosen.values())
        if left_rps <= 1e-9 and total >= dem.min_total:  # covered by the start already
            replicas[dem.service.key] = chosen
            shortfall[dem.service.key] = 0.0
            continue
        ranked = sorted(
            (v for v in dem.service.variants if v.pool in pools),
            key=lambda v: (
                pricing.usd_per_rps_hour(v, pools[v.pool], dem.usable_rps(v.name)),
                v.name,
            ),
        )

        # The cheapest variant that can finish the job goes first: filling the replica budget
        # with a cheap small variant could leave the rest uncovered. Dominated ones come last.
        ranked.sort(
            key=lambda v: (
                dem.capacity_rps.get(v.name, 0.0) <= 0,
                not _finishes(dem, v, left_rps, total, room[v.pool]),
            )
        )
        # An average quality floor holds if every variant used is above it.
        averaged = _average_floor(dem) is not None
        for variant in ranked:
            if left_rps <= 1e-9 and total >= dem.min_total:
                break
            cap = dem.usable_rps(variant.name)
            if cap <= 0 or (averaged and dem.service.below_floor(variant)):
                continue
            if pools[variant.pool].spot and not _spot_alone(dem):
                continue  # bounded spot is planned by the MILP alone (its share and loss rows)
            want = max(0, math.ceil(left_rps / cap - 1e-9), dem.min_total - total)
            want = min(want, dem.max_total - total, _room_for(variant, room[variant.pool]))
            if want <= 0:
                continue
            chosen[variant.name] += want
            take(variant, want)
            total += want
            left_rps -= want * cap
        replicas[dem.service.key] = chosen
        shortfall[dem.service.key] = max(0.0, left_rps)
    return Allocation(replicas, _repack(replicas, demands, pools), shortfall, why)


def _finishes(
    dem: Demand, variant: model.VariantSpec, left_rps: float, total: int, room: Mapping[str, float]
) -> bool:
    """Whether ``variant`` alone covers ``left_rps`` within the replica budget and pool room."""
    cap = dem.usable_rps(variant.name)
    budget = min(dem.max_total - total, _room_for(variant, room))
    return cap > 0 and math.ceil(max(left_rps, 0.0) / cap - 1e-9) <= budget


def _room_for(variant: model.VariantSpec, room: Mapping[str, float]) -> int:
    counts = [
        math.floor(room.get(k, 0.0) / v + 1e-9)
        for k, v in variant.resources.as_dict().items()
        if v > 0
    ]
    return max(0, min(counts)) if counts else 10**6
