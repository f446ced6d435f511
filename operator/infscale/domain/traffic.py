"""How a service's traffic splits over its variants: the quality of a mix, and the weights a
weighted route gives each variant so that the split the plan aims at reaches the servers.

Each variant's share of the traffic is its share of the capacity. A weighted route sends a
variant only what its Ready replicas can take (a backend without Ready pods would fail its
share), and never lets the split fall under a quality floor: a per-request floor gives a barred
variant no weight, an average floor scales the weights of the variants under it down until
the mix is at the floor.
"""

from __future__ import annotations

from collections.abc import Mapping

from infscale.domain import model


def mix_quality(
    service: model.ServiceSpec, replicas: Mapping[str, int], capacity_rps: Mapping[str, float]
) -> float | None:
    """The traffic-weighted quality of a mix, each variant's share of the traffic its share of
    the capacity; None without capacity or with an unscored variant in it."""
    return _quality(service, _capacity(service, replicas, capacity_rps))


def weights(
    service: model.ServiceSpec,
    planned: Mapping[str, int],
    ready: Mapping[str, int],
    capacity_rps: Mapping[str, float],
) -> dict[str, int]:
    """Route weights in percent (summing to 100, or all 0 when nothing can serve): the planned
    replicas' capacity as far as it is Ready; failing that, any Ready replicas' that may serve;
    failing that, the planned capacity (nothing Ready yet: where it will be)."""
    ready_planned = {
        v.name: min(planned.get(v.name, 0), ready.get(v.name, 0)) for v in service.variants
    }
    for replicas in (ready_planned, ready, planned):
        shares = _floored(service, _capacity(service, replicas, capacity_rps))
        if sum(shares.values()) > 0:
            return _rounded_over_floor(service, _percent(shares))
    return {v.name: 0 for v in service.variants}


def _capacity(
    service: model.ServiceSpec, replicas: Mapping[str, int], capacity_rps: Mapping[str, float]
) -> dict[str, float]:
    return {
        v.name: replicas.get(v.name, 0) * max(capacity_rps.get(v.name, 0.0), 0.0)
        for v in service.variants
    }


def _quality(service: model.ServiceSpec, shares: Mapping[str, float]) -> float | None:
    total = sum(shares.values())
    if total <= 0 or any(shares[v.name] > 0 and v.quality is None for v in service.variants):
        return None
    return sum(shares[v.name] * (v.quality or 0.0) for v in service.variants) / total


def _floored(service: model.ServiceSpec, shares: dict[str, float]) -> dict[str, float]:
    """``shares`` with those of variants under the floor removed (per request) or scaled down
    until the mix meets it (on average)."""
    floor = service.quality_floor
    if floor is None:
        return shares
    if not service.quality_average:
        return {v.name: 0.0 if service.below_floor(v) else shares[v.name] for v in service.variants}
    above = sum(
        w * ((v.quality or 0.0) - floor)
        for v in service.variants
        if not service.below_floor(v) and (w := shares[v.name]) > 0
    )
    below = sum(
        w * (floor - (v.quality or 0.0))
        for v in service.variants
        if service.below_floor(v) and (w := shares[v.name]) > 0
    )
    if below <= above:
        return shares
    scale = above / below
    return {
        v.name: shares[v.name] * scale if service.below_floor(v) else shares[v.name]
        for v in service.variants
    }


def _rounded_over_floor(service: model.ServiceSpec, percent: dict[str, int]) -> dict[str, int]:
    """``percent`` with whole points moved from the lowest-quality variant to the highest while
    rounding left the mix under an average floor (a point is worth a few thousandths)."""
    floor = service.quality_floor
    if floor is None or not service.quality_average:
        return percent
    by_quality = sorted(service.variants, key=lambda v: v.quality or 0.0)
    while (mix := _quality(service, percent)) is not None and mix < floor:
        low = next(v.name for v in by_quality if percent[v.name] > 0)
        high = next(v.name for v in reversed(by_quality) if percent[v.name] > 0)
        if low == high:
            break
        percent = {**percent, low: percent[low] - 1, high: percent[high] + 1}
    return percent


def _percent(shares: Mapping[str, float]) -> dict[str, int]:
    """Whole percents summing to 100, by the largest remainders."""
    total = sum(shares.values())
    exact = {name: 100.0 * w / total for name, w in shares.items()}
    whole = {name: int(x) for name, x in exact.items()}
    left = 100 - sum(whole.values())
    for name in sorted(exact, key=lambda n: (whole[n] - exact[n], n))[:left]:
        whole[name] += 1
    return whole
