"""The generated trace family: seeded, at the rate asked, and a suite split evenly."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from infscale.sim import tracegen, traces


def test_same_seed_same_trace_and_the_mean_rate_asked() -> None:
    a = tracegen.generate(1003, mean_rps=8.0, duration_s=1200.0)
    b = tracegen.generate(1003, mean_rps=8.0, duration_s=1200.0)
    assert np.array_equal(a.arrivals_s, b.arrivals_s)
    assert a.arrivals_s.size / a.duration_s == pytest.approx(8.0, rel=0.1)
    assert np.all(np.diff(a.arrivals_s) >= 0)
    assert a.arrivals_s.max() < 1200.0


def test_sizes_are_heavy_tailed_with_mean_one_when_drawn() -> None:
    with_sizes = [
        t for t in (tracegen.generate(s, 20.0, 600.0) for s in range(20)) if t.sizes is not None
    ]
    assert with_sizes, "some seed draws request sizes"
    for trace in with_sizes:
        assert trace.sizes is not None
        assert trace.sizes.size == trace.arrivals_s.size
        assert float(trace.sizes.mean()) == pytest.approx(1.0, rel=0.1)
    assert max(float(np.percentile(t.sizes, 95)) for t in with_sizes if t.sizes is not None) > 2.5


def test_superposed_copies_keep_each_request_size() -> None:
    trace = traces.Trace("t", np.array([1.0, 2.0, 3.0]), 10.0, np.array([0.5, 1.0, 4.0]))
    both = traces.superpose(trace, 2, shift_s=0.0)
    assert both.sizes is not None
    assert sorted(both.sizes.tolist()) == [0.5, 0.5, 1.0, 1.0, 4.0, 4.0]


def test_suite_halves_hold_both_scenarios_alike() -> None:
    cases = tracegen.suite()
    assert len(cases) >= 40
    counts = collections.Counter((c.split, c.scenario) for c in cases)
    assert len(set(counts.values())) == 1
    assert len(counts) == 4
    assert len({c.seed for c in cases}) == len(cases)


def test_the_family_covers_lulls_and_several_compressions() -> None:
    cases = tracegen.suite()
    words = [tracegen.describe(c.seed) for c in cases]
    assert sum("lulls" in w for w in words) >= 10
    assert len({w.split("x,")[0] for w in words}) >= 5  # compressions drawn
