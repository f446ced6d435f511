"""MetricsSource backend: Prometheus, batched across every service.

Each cycle issues one PromQL query per metric family in use (a request counter, a latency
histogram, a gauge, a freshness probe), each covering ALL services that use that metric, grouped
by namespace, service, variant and pod. Percentiles and SLO attainment are computed from the
bucket rates in Python, so services with different percentiles still share one query.

Tenancy: every selector is built here from the services' own namespace and name (never from
free text in a spec), escaped for PromQL; results are kept only for exact (namespace, service)
pairs that were asked for. Metric names from spec overrides must match the Prometheus metric name
grammar or the family is reported unknown and never queried.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from infscale.domain import histogram
from infscale.ports import metrics

LOG = logging.getLogger(__name__)

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")

# (kind, metric name). Kinds: rate (counter), buckets (histogram), mean (a *_sum counter divided
# by the request rate), gauge, freshness (last sample time of the request counter).
Family = tuple[str, str]
QueryFn = Callable[[str], list[dict[str, Any]]]


@dataclasses.dataclass(frozen=True)
class LatencySource:
    """Where a server exports one SLO metric: a histogram, or a cumulative sum for a mean."""

    histogram: str | None = None
    mean_sum: str | None = None
    mean_scale: float = 1.0  # multiply the mean by this to get seconds


@dataclasses.dataclass(frozen=True)
class Preset:
    """The metric names one model server exports (DESIGN.md section 6)."""

    request_counter: str | None
    latency: Mapping[str, LatencySource]
    queue_gauge: str | None = None
    running_gauge: str | None = None
    kv_cache_gauge: str | None = None
    lazy: bool = False
    """The server's exporter shows a counter or gauge only once it has been touched (Rust's
    metrics crate: describing one creates no series), so a pod that has served nothing has none.
    Its scrape target's ``up`` tells such an idle pod from a missing one."""


PRESETS: dict[str, Preset] = {
    "vllm": Preset(
        request_counter="vllm:request_success_total",
        latency={
            "ttft": LatencySource(histogram="vllm:time_to_first_token_seconds"),
            "itl": LatencySource(histogram="vllm:inter_token_latency_seconds"),
            "e2e": LatencySource(histogram="vllm:e2e_request_latency_seconds"),
            "queue-time": LatencySource(histogram="vllm:request_queue_time_seconds"),
        },
        queue_gauge="vllm:num_requests_waiting",
        running_gauge="vllm:num_requests_running",
        kv_cache_gauge="vllm:kv_cache_usage_perc",
    ),
    "tgi": Preset(
        request_counter="tgi_request_success",
        latency={
            "itl": LatencySource(histogram="tgi_request_mean_time_per_token_duration"),
            "e2e": LatencySource(histogram="tgi_request_duration"),
            "queue-time": LatencySource(histogram="tgi_request_queue_duration"),
        },
        queue_gauge="tgi_queue_size",
        running_gauge="tgi_batch_current_size",
        lazy=True,
    ),
    "tei": Preset(
        # Hugging Face text-embeddings-inference: one request, one pass, no tokens streamed.
        request_counter="te_request_success",
        latency={
            "e2e": LatencySource(histogram="te_request_duration"),
            "queue-time": LatencySource(histogram="te_request_queue_duration"),
        },
        queue_gauge="te_queue_size",
        running_gauge="te_batch_current_size",
        lazy=True,
    ),
    "sglang": Preset(
        # SGLang has no request counter; the e2e histogram's count is one.
        request_counter="sglang:e2e_request_latency_seconds_count",
        latency={
            "ttft": LatencySource(histogram="sglang:time_to_first_token_seconds"),
            "itl": LatencySource(histogram="sglang:time_per_output_token_seconds"),
            "e2e": LatencySource(histogram="sglang:e2e_request_latency_seconds"),
        },
        queue_gauge="sglang:num_queue_reqs",
        running_gauge="sglang:num_running_reqs",
        kv_cache_gauge="sglang:token_usage",
    ),
    "triton": Preset(
        # Triton exports cumulative microseconds, not histograms: the SLO metric is a mean.
        request_counter="nv_inference_request_success",
        latency={
            "e2e": LatencySource(mean_sum="nv_inference_request_duration_us", mean_scale=1e-6),
            "queue-time": LatencySource(mean_sum="nv_inference_queue_duration_us", mean_scale=1e-6),
        },
        queue_gauge="nv_inference_pending_request_count",
    ),
    "generic": Preset(request_counter=None, latency={}),
}


