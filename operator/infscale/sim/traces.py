"""Request traces as arrival times: readers for public formats and a seeded synthetic generator.

Every reader returns a :class:`Trace` whose arrivals are seconds from the trace start, sorted.
Formats (see ../shared/traces/README.md for provenance):

- Azure LLM inference 2023 CSV: ``TIMESTAMP,ContextTokens,GeneratedTokens`` per request.
- Mooncake FAST'25 JSONL: ``timestamp`` in ms, rounded to ~3 s steps; arrivals of one step are
  spread uniformly (seeded) up to the next distinct timestamp.
- Prometheus range-query JSON (``/api/v1/query_range``) of one request-rate series: Poisson
  arrivals at each sample's rate until the next sample.
- Azure Functions 2019 per-minute CSV: invocation counts per function and minute; the sum over
  functions is scaled to a target mean inference rate and each minute's count is drawn as
  Poisson arrivals spread uniformly within the minute.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import math
import pathlib

import numpy as np


@dataclasses.dataclass(frozen=True)
class Trace:
    """Sorted arrival times in seconds from 0, and the span to simulate.

    ``sizes``, when given, is each request's service-time multiplier (mean about 1; a heavy tail
    is a few very long requests); None means every request is typical (size 1).
    """

    name: str
    arrivals_s: np.ndarray
    duration_s: float
    sizes: np.ndarray | None = None

    def size(self, index: int) -> float:
        """The service-time multiplier of request ``index``."""
        return 1.0 if self.sizes is None else float(self.sizes[index])

    def rate_per_bin(self, bin_s: float) -> np.ndarray:
        """Arrivals per second in consecutive bins of ``bin_s`` seconds."""
        bins = max(1, math.ceil(self.duration_s / bin_s))
        counts, _ = np.histogram(self.arrivals_s, bins=bins, range=(0.0, bins * bin_s))
        return np.asarray(counts, dtype=float) / bin_s


def _finish(name: str, arrivals: list[float] | np.ndarray, max_s: float | None) -> Trace:
    arr = np.sort(np.asarray(arrivals, dtype=float))
    if arr.size:
        arr = arr - arr[0] if arr[0] < 0 else arr
    if max_s is not None:
        arr = arr[arr < max_s]
    duration = float(max_s if max_s is not None else (math.ceil(arr[-1]) + 1 if arr.size else 0))
    return Trace(name, arr, duration)


def _spread(
    rng: np.random.Generator, starts: np.ndarray, widths: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """``counts[i]`` arrivals spread uniformly over ``[starts[i], starts[i] + widths[i])``, in
    order: the arrivals of a rate given per interval (the counts drawn by the caller)."""
    return np.concatenate(
        [
            start + np.sort(rng.uniform(0.0, width, int(n)))
            for start, width, n in zip(starts.tolist(), widths.tolist(), counts, strict=True)
        ]
        or [np.empty(0)]
    )


class TraceFormatError(ValueError):
    """A trace file that does not follow its format: where (file, line, column) and what was
    expected."""


AZURE_LLM_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_AZURE_STAMP = "a time such as 2023-11-16 18:15:46.6805900"


def _azure_time(stamp: str) -> tuple[datetime.datetime, float] | None:
    """The whole second and its fraction, or None if ``stamp`` is not a time."""
    whole, _, frac = stamp.replace("T", " ", 1).partition(".")
    if frac and not frac.isdigit():
        return None
    try:
        return datetime.datetime.strptime(whole, "%Y-%m-%d %H:%M:%S"), float(f"0.{frac or '0'}")
    except ValueError:
        return None


def read_azure_llm(path: pathlib.Path, max_s: float | None = None) -> Trace:
    """Azure LLM inference trace (2023) CSV; timestamps have 7 fractional digits.

    Raises :class:`TraceFormatError` naming the line and column of the first malformed field
    (the token columns, where present, must hold non-negative integers).
    """
    times: list[float] = []
    first: datetime.datetime | None = None
    expected = ",".join(AZURE_LLM_COLUMNS)
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        if "TIMESTAMP" not in header:
            raise TraceFormatError(
                f"{path}: line 1: the header has no TIMESTAMP column "
                f"(expected an Azure LLM trace header: {expected})"
            )
        columns = [(i, name) for i, name in enumerate(header) if name in AZURE_LLM_COLUMNS]
        for row in reader:
            line = reader.line_num
            if not row or not "".join(row).strip():
                continue
            if len(row) != len(header):
                raise TraceFormatError(
                    f"{path}: line {line}: {len(row)} field(s), expected {len(header)} "
                    f"({','.join(header)})"
                )
            for index, name in columns:
                text = row[index].strip()
                where = f"{path}: line {line}, column {index + 1} ({name})"
                if name == "TIMESTAMP":
                    parsed = _azure_time(text)
                    if parsed is None:
                        raise TraceFormatError(f"{where}: {text!r} is not {_AZURE_STAMP}")
                    moment, fraction = parsed
                    if first is None:
                        first = moment
                    times.append((moment - first).total_seconds() + fraction)
                elif not text.isdigit():
                    raise TraceFormatError(f"{where}: {text!r} is not a non-negative integer")
    return _finish(path.stem, times, max_s)


def read_prometheus_rate(path: pathlib.Path, seed: int = 0, max_s: float | None = None) -> Trace:
    """A Prometheus range query's JSON (``/api/v1/query_range``, the whole response or its
    ``data``) holding one series of a request rate in requests/s, such as
    ``sum(rate(vllm:request_success_total[1m]))``: each sample's rate holds until the next
    (the last for the median step), and arrivals are drawn as a Poisson process at that rate.

    Raises :class:`TraceFormatError` naming the line and column of bad JSON, or the sample.
    """
    try:
        body = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise TraceFormatError(
            f"{path}: line {error.lineno}, column {error.colno}: not valid JSON: {error.msg}"
        ) from None
    data = body.get("data", body) if isinstance(body, dict) else None
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise TraceFormatError(
            f'{path}: data.resultType: expected "matrix" (the JSON of /api/v1/query_range)'
        )
    result = data.get("result")
    if not isinstance(result, list) or len(result) != 1:
        count = len(result) if isinstance(result, list) else "no"
        raise TraceFormatError(
            f"{path}: data.result: {count} series, expected one (wrap the query in sum(...))"
        )
    values = result[0].get("values") if isinstance(result[0], dict) else None
    if not isinstance(values, list) or not values:
        raise TraceFormatError(f"{path}: data.result[0].values: expected a list of samples")
    times: list[float] = []
    rates: list[float] = []
    for i, sample in enumerate(values):
        field = f"data.result[0].values[{i}]"
        try:
            stamp, rate = float(sample[0]), float(sample[1])
        except (TypeError, ValueError, IndexError, KeyError):
            raise TraceFormatError(
                f'{path}: {field}: {sample!r} is not [unix time, "requests/s"]'
            ) from None
        if not (math.isfinite(rate) and rate >= 0):
            raise TraceFormatError(
                f"{path}: {field}: rate {sample[1]!r} is not a finite non-negative number"
            )
        if times and stamp <= times[-1]:
            raise TraceFormatError(f"{path}: {field}: time {sample[0]!r} is not after the last")
        times.append(stamp)
        rates.append(rate)
    stamps = np.asarray(times) - times[0]
    steps = np.diff(stamps)
    ends = np.append(stamps[1:], stamps[-1] + (float(np.median(steps)) if steps.size else 60.0))
    widths = ends - stamps
    rng = np.random.default_rng(seed)
    arrivals = _spread(rng, stamps, widths, rng.poisson(np.asarray(rates) * widths))
    span = float(ends[-1]) if max_s is None else max_s
    return _finish(path.stem, arrivals, span)


def read_mooncake(path: pathlib.Path, seed: int = 0, max_s: float | None = None) -> Trace:
    """Mooncake FAST'25 JSONL; arrivals of one coarse timestamp step are spread uniformly."""
    stamps: list[float] = []
    with path.open() as handle:
        for line in handle:
            if line.strip():
                stamps.append(float(json.loads(line)["timestamp"]) / 1000.0)
    raw = np.sort(np.asarray(stamps))
    distinct = np.unique(raw)
    step = float(np.median(np.diff(distinct))) if distinct.size > 1 else 1.0
    nexts = np.append(distinct[1:], distinct[-1] + step)
    gaps = dict(zip(distinct.tolist(), (nexts - distinct).tolist(), strict=True))
    rng = np.random.default_rng(seed)
    spread = [t + rng.uniform(0.0, min(gaps[t], 2 * step)) for t in raw.tolist()]
    return _finish(path.stem, spread, max_s)


