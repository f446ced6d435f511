"""Histogram quantiles match PromQL's histogram_quantile; unknown stays unknown."""

from __future__ import annotations

import math

import pytest

from infscale.domain import histogram

# 100 observations: 50 under 0.1 s, 40 in (0.1, 0.5], 10 in (0.5, 1].
BUCKETS = {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, math.inf: 100.0}


def test_quantile_interpolates_within_the_bucket() -> None:
    assert histogram.quantile(0.5, BUCKETS) == pytest.approx(0.1)
    assert histogram.quantile(0.7, BUCKETS) == pytest.approx(0.1 + 0.4 * 20 / 40)
    assert histogram.quantile(0.95, BUCKETS) == pytest.approx(0.5 + 0.5 * 5 / 10)
    assert histogram.quantile(0.25, BUCKETS) == pytest.approx(0.05)


def test_rank_in_the_inf_bucket_returns_the_largest_finite_bound() -> None:
    assert histogram.quantile(0.99, {0.1: 10.0, 0.5: 20.0, math.inf: 100.0}) == 0.5


@pytest.mark.parametrize(
    "buckets",
    [{}, {0.1: 0.0, math.inf: 0.0}, {0.1: 5.0}, {0.1: math.nan, math.inf: math.nan}],
    ids=["empty", "no requests", "no +Inf bucket", "NaN"],
)
def test_no_data_is_unknown_never_zero(buckets: dict[float, float]) -> None:
    assert histogram.quantile(0.95, buckets) is None
    assert histogram.fraction_within(0.5, buckets) is None


def test_fraction_within_threshold() -> None:
    assert histogram.fraction_within(0.5, BUCKETS) == pytest.approx(0.9)
    assert histogram.fraction_within(0.3, BUCKETS) == pytest.approx((50 + 0.5 * 40) / 100)
    assert histogram.fraction_within(5.0, BUCKETS) == pytest.approx(1.0)


def test_non_monotonic_counts_are_repaired_like_promql() -> None:
    # Scrapes of different buckets at slightly different times can dip; PromQL takes the max.
    assert histogram.quantile(0.5, {0.1: 50.0, 0.5: 49.0, math.inf: 100.0}) is not None