@dataclasses.dataclass(frozen=True)
class Resolved:
    """The families one service needs, and why any signal cannot be read."""

    query: metrics.ServiceQuery
    rate: str | None
    latency: LatencySource | None
    gauges: Mapping[str, str]  # signal name -> gauge metric
    problems: tuple[str, ...]
    lazy: bool = False  # Preset.lazy: idle pods are told by their scrape target's `up`


def resolve(query: metrics.ServiceQuery) -> Resolved:
    """Metric names for one service: its preset, with the spec's overrides on top."""
    preset = PRESETS.get(query.preset)
    problems: list[str] = []
    if preset is None:
        return Resolved(query, None, None, {}, (f"unknown metrics preset {query.preset!r}",))

    def checked(name: str | None, what: str) -> str | None:
        if name is None:
            return None
        if not METRIC_NAME.match(name):
            problems.append(f"{what} {name!r} is not a valid Prometheus metric name")
            return None
        return name

    rate = checked(query.request_counter or preset.request_counter, "request counter")
    if rate is None and not problems:
        problems.append(f"preset {query.preset} needs metrics.requestCounter")
    if query.latency_histogram:
        histogram_name = checked(query.latency_histogram, "latency histogram")
        latency = LatencySource(histogram=histogram_name) if histogram_name else None
    else:
        latency = preset.latency.get(query.slo_metric)
        if latency is None:
            problems.append(
                f"preset {query.preset} exports no {query.slo_metric} latency; "
                "set metrics.latencyHistogram"
            )
    gauges = {
        signal: name
        for signal, name in (
            ("queue", checked(query.queue_gauge or preset.queue_gauge, "queue gauge")),
            ("running", preset.running_gauge),
            ("kv_cache_usage", preset.kv_cache_gauge),
        )
        if name is not None
    }
    return Resolved(query, rate, latency, gauges, tuple(problems), preset.lazy)


def promql_regex_alternatives(values: Iterable[str]) -> str:
    """A PromQL string literal body matching exactly these values with `=~`."""
    escaped = "|".join(RE2_SPECIAL.sub(r"\\\1", v) for v in sorted(set(values)))
    return escaped.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


EXPRESSION_LABEL = "infscale_expression"  # tags each user expression's answer in one request
ARRIVAL_RETRY_S = 30.0  # a failed arrival-rate expression is next tried alone after this,
ARRIVAL_RETRY_MAX_S = 600.0  # doubling each failure up to this


class QueryBuilder:
    """PromQL text for each family, scoped to a set of services."""

    def __init__(self, labels: metrics.SeriesLabels, rate_window_s: int) -> None:
        self.labels = labels
        self.window = f"{rate_window_s}s"
        self.by = f"{labels.namespace}, {labels.service}, {labels.variant}, {labels.pod}"

    def selector(self, keys: Iterable[tuple[str, str]]) -> str:
        keys = list(keys)
        namespaces = promql_regex_alternatives(ns for ns, _ in keys)
        services = promql_regex_alternatives(svc for _, svc in keys)
        return f'{{{self.labels.namespace}=~"{namespaces}",{self.labels.service}=~"{services}"}}'

    def build(self, family: Family, keys: Iterable[tuple[str, str]]) -> str:
        kind, name = family
        scope = self.selector(keys)
        if kind in ("rate", "mean"):
            return f"sum by ({self.by}) (rate({name}{scope}[{self.window}]))"
        if kind == "buckets":
            return f"sum by ({self.by}, le) (rate({name}_bucket{scope}[{self.window}]))"
        if kind == "gauge":
            return f"sum by ({self.by}) ({name}{scope})"
        if kind == "freshness":
            return f"max by ({self.by}) (timestamp({name}{scope}))"
        if kind == "up":
            return f"max by ({self.by}) (up{scope})"
        raise ValueError(f"unknown family kind {kind}")


