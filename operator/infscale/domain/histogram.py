"""Quantiles and SLO attainment from cumulative histogram buckets (Prometheus `le` buckets).

The same interpolation as PromQL's histogram_quantile: linear within the bucket that holds the
rank, the lower bound of the first bucket is 0, and a rank in the +Inf bucket returns the largest
finite bound. Computing it here, not in PromQL, lets one query serve every percentile and also
yields the fraction of requests within the SLO threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def _sorted_buckets(cumulative: Mapping[float, float]) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) pairs by bound, made monotonic as PromQL does."""
    buckets = sorted(cumulative.items())
    monotonic: list[tuple[float, float]] = []
    running = 0.0
    for bound, count in buckets:
        running = max(running, count)
        monotonic.append((bound, running))
    return monotonic


def total(cumulative: Mapping[float, float]) -> float:
    """The number (or rate) of observations: the +Inf bucket."""
    buckets = _sorted_buckets(cumulative)
    return buckets[-1][1] if buckets else 0.0


def quantile(q: float, cumulative: Mapping[float, float]) -> float | None:
    """The q-quantile (0 < q <= 1), or None when the histogram is empty, NaN or has no +Inf."""
    buckets = _sorted_buckets(cumulative)
    if not buckets or buckets[-1][0] != math.inf:
        return None
    count = buckets[-1][1]
    if not math.isfinite(count) or count <= 0:
        return None
    if any(math.isnan(c) for _, c in buckets):
        return None
    rank = q * count
    lower_bound, lower_count = 0.0, 0.0
    for bound, cumulative_count in buckets:
        if cumulative_count >= rank:
            if bound == math.inf:
                finite = [b for b, _ in buckets if b != math.inf]
                return finite[-1] if finite else None
            if lower_bound == 0.0 and bound < 0:
                return bound
            in_bucket = cumulative_count - lower_count
            if in_bucket <= 0:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket
        lower_bound, lower_count = bound, cumulative_count
    return None


def fraction_within(threshold: float, cumulative: Mapping[float, float]) -> float | None:
    """The share of observations at or under `threshold`, interpolated within its bucket."""
    buckets = _sorted_buckets(cumulative)
    if not buckets or buckets[-1][0] != math.inf:
        return None
    count = buckets[-1][1]
    if not math.isfinite(count) or count <= 0:
        return None
    lower_bound, lower_count = 0.0, 0.0
    for bound, cumulative_count in buckets:
        if threshold <= bound:
            if bound == math.inf:
                return lower_count / count
            share = (threshold - lower_bound) / (bound - lower_bound) if bound > lower_bound else 1
            return (lower_count + share * (cumulative_count - lower_count)) / count
        lower_bound, lower_count = bound, cumulative_count
    return 1.0
