"""A seeded family of request traces, and the benchmark's fixed suite with its validation split.

One seed draws one workload from the shapes production inference traffic shows, each tenant of
it with its own:

- a diurnal curve with a period from 10 minutes to 24 hours (before compression) and a phase;
- lulls to zero (the service idles, then comes back);
- ramps: the level steps up or down over 10 s to 10 min;
- bursts from 1 s to 10 min at 1.5-6x the level, at random times;
- flash crowds: a jump to 3-10x that decays over minutes;
- spikes on the hour (timer-triggered work), at 2-4x for up to a minute;
- time compression from 1x to 200x (a day replayed in minutes squeezes every period above,
  bursts and cold starts keep their real length);
- heavy-tailed request sizes: each request's service time is multiplied by a lognormal size of
  mean 1 (sigma 0 to 1: at 1 one request in twenty takes over 3.1x the mean time, so a slow
  variant whose typical request fits the SLO may still miss it on the tail).

The tenants' curves are summed, then scaled so the trace's mean rate is the one drawn for it, and
arrivals are Poisson per second. Every draw comes from ``numpy.random.default_rng(seed)``: the
same seed gives the same trace on every machine.

:func:`suite` is the benchmark's fixed list: 48 seeds, half development (tune on these) and half
validation (report, never tune), alternating so both halves hold both scenarios alike.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from infscale.sim import traces

COMPRESSIONS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
SUITE_SEEDS = tuple(range(1000, 1048))
SPLITS = ("development", "validation")
SCENARIO_RPS = {"gpu-classes": (1.0, 20.0), "three-pool": (20.0, 80.0)}
"""Mean rates drawn (log-uniform) per scenario: gpu-classes is one to a few tens of small GPU
replicas, three-pool spans a few H100 steps (as the real traces' 20 tenants do)."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One generated trace of the suite: its seed, half and scenario."""

    seed: int
    split: str  # development | validation
    scenario: str
    duration_s: float
    mean_rps: float

    def trace(self) -> traces.Trace:
        """The trace (generated on demand: a few MB of arrivals each)."""
        return generate(self.seed, self.mean_rps, self.duration_s)


def suite() -> list[Case]:
    """The fixed suite: seed i goes to development when its index is even, to validation when
    odd; scenarios alternate every two seeds; durations and rates are drawn from the seed."""
    cases = []
    for index, seed in enumerate(SUITE_SEEDS):
        rng = np.random.default_rng([seed, 7])
        scen = ("gpu-classes", "three-pool")[(index // 2) % 2]
        low, high = SCENARIO_RPS[scen]
        mean_rps = float(math.exp(rng.uniform(math.log(low), math.log(high))))
        duration_s = float(
            rng.choice((1800.0, 2700.0) if scen == "three-pool" else (1800.0, 2700.0, 3600.0))
        )
        cases.append(Case(seed, SPLITS[index % 2], scen, duration_s, round(mean_rps, 2)))
    return cases


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _lulls(
    rng: np.random.Generator, rate: np.ndarray, seconds: np.ndarray, compression: float
) -> int:
    """Set one to three spans of ``rate`` to zero, in place (1-30 min before compression, at
    least a minute); returns how many."""
    count = int(rng.integers(1, 4))
    for _ in range(count):
        length = max(60.0, _log_uniform(rng, 60.0, 1800.0) / math.sqrt(compression))
        start = rng.uniform(0.0, max(float(seconds.size) - length, 1.0))
        rate[(seconds >= start) & (seconds < start + length)] = 0.0
    return count


def _tenant_curve(
    rng: np.random.Generator, seconds: np.ndarray, compression: float
) -> tuple[np.ndarray, list[str]]:
    """One tenant's relative rate per second (mean about 1 before lulls) and what it holds."""
    duration_s = float(seconds.size)
    parts: list[str] = []
    period_s = _log_uniform(rng, 600.0, 86_400.0) / compression
    amplitude = float(rng.uniform(0.1, 0.9))
    phase = float(rng.uniform(0.0, 2 * math.pi))
    rate = 1.0 + amplitude * np.sin(2 * math.pi * seconds / period_s + phase)
    parts.append(f"diurnal {period_s * compression / 3600:.2g} h x{amplitude:.1f}")
    if rng.random() < 0.5:  # ramps: the level moves to a new one
        for _ in range(int(rng.integers(1, 4))):
            start = rng.uniform(0.0, duration_s)
            length = _log_uniform(rng, 10.0, 600.0)
            factor = _log_uniform(rng, 0.3, 3.0)
            step = np.clip((seconds - start) / length, 0.0, 1.0)
            rate = rate * (1.0 + (factor - 1.0) * step)
        parts.append("ramps")
    if rng.random() < 0.6:
        count = int(rng.integers(1, 8))
        for _ in range(count):
            length = _log_uniform(rng, 1.0, 600.0)
            start = rng.uniform(0.0, max(duration_s - length, 1.0))
            factor = float(rng.uniform(1.5, 6.0))
            rate[(seconds >= start) & (seconds < start + length)] *= factor
        parts.append(f"{count} bursts")
    if rng.random() < 0.25:
        start = rng.uniform(0.1, 0.8) * duration_s
        height = float(rng.uniform(3.0, 10.0))
        decay_s = _log_uniform(rng, 60.0, 1200.0)
        after = seconds >= start
        rate[after] *= 1.0 + (height - 1.0) * np.exp(-(seconds[after] - start) / decay_s)
        parts.append(f"flash crowd x{height:.0f}")
    if rng.random() < 0.3:
        hour_s = 3600.0 / compression
        spike_s = max(1.0, min(60.0, hour_s / 20))
        factor = float(rng.uniform(2.0, 4.0))
        offset = rng.uniform(0.0, hour_s)
        rate[((seconds - offset) % hour_s) < spike_s] *= factor
        parts.append(f"spikes every {hour_s / 60:.3g} min")
    if rng.random() < 0.4:  # this tenant idles
        parts.append(f"{_lulls(rng, rate, seconds, compression)} lulls")
    return np.clip(rate, 0.0, None), parts


def generate(seed: int, mean_rps: float = 5.0, duration_s: float = 3600.0) -> traces.Trace:
    """The trace of one seed at ``mean_rps`` on average over ``duration_s`` seconds."""
    return _draw(seed, mean_rps, duration_s)[0]


def describe(seed: int) -> str:
    """What the seed drew, in words (the same draws as :func:`generate`, on a short span)."""
    return _draw(seed, 1.0, 60.0)[1]


def _draw(seed: int, mean_rps: float, duration_s: float) -> tuple[traces.Trace, str]:
    rng = np.random.default_rng(seed)
    compression = float(rng.choice(COMPRESSIONS))
    seconds = np.arange(int(duration_s), dtype=float)
    tenants = int(rng.choice((1, 1, 2, 3, 5)))
    rate = np.zeros_like(seconds)
    described: list[str] = []
    for _ in range(tenants):
        share = float(rng.uniform(0.2, 1.0))
        curve, parts = _tenant_curve(rng, seconds, compression)
        rate += share * curve
        described.append("+".join(parts))
    if rng.random() < 0.35:  # the whole service idles: every tenant at once
        described.append(f"{_lulls(rng, rate, seconds, compression)} service lulls")
    if not rate.any():  # every tenant idled throughout: a flat rate instead
        rate = np.ones_like(seconds)
    rate *= mean_rps / float(rate.mean())
    sigma = float(rng.choice((0.0, 0.25, 0.5, 0.75, 1.0)))
    counts = rng.poisson(rate)
    arrivals = np.concatenate(
        [s + np.sort(rng.uniform(0.0, 1.0, int(n))) for s, n in zip(seconds, counts, strict=True)]
    )
    # Lognormal sizes of mean 1: the median request is exp(-sigma^2 / 2) of the mean.
    sizes = rng.lognormal(-(sigma**2) / 2, sigma, arrivals.size) if sigma > 0 else None
    name = f"gen{seed}-c{compression:g}-t{tenants}-s{sigma:g}"
    words = f"compression {compression:g}x, sizes sigma {sigma:g}; " + "; ".join(described)
    return traces.Trace(name, arrivals, duration_s, sizes), words


def batch_jobs(
    seed: int,
    duration_s: float,
    per_hour: float,
    requests: tuple[int, int],
    submit_s: tuple[float, float],
    last_s: float,
) -> traces.Trace:
    """Batch work: jobs at Poisson times in ``[0, last_s)`` (so their deadlines fall within
    the replay), each of a log-uniform number of requests in ``requests``, submitted uniformly
    over a uniform span in ``submit_s``."""
    rng = np.random.default_rng(seed + 104729)
    starts: list[float] = []
    at_s = float(rng.exponential(3600.0 / per_hour))
    while at_s < last_s:
        starts.append(at_s)
        at_s += float(rng.exponential(3600.0 / per_hour))
    arrivals = [np.zeros(0)]
    for start_s in starts:
        count = round(_log_uniform(rng, float(requests[0]), float(requests[1])))
        span_s = float(rng.uniform(*submit_s))
        arrivals.append(start_s + rng.uniform(0.0, span_s, count))
    times = np.sort(np.concatenate(arrivals))
    return traces.Trace(f"jobs{seed}-{len(starts)}", times[times < duration_s], duration_s)