@dataclasses.dataclass
class _Series:
    """Values of one family for one service, per pod (and bucket for histograms)."""

    per_pod: dict[str, float] = dataclasses.field(default_factory=dict)
    buckets: dict[str, dict[float, float]] = dataclasses.field(default_factory=dict)
    pod_variant: dict[str, str] = dataclasses.field(default_factory=dict)
    bad: list[str] = dataclasses.field(default_factory=list)
    poisoned: set[str] = dataclasses.field(default_factory=set)
    """Pods with a NaN, infinite or unreadable sample: nothing of them is used (a histogram
    missing one bucket is not a histogram)."""


class PrometheusMetrics:
    """Batched reads from Prometheus through a query function (prometheus-api-client's)."""

    def __init__(
        self,
        query: QueryFn,
        *,
        labels: metrics.SeriesLabels | None = None,
        rate_window_s: int = 60,
        staleness_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._query = query
        self.builder = QueryBuilder(labels or metrics.SeriesLabels(), rate_window_s)
        self.labels = self.builder.labels
        self.staleness_s = staleness_s
        self._clock = clock
        self._queries_issued = 0
        self._failing: dict[tuple[str, str], tuple[float, float, str]] = {}
        """Users' expressions that failed alone: (next try, backoff, reason) by (kind, text)."""

    @property
    def queries_issued(self) -> int:
        return self._queries_issued

    def plan_queries(self, queries: Sequence[metrics.ServiceQuery]) -> dict[Family, str]:
        """The PromQL text of every family needed for these services (for tests and docs)."""
        resolved = [resolve(q) for q in queries]
        return {f: self.builder.build(f, keys) for f, keys in self._families(resolved).items()}

    def observe(
        self, queries: Sequence[metrics.ServiceQuery]
    ) -> dict[tuple[str, str], metrics.ServiceMetrics]:
        resolved = {q.key: resolve(q) for q in queries}
        families = self._families(resolved.values())
        results: dict[Family, dict[tuple[str, str], _Series]] = {}
        errors: dict[Family, str] = {}
        unreachable: str | None = None
        for family, keys in families.items():
            if unreachable is not None:
                # One timeout (and a probe) per round, not one per family: a hung Prometheus
                # must not stall the cycle for every service.
                errors[family] = f"Prometheus query for {family[1]} skipped: {unreachable}"
                continue
            text = self.builder.build(family, keys)
            self._queries_issued += 1
            try:
                rows = self._query(text)
            except Exception as error:  # every backend failure becomes "unknown", with a reason
                LOG.warning("Prometheus query for %s failed: %s", family[1], _short(error))
                errors[family] = f"Prometheus query for {family[1]} failed: {_short(error)}"
                if _is_unreachable(error) and not self._answers():
                    unreachable = f"Prometheus unreachable ({type(error).__name__})"
                continue
            results[family] = self._parse(family, rows, set(keys))
        arrivals = self._arrivals([q for q in queries if q.arrival_rate_query], unreachable)
        now = self._clock()
        observed = {}
        for key, r in resolved.items():
            found = self._assemble(r, results, errors, now)
            if key in arrivals:
                rps, why = arrivals[key]
                reasons = metrics.merge_reasons(found.unknown, (why,) if why else ())
                found = dataclasses.replace(found, arrival_rps=rps, unknown=reasons)
            observed[key] = found
        return observed

    def values(self, expressions: Sequence[str]) -> dict[str, tuple[float | None, str | None]]:
        """Each expression's value now (its series averaged), or None and why: all in one
        request, as the arrival-rate queries (see :meth:`_expressions`)."""
        unique = list(dict.fromkeys(expressions))
        return dict(zip(unique, self._expressions(unique, "avg", "query", None), strict=True))

    def _arrivals(
        self, queries: Sequence[metrics.ServiceQuery], unreachable: str | None
    ) -> dict[tuple[str, str], tuple[float | None, str | None]]:
        """Each service's arrival-rate query (its series summed), all in one request."""
        if not queries:
            return {}
        texts = [q.arrival_rate_query or "" for q in queries]
        answers = self._expressions(texts, "sum", "arrival-rate query", unreachable)
        return {q.key: answer for q, answer in zip(queries, answers, strict=True)}

    def _expressions(
        self, texts: Sequence[str], aggregate: str, what: str, unreachable: str | None
    ) -> list[tuple[float | None, str | None]]:
        """Users' expressions, all in one PromQL request: each one aggregated and tagged with
        its index. If that request fails on its own (one bad expression), each is asked alone,
        so one user's typo blinds no other. An expression that failed alone stays out of the
        request and is retried alone after a backoff (ARRIVAL_RETRY_S, doubling), so one that
        times out costs no timeout per cycle."""
        if not texts:
            return []
        if unreachable is not None:
            return [(None, f"{what} skipped: {unreachable}")] * len(texts)
        now = self._clock()
        asked = {(what, text) for text in texts}  # forget the failures of expressions removed
        self._failing = {k: f for k, f in self._failing.items() if k[0] != what or k in asked}
        answers: dict[int, tuple[float | None, str | None]] = {}
        healthy, due = [], []
        for index, text in enumerate(texts):
            failed = self._failing.get((what, text))
            if failed is None:
                healthy.append((index, text))
            elif failed[0] <= now:
                due.append((index, text))
            else:
                answers[index] = (None, f"{failed[2]} (retried in {failed[0] - now:.0f} s)")
        try:
            answers.update(self._round(healthy, aggregate, what) if healthy else {})
        except Exception as error:  # a backend failure: each expression alone tells which
            if _is_unreachable(error) and not self._answers():
                why = f"{what} failed: Prometheus unreachable ({type(error).__name__})"
                return [(None, why)] * len(texts)
            due += healthy
        for index, text in sorted(due):
            try:
                answers.update(self._round([(index, text)], aggregate, what))
                self._failing.pop((what, text), None)
            except Exception as alone:  # this expression fails: unknown, with the reason
                why = f"{what} failed: {_short(alone)}"
                previous = self._failing.get((what, text))
                backoff_s = (
                    min(2 * previous[1], ARRIVAL_RETRY_MAX_S) if previous else ARRIVAL_RETRY_S
                )
                self._failing[(what, text)] = (now + backoff_s, backoff_s, why)
                answers[index] = (None, why)
        return [answers[i] for i in range(len(texts))]

    def _round(
        self, indexed: Sequence[tuple[int, str]], aggregate: str, what: str
    ) -> dict[int, tuple[float | None, str | None]]:
        text = " or ".join(
            f'label_replace({aggregate}({expression}), "{EXPRESSION_LABEL}", "{i}", "", "")'
            for i, expression in indexed
        )
        self._queries_issued += 1
        values: dict[str, float] = {}
        for row in self._query(text):
            try:
                values[row["metric"][EXPRESSION_LABEL]] = float(row["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
        answers: dict[int, tuple[float | None, str | None]] = {}
        for index, _ in indexed:
            value = values.get(str(index))
            if value is None:
                answers[index] = (None, f"{what} returned no series")
            elif not math.isfinite(value) or value < 0:
                answers[index] = (None, f"{what} returned {value}")
            else:
                answers[index] = (value, None)
        return answers

    def _answers(self) -> bool:
        """Whether Prometheus answers a trivial query: tells a server that is down or hung from
        one expensive query (one service's family) that timed out, which must not blind the
        other services."""
        self._queries_issued += 1
        try:
            self._query("vector(1)")
        except Exception:  # any failure of the probe: treat the server as unreachable
            return False
        return True

    def _families(self, resolved: Iterable[Resolved]) -> dict[Family, list[tuple[str, str]]]:
        families: dict[Family, list[tuple[str, str]]] = defaultdict(list)
        for r in resolved:
            key = r.query.key
            if r.rate:
                families[("rate", r.rate)].append(key)
                families[("freshness", r.rate)].append(key)
                if r.lazy:
                    families[UP].append(key)
            if r.latency and r.latency.histogram:
                families[("buckets", r.latency.histogram)].append(key)
            if r.latency and r.latency.mean_sum:
                families[("mean", r.latency.mean_sum)].append(key)
            for gauge in r.gauges.values():
                families[("gauge", gauge)].append(key)
        return dict(families)

    def _parse(
        self, family: Family, rows: list[dict[str, Any]], wanted: set[tuple[str, str]]
    ) -> dict[tuple[str, str], _Series]:
        parsed: dict[tuple[str, str], _Series] = defaultdict(_Series)
        for row in rows:
            labels = row.get("metric", {})
            key = (labels.get(self.labels.namespace, ""), labels.get(self.labels.service, ""))
            if key not in wanted:
                continue  # a regex match for another tenant's pair: never used
            pod = labels.get(self.labels.pod, "")
            series = parsed[key]
            series.pod_variant[pod] = labels.get(self.labels.variant, "")
            try:
                value = float(row["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                series.bad.append(f"{family[1]} of pod {pod}: unreadable sample")
                series.poisoned.add(pod)
                continue
            if not math.isfinite(value):
                series.bad.append(f"{family[1]} of pod {pod} is {value}")
                series.poisoned.add(pod)
                continue
            if family[0] == "buckets":
                bound = float(labels.get("le", "nan"))
                series.buckets.setdefault(pod, {})[bound] = value
            else:
                series.per_pod[pod] = value
        for series in parsed.values():  # whatever order the rows came in
            for pod in series.poisoned:
                series.per_pod.pop(pod, None)
                series.buckets.pop(pod, None)
        return parsed

    def _assemble(
        self,
        r: Resolved,
        results: Mapping[Family, Mapping[tuple[str, str], _Series]],
        errors: Mapping[Family, str],
        now: float,
    ) -> metrics.ServiceMetrics:
        key, reasons = r.query.key, list(r.problems)

        def series(family: Family | None) -> _Series | None:
            if family is None:
                return None
            if family in errors:
                reasons.append(errors[family])
                return None
            found = results.get(family, {}).get(key)
            if found is not None:
                reasons.extend(found.bad)
            return found

        fresh_pods = self._fresh_pods(
            series(("freshness", r.rate) if r.rate else None), now, reasons
        )
        rate = series(("rate", r.rate) if r.rate else None)
        gauges = {name: series(("gauge", metric)) for name, metric in r.gauges.items()}
        idle = _idle_pods(series(UP) if r.lazy and r.rate else None, rate)
        if idle:  # served nothing yet: a rate of 0, nothing queued or running
            rate = _with_zeros(rate, idle)
            gauges = {name: _with_zeros(g, idle) if g else g for name, g in gauges.items()}
            fresh_pods = None if fresh_pods is None else fresh_pods | set(idle)
        if r.rate and rate is None and not any("failed" in x for x in reasons):
            reasons.append(f"no series of {r.rate} for {key[0]}/{key[1]}")
        pod_variant: dict[str, str] = {}
        for source in (rate,):
            if source is not None:
                pod_variant.update(source.pod_variant)
        pods = [p for p in pod_variant if fresh_pods is None or p in fresh_pods]
        stale = sorted(set(pod_variant) - set(pods))
        if stale:
            reasons.append(f"stale series (older than {self.staleness_s:.0f} s) for pods {stale}")

        latency = r.latency
        buckets = series(("buckets", latency.histogram)) if latency and latency.histogram else None
        mean_sum = series(("mean", latency.mean_sum)) if latency and latency.mean_sum else None

        def signals(members: Sequence[str]) -> metrics.Signals:
            return self._signals(r, members, rate, buckets, mean_sum, gauges)

        by_variant: dict[str, list[str]] = defaultdict(list)
        for pod in pods:
            by_variant[pod_variant[pod]].append(pod)
        total = signals(pods) if pods else metrics.Signals()
        if pods and total.latency_s is None and (total.rps or 0) > 0:
            reasons.append(f"no latency samples for the SLO metric {r.query.slo_metric}")
        return metrics.ServiceMetrics(
            total=total,
            variants={variant: signals(members) for variant, members in by_variant.items()},
            pods={pod: signals([pod]) for pod in pods},
            pod_variant={pod: pod_variant[pod] for pod in pods},
            unknown=metrics.merge_reasons(reasons),
        )

    def _fresh_pods(
        self, freshness: _Series | None, now: float, reasons: list[str]
    ) -> set[str] | None:
        if freshness is None:
            return None
        return {pod for pod, t in freshness.per_pod.items() if now - t <= self.staleness_s}

    @staticmethod
    def _signals(
        r: Resolved,
        members: Sequence[str],
        rate: _Series | None,
        buckets: _Series | None,
        mean_sum: _Series | None,
        gauges: Mapping[str, _Series | None],
    ) -> metrics.Signals:
        def total_of(source: _Series | None) -> float | None:
            if source is None or not any(p in source.per_pod for p in members):
                return None
            return sum(source.per_pod.get(p, 0.0) for p in members)

        rps = total_of(rate)
        latency_s = attainment = None
        if buckets is not None:
            merged: dict[float, float] = defaultdict(float)
            for pod in members:
                for bound, value in buckets.buckets.get(pod, {}).items():
                    merged[bound] += value
            latency_s = histogram.quantile(r.query.percentile / 100.0, merged)
            attainment = histogram.fraction_within(r.query.threshold_s, merged)
        elif mean_sum is not None and r.latency is not None:
            total_sum = total_of(mean_sum)
            if total_sum is not None and rps:
                latency_s = total_sum / rps * r.latency.mean_scale
        kv = gauges.get("kv_cache_usage")
        kv_values = [kv.per_pod[p] for p in members if kv is not None and p in kv.per_pod]
        return metrics.Signals(
            rps=rps,
            latency_s=latency_s,
            slo_attainment=attainment,
            queue=total_of(gauges.get("queue")),
            running=total_of(gauges.get("running")),
            kv_cache_usage=sum(kv_values) / len(kv_values) if kv_values else None,
        )


UP: Family = ("up", "up")
"""Scrape targets up, per pod: for a lazy preset, a pod with no request counter is idle."""


def _idle_pods(up: _Series | None, rate: _Series | None) -> dict[str, str]:
    """Pods (with their variant) whose scrape target is up and that have no request-counter
    series at all: a lazy exporter's pod that has served nothing yet."""
    if up is None:
        return {}
    counted = set(rate.pod_variant) | rate.poisoned if rate is not None else set()
    return {
        pod: up.pod_variant[pod]
        for pod, value in up.per_pod.items()
        if value >= 1 and pod not in counted
    }


def _with_zeros(series: _Series | None, pods: Mapping[str, str]) -> _Series:
    """A copy of ``series`` with these pods at 0 (new when there was none)."""
    result = dataclasses.replace(
        series or _Series(),
        per_pod=dict(series.per_pod) if series else {},
        pod_variant=dict(series.pod_variant) if series else {},
    )
    for pod, variant in pods.items():
        result.per_pod[pod] = 0.0
        result.pod_variant[pod] = variant
    return result


def _is_unreachable(error: BaseException) -> bool:
    """A connection failure or timeout (the server is down or hung), as opposed to an answer
    about one query (a bad query, an overload of one expensive family)."""
    import requests

    return isinstance(error, (requests.ConnectionError, requests.Timeout, TimeoutError, OSError))


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def query_retry(retries: int) -> Any:
    """Refused connections and 5xx answers are retried with exponential backoff, POSTed queries
    too (a query is safe to repeat); a read timeout is not: a hung server would cost
    (retries + 1) x timeout."""
    from urllib3.util.retry import Retry

    return Retry(
        total=retries,
        read=0,
        backoff_factor=0.5,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=None,
    )


def connect(
    url: str,
    *,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    ca_file: str | None = None,
    insecure_skip_verify: bool = False,
    timeout_s: float = 10.0,
    retries: int = 2,
) -> QueryFn:
    """A query function for a Prometheus at `url`, with auth, TLS, a timeout and retries.

    Retries back off exponentially on refused connections and 5xx answers; the last failure
    raises.
    """
    import requests
    from prometheus_api_client import PrometheusConnect

    session = requests.Session()
    session.verify = False if insecure_skip_verify else (ca_file or True)
    headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else None
    client = PrometheusConnect(
        url=url,
        headers=headers,
        auth=basic_auth,
        session=session,
        timeout=timeout_s,
        retry=query_retry(retries),
        method="POST",
    )

    def query(text: str) -> list[dict[str, Any]]:
        result = client.custom_query(text)
        return list(result)

    return query