def read_azure_functions(
    path: pathlib.Path,
    mean_rps: float = 5.0,
    seed: int = 0,
    start_minute: int = 0,
    minutes: int | None = None,
) -> Trace:
    """Azure Functions 2019 per-minute counts, summed and scaled to ``mean_rps`` on average."""
    totals: np.ndarray | None = None
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        first_col = next(i for i, h in enumerate(header) if h.startswith("minute_"))
        for row in reader:
            counts = np.asarray([float(x or 0) for x in row[first_col:]])
            totals = counts if totals is None else totals + counts
    assert totals is not None, "empty trace"
    totals = totals[start_minute : None if minutes is None else start_minute + minutes]
    scale = mean_rps * 60.0 / max(float(np.mean(totals)), 1e-9)
    rng = np.random.default_rng(seed)
    per_minute = rng.poisson(totals * scale)
    minutes_s = np.arange(len(per_minute)) * 60.0
    arrivals = _spread(rng, minutes_s, np.full(len(per_minute), 60.0), per_minute)
    return _finish(f"{path.stem}-x{scale:.2g}", arrivals, float(len(totals) * 60))


def synthetic(
    seed: int = 0,
    duration_s: float = 3600.0,
    base_rps: float = 4.0,
    diurnal_period_s: float = 3600.0,
    diurnal_amplitude: float = 0.6,
    bursts: int = 4,
    burst_factor: float = 3.0,
    burst_s: float = 60.0,
    idle_gaps: int = 2,
    idle_s: float = 240.0,
) -> Trace:
    """A seeded non-homogeneous Poisson workload: diurnal curve, bursts and idle gaps."""
    rng = np.random.default_rng(seed)
    seconds = np.arange(int(duration_s), dtype=float)
    rate = base_rps * (1.0 + diurnal_amplitude * np.sin(2 * np.pi * seconds / diurnal_period_s))
    boost = np.ones_like(rate)
    for start in rng.uniform(0, max(duration_s - burst_s, 1), bursts):
        boost[(seconds >= start) & (seconds < start + burst_s)] = burst_factor  # no stacking
    rate = rate * boost
    for start in rng.uniform(0, max(duration_s - idle_s, 1), idle_gaps):
        rate[(seconds >= start) & (seconds < start + idle_s)] = 0.0
    counts = rng.poisson(np.clip(rate, 0.0, None))
    arrivals = _spread(rng, seconds, np.ones_like(seconds), counts)
    return _finish(f"synthetic-s{seed}", arrivals, duration_s)


