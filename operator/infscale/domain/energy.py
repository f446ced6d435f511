"""Energy: what replicas draw, and energy, emissions and cost per million requests. Pure.

A node draws its idle power plus, linearly in load, up to its maximum (the linear model Cloud
Carbon Footprint applies to vCPUs). A replica draws its share of a node (the share the cost
model gives it, :func:`pricing.replica_share`) at its load: its request rate over its capacity.
The share of a node no replica occupies draws idle power. Unknown never reads as zero: a pool
without power, or a variant serving at an unmeasured rate, makes the figures that need it None.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

from infscale.domain import model, pricing

CPU_IDLE_W_PER_VCPU = 0.74
CPU_MAX_W_PER_VCPU = 3.5
MEMORY_W_PER_GIB = 0.392
"""Cloud Carbon Footprint's coefficients for AWS (methodology, Appendix I): average watts per
vCPU at 0 % and 100 % utilisation, and 0.000392 kWh per GB-hour of memory."""

_HOURS_PER_MILLION_AT_1_RPS = 1e6 / 3600.0


def cpu_node_power(vcpus: float, memory_gib: float) -> model.Power:
    """A node without accelerators, estimated from its vCPUs and memory."""
    memory_w = memory_gib * MEMORY_W_PER_GIB
    return model.Power(
        idle_w=vcpus * CPU_IDLE_W_PER_VCPU + memory_w,
        max_w=vcpus * CPU_MAX_W_PER_VCPU + memory_w,
    )


def node_power(declared: model.Power | None, node: model.Resources) -> model.Power | None:
    """A pool's power: as declared; else a CPU node's estimate, and None with accelerators (a
    device plugin's resource, such as nvidia.com/gpu: no figure fits every one)."""
    if declared is not None:
        return declared
    if any("/" in name and amount > 0 for name, amount in node.extended.items()):
        return None
    return cpu_node_power(node.cpu, node.memory_gib)


def replica_watts(variant: model.VariantSpec, pool: model.PoolSpec, load: float) -> float | None:
    """What one replica draws at ``load`` (0-1 of its capacity); None if the pool's power is
    unknown or the replica fits none of its nodes."""
    share = pricing.replica_share(variant, pool)
    if pool.power is None or math.isinf(share):
        return None
    power = pool.power
    return share * (power.idle_w + (power.max_w - power.idle_w) * min(max(load, 0.0), 1.0))


@dataclasses.dataclass(frozen=True)
class ServiceEnergy:
    """A service's draw now and its figures per million requests (None: unknown)."""

    variant_watts: Mapping[str, float | None]
    watts: float | None
    usd_per_million: float | None
    kwh_per_million: float | None
    g_co2_per_million: float | None


def service_energy(
    service: model.ServiceSpec,
    pools: Mapping[str, model.PoolSpec],
    ready: Mapping[str, int],
    variant_rps: Mapping[str, float | None],
    total_rps: float | None,
    usd_per_hour: float | None,
) -> ServiceEnergy:
    """The draw of the service's Ready replicas at their measured load, and per million
    requests at ``total_rps``: energy, emissions, and ``usd_per_hour`` plus the electricity it
    does not include."""
    watts: dict[str, float | None] = {}
    energy_usd_per_hour = 0.0
    carbon_g_per_hour: float | None = 0.0
    for variant in service.variants:
        count = ready.get(variant.name, 0)
        pool = pools.get(variant.pool)
        if count <= 0:
            watts[variant.name] = 0.0
            continue
        rps = variant_rps.get(variant.name)
        if pool is None or rps is None or not math.isfinite(rps) or variant.capacity_rps <= 0:
            watts[variant.name] = None
            continue
        one = replica_watts(variant, pool, rps / (count * variant.capacity_rps))
        watts[variant.name] = None if one is None else count * one
        if one is None or pool.power is None:
            carbon_g_per_hour = None
            continue
        kw = count * one / 1000.0
        energy_usd_per_hour += kw * pool.power.usd_per_kwh
        if carbon_g_per_hour is not None and pool.power.g_co2_per_kwh is not None:
            carbon_g_per_hour += kw * pool.power.g_co2_per_kwh
        else:
            carbon_g_per_hour = None
    known = [w for w in watts.values() if w is not None]
    total_w = sum(known) if len(known) == len(watts) else None
    per_million = _per_million(total_rps)
    return ServiceEnergy(
        variant_watts=watts,
        watts=total_w,
        usd_per_million=(
            None
            if per_million is None or usd_per_hour is None or total_w is None
            else (usd_per_hour + energy_usd_per_hour) * per_million
        ),
        kwh_per_million=(
            None if per_million is None or total_w is None else total_w / 1000.0 * per_million
        ),
        g_co2_per_million=(
            None
            if per_million is None or total_w is None or carbon_g_per_hour is None
            else carbon_g_per_hour * per_million
        ),
    )


def pool_watts(
    pool: model.PoolSpec, nodes: int, replicas: Iterable[tuple[model.VariantSpec, int, float]]
) -> float | None:
    """What ``nodes`` nodes of the pool draw: each ``(variant, ready replicas, their watts)``
    on it, and idle power for the share of the nodes no replica occupies."""
    if pool.power is None:
        return None
    occupied = 0.0
    serving_w = 0.0
    for variant, count, watts in replicas:
        occupied += count * pricing.replica_share(variant, pool)
        serving_w += watts
    if math.isinf(occupied):
        return None
    return serving_w + max(0.0, nodes - occupied) * pool.power.idle_w


def _per_million(total_rps: float | None) -> float | None:
    """Hours that a million requests take at ``total_rps`` (None when there is no rate)."""
    if total_rps is None or not math.isfinite(total_rps) or total_rps <= 0:
        return None
    return _HOURS_PER_MILLION_AT_1_RPS / total_rps
