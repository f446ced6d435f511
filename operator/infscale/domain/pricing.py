"""The one cost model: what a replica occupies of its pool's nodes and what that costs, and how
many nodes a set of replicas needs (first-fit-decreasing on the real node shapes). The planner,
the optimiser, the simulator and the status (the reconciler) all price replicas with it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from infscale.domain import model


def replica_share(variant: model.VariantSpec, pool: model.PoolSpec) -> float:
    """The fraction of a node one replica occupies (1 / replicas per node); inf if it never fits.

    A variant that requests nothing never fits either: it gives no share to size nodes by. This
    is the one cost model: the planner, the simulator and the status (the reconciler) use it."""
    fits = variant.resources.fits_per_node(pool.node)
    return math.inf if fits == 0 else 1.0 / fits


def replica_usd_per_hour(variant: model.VariantSpec, pool: model.PoolSpec) -> float:
    """What one replica costs by the share of a node it occupies (inf if it never fits)."""
    return pool.usd_per_hour * replica_share(variant, pool)


def planned_usd_per_hour(pool: model.PoolSpec) -> float:
    """A node's price as the optimiser weighs it: a spot pool's with its expected reclaims, each
    a replacement billed through its provisioning time before it serves."""
    return pool.usd_per_hour * (1.0 + pool.interruptions_per_hour * pool.provisioning_s / 3600.0)


def energy_usd_per_hour(pool: model.PoolSpec) -> float:
    """Electricity one node of the pool is billed at full power, beyond its price (usdPerKwh: on
    premises; 0 where the price includes it, or the power is unknown)."""
    if pool.power is None:
        return 0.0
    return pool.power.usd_per_kwh * pool.power.max_w / 1000.0


def carbon_usd_per_hour(
    variant: model.VariantSpec, pool: model.PoolSpec, usd_per_tonne: float
) -> float:
    """What one replica's emissions at full power weigh at an internal carbon price (0 without
    one, or without the pool's power and carbon intensity)."""
    power = pool.power
    if usd_per_tonne <= 0 or power is None or power.g_co2_per_kwh is None:
        return 0.0
    kw = replica_share(variant, pool) * power.max_w / 1000.0
    return kw * power.g_co2_per_kwh / 1e6 * usd_per_tonne


def usd_per_rps_hour(
    variant: model.VariantSpec, pool: model.PoolSpec, capacity_rps: float
) -> float:
    """Node cost of serving one rps for an hour on this variant (inf when it cannot run)."""
    share = replica_share(variant, pool)
    if capacity_rps <= 0 or math.isinf(share):
        return math.inf
    return pool.usd_per_hour * share / capacity_rps


def share_usd_per_hour(
    replicas: Mapping[str, int], service: model.ServiceSpec, pools: Mapping[str, model.PoolSpec]
) -> float:
    """What a service's replicas cost by the share of a node each one occupies (inf, or nan on
    a free pool, when one never fits); status.usdPerHour reports it where finite."""
    total = 0.0
    for variant in service.variants:
        count = replicas.get(variant.name, 0)
        pool = pools.get(variant.pool)
        if count > 0 and pool is not None:
            total += count * replica_usd_per_hour(variant, pool)
    return total


def nodes_needed(items: Sequence[tuple[model.Resources, int]], node: model.Resources) -> int:
    """Nodes of shape ``node`` that first-fit-decreasing needs for ``count`` replicas of each shape.

    Replicas of equal shape are merged and nodes in the same state are kept as one entry with a
    multiplicity, so the cost grows with the number of distinct shapes, not of replicas.
    """
    shape_map = node.as_dict()
    keys = sorted({k for res, _ in items for k in res.as_dict()} | set(shape_map))
    shape = tuple(shape_map.get(k, 0.0) for k in keys)
    merged: dict[tuple[float, ...], int] = {}
    for res, count in items:
        if count > 0:
            vec = tuple(res.as_dict().get(k, 0.0) for k in keys)
            merged[vec] = merged.get(vec, 0) + count
    kinds = sorted(
        merged.items(),
        key=lambda kind: (
            -max(
                v / s if s > 0 else (math.inf if v > 0 else 0.0)
                for v, s in zip(kind[0], shape, strict=True)
            )
        ),
    )
    open_nodes: list[tuple[tuple[float, ...], int]] = []  # (remaining vector, multiplicity)
    total = 0
    for vec, count in kinds:
        left = count
        updated: list[tuple[tuple[float, ...], int]] = []
        for remaining, mult in open_nodes:
            fit = _fits(vec, remaining) if left else 0
            per_node = min(fit, left)
            full = min(mult, left // per_node) if per_node else 0
            if full == 0:
                updated.append((remaining, mult))
                continue
            left -= full * per_node
            updated.append((_minus(remaining, vec, per_node), full))
            if full < mult:
                updated.append((remaining, mult - full))
        open_nodes = updated
        if left > 0:
            fit_empty = _fits(vec, shape)
            if fit_empty == 0:
                return 10**9  # never fits
            full_nodes, rest = divmod(left, fit_empty)
            if full_nodes:
                open_nodes.append((_minus(shape, vec, fit_empty), full_nodes))
            if rest:
                open_nodes.append((_minus(shape, vec, rest), 1))
            total += full_nodes + (1 if rest else 0)
    return total


def _minus(remaining: tuple[float, ...], vec: tuple[float, ...], times: int) -> tuple[float, ...]:
    return tuple(r - times * v for r, v in zip(remaining, vec, strict=True))


def _fits(vec: tuple[float, ...], remaining: tuple[float, ...]) -> int:
    fit = 10**6
    for v, r in zip(vec, remaining, strict=True):
        if v > 0:
            fit = min(fit, math.floor(r / v + 1e-9))
    return max(fit, 0)


def pool_nodes_needed(
    replicas: Mapping[str, Mapping[str, int]],
    services: Sequence[model.ServiceSpec],
    pools: Mapping[str, model.PoolSpec],
) -> dict[str, int]:
    """Nodes each pool needs to host ``replicas`` (first-fit-decreasing), ignoring pool bounds."""
    items: dict[str, list[tuple[model.Resources, int]]] = {name: [] for name in pools}
    for service in services:
        for variant in service.variants:
            count = replicas.get(service.key, {}).get(variant.name, 0)
            if count > 0 and variant.pool in items:
                items[variant.pool].append((variant.resources, count))
    return {name: nodes_needed(items[name], pools[name].node) for name in pools}