def superpose(trace: Trace, tenants: int, shift_s: float = 60.0, seed: int = 0) -> Trace:
    """``tenants`` copies of a trace on one service: a bigger service with the same curve.

    Each copy but the first is shifted by a uniform offset within ``shift_s`` either way and
    wrapped around the span, so the curve (diurnal shape, busy and quiet spells) is kept at the
    scale of minutes while second-scale bursts of different tenants do not line up. Copying
    arrivals in place instead would multiply every one-second burst by ``tenants``.
    """
    if tenants <= 1:
        return trace
    rng = np.random.default_rng(seed)
    span = max(trace.duration_s, 1e-9)
    offsets = np.concatenate([[0.0], rng.uniform(-shift_s, shift_s, tenants - 1)])
    shifted = ((trace.arrivals_s[None, :] + offsets[:, None]) % span).ravel()
    order = np.argsort(shifted, kind="stable")
    sizes = None if trace.sizes is None else np.tile(trace.sizes, tenants)[order]
    return Trace(f"{trace.name}-x{tenants}", shifted[order], trace.duration_s, sizes)


def poisson(rate_rps: float, duration_s: float, seed: int = 0) -> Trace:
    """Homogeneous Poisson arrivals (queueing-theory checks)."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / rate_rps, int(rate_rps * duration_s * 1.2) + 10)
    arrivals = np.cumsum(gaps)
    return _finish(f"poisson-{rate_rps:g}", arrivals[arrivals < duration_s], duration_s)
