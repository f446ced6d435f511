"""The Prometheus adapter: query text per preset, batching, parsing, unknowns, tenancy."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infscale.adapters import prometheus
from infscale.api import v1alpha1
from infscale.controller import decide
from infscale.ports import metrics

NOW = 1_000_000.0


def query(
    service: str = "chat",
    namespace: str = "team-a",
    preset: str = "vllm",
    slo_metric: str = "ttft",
    **overrides: Any,
) -> metrics.ServiceQuery:
    return metrics.ServiceQuery(
        namespace=namespace,
        service=service,
        preset=preset,
        slo_metric=slo_metric,
        percentile=95,
        threshold_s=0.5,
        **overrides,
    )


def row(metric: dict[str, str], value: float | str, at: float = NOW) -> dict[str, Any]:
    return {"metric": metric, "value": [at, str(value)]}


def labels(
    pod: str, variant: str, service: str = "chat", namespace: str = "team-a"
) -> dict[str, str]:
    return {
        "namespace": namespace,
        "infscale_dev_service": service,
        "infscale_dev_variant": variant,
        "pod": pod,
    }


EXPRESSION_TERM_TEXT = 'label_replace({}({}), "infscale_expression", "{}", "", "")'
EXPRESSION_TERM = re.compile(
    r'label_replace\((sum|avg)\((.+?)\), "infscale_expression", "(\d+)", "", ""\)'
)


class FakePrometheus:
    """Answers PromQL text from canned rows per (kind, metric); records every query."""

    PATTERNS = (
        ("up", re.compile(r"\((up)\{")),
        ("freshness", re.compile(r"timestamp\(([^{]+)\{")),
        ("buckets", re.compile(r"rate\((.+)_bucket\{")),
        ("rate", re.compile(r"rate\(([^{]+)\{")),
        ("gauge", re.compile(r"\) \(([^{(]+)\{")),
    )

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.failing: set[str] = set()
        self.rejected: set[str] = set()
        self.texts: list[str] = []
        self.arrivals: dict[str, str] = {}  # arrival-rate expression -> its sum (or "NaN")

    def __call__(self, text: str) -> list[dict[str, Any]]:
        self.texts.append(text)
        if text == "vector(1)":
            return [{"metric": {}, "value": [NOW, "1"]}]
        if text.startswith("label_replace("):
            return self.answer_arrivals(text)
        for kind, pattern in self.PATTERNS:
            match = pattern.search(text)
            if match:
                name = match.group(1)
                if name in self.failing:
                    raise ConnectionError("connection refused")
                if name in self.rejected:
                    raise ValueError("HTTP 400: bad_data")
                return self.rows.get((kind, name), [])
        raise AssertionError(f"unexpected query {text}")

    def answer_arrivals(self, text: str) -> list[dict[str, Any]]:
        """One batched request of tagged arrival-rate expressions, as Prometheus evaluates it:
        an expression that does not parse fails the whole request."""
        tagged = EXPRESSION_TERM.findall(text)
        assert " or ".join(EXPRESSION_TERM_TEXT.format(*term) for term in tagged) == text
        if any(expression in self.rejected for _, expression, _ in tagged):
            raise ValueError("HTTP 400: bad_data: parse error")
        return [
            row({prometheus.EXPRESSION_LABEL: index}, self.arrivals[expression])
            for _, expression, index in tagged
            if expression in self.arrivals
        ]

    def serve_pod(
        self, pod: str, variant: str, rps: float, service: str = "chat", age_s: float = 0
    ) -> None:
        """A vLLM pod: rps, a TTFT histogram (half under 0.1 s, all under 1 s), gauges."""
        at = labels(pod, variant, service)
        self.rows.setdefault(("rate", "vllm:request_success_total"), []).append(row(at, rps))
        self.rows.setdefault(("freshness", "vllm:request_success_total"), []).append(
            row(at, NOW - age_s)
        )
        for le, share in (("0.1", 0.5), ("0.5", 0.9), ("1", 1.0), ("+Inf", 1.0)):
            self.rows.setdefault(("buckets", "vllm:time_to_first_token_seconds"), []).append(
                row({**at, "le": le}, rps * share)
            )
        self.rows.setdefault(("gauge", "vllm:num_requests_waiting"), []).append(row(at, 2))
        self.rows.setdefault(("gauge", "vllm:num_requests_running"), []).append(row(at, 5))
        self.rows.setdefault(("gauge", "vllm:kv_cache_usage_perc"), []).append(row(at, 0.5))


def adapter(fake: FakePrometheus) -> prometheus.PrometheusMetrics:
    return prometheus.PrometheusMetrics(fake, rate_window_s=60, staleness_s=30, clock=lambda: NOW)


BY = "namespace, infscale_dev_service, infscale_dev_variant, pod"


def test_vllm_query_text() -> None:
    texts = adapter(FakePrometheus()).plan_queries([query()])
    scope = '{namespace=~"team-a",infscale_dev_service=~"chat"}'
    assert texts == {
        ("rate", "vllm:request_success_total"): (
            f"sum by ({BY}) (rate(vllm:request_success_total{scope}[60s]))"
        ),
        ("freshness", "vllm:request_success_total"): (
            f"max by ({BY}) (timestamp(vllm:request_success_total{scope}))"
        ),
        ("buckets", "vllm:time_to_first_token_seconds"): (
            f"sum by ({BY}, le) (rate(vllm:time_to_first_token_seconds_bucket{scope}[60s]))"
        ),
        ("gauge", "vllm:num_requests_waiting"): f"sum by ({BY}) (vllm:num_requests_waiting{scope})",
        ("gauge", "vllm:num_requests_running"): f"sum by ({BY}) (vllm:num_requests_running{scope})",
        ("gauge", "vllm:kv_cache_usage_perc"): f"sum by ({BY}) (vllm:kv_cache_usage_perc{scope})",
    }


@pytest.mark.parametrize(
    ("preset", "slo_metric", "expected"),
    [
        ("vllm", "itl", {"vllm:request_success_total", "vllm:inter_token_latency_seconds"}),
        ("vllm", "e2e", {"vllm:e2e_request_latency_seconds"}),
        ("vllm", "queue-time", {"vllm:request_queue_time_seconds"}),
        ("tgi", "e2e", {"tgi_request_success", "tgi_request_duration", "tgi_queue_size"}),
        ("tgi", "itl", {"tgi_request_mean_time_per_token_duration", "tgi_batch_current_size"}),
        ("tgi", "queue-time", {"tgi_request_queue_duration"}),
        ("tei", "e2e", {"te_request_success", "te_request_duration", "te_queue_size"}),
        ("tei", "queue-time", {"te_request_queue_duration", "te_batch_current_size"}),
        ("sglang", "ttft", {"sglang:e2e_request_latency_seconds_count", "sglang:token_usage"}),
        ("sglang", "itl", {"sglang:time_per_output_token_seconds", "sglang:num_queue_reqs"}),
        ("triton", "e2e", {"nv_inference_request_success", "nv_inference_request_duration_us"}),
        ("triton", "queue-time", {"nv_inference_queue_duration_us"}),
    ],
)
def test_every_preset_queries_its_own_metric_names(
    preset: str, slo_metric: str, expected: set[str]
) -> None:
    texts = adapter(FakePrometheus()).plan_queries([query(preset=preset, slo_metric=slo_metric)])
    names = {name for _, name in texts}
    assert expected <= names
    for (kind, name), text in texts.items():
        assert name in text
        assert 'namespace=~"team-a"' in text
        if kind == "buckets":
            assert f"{name}_bucket" in text


def test_triton_latency_is_a_mean_of_cumulative_microseconds() -> None:
    fake = FakePrometheus()
    at = labels("p0", "cpu")
    fake.rows[("rate", "nv_inference_request_success")] = [row(at, 10)]
    fake.rows[("rate", "nv_inference_request_duration_us")] = [row(at, 10 * 250_000)]
    fake.rows[("freshness", "nv_inference_request_success")] = [row(at, NOW)]
    result = adapter(fake).observe([query(preset="triton", slo_metric="e2e")])[("team-a", "chat")]
    assert result.total.latency_s == pytest.approx(0.25)


def test_generic_preset_uses_the_spec_overrides() -> None:
    texts = adapter(FakePrometheus()).plan_queries(
        [
            query(
                preset="generic",
                request_counter="http_requests_total",
                latency_histogram="rt_seconds",
            )
        ]
    )
    assert {name for _, name in texts} == {"http_requests_total", "rt_seconds"}


def test_unsupported_slo_metric_is_unknown_with_a_reason() -> None:
    fake = FakePrometheus()
    result = adapter(fake).observe([query(preset="tgi", slo_metric="ttft")])[("team-a", "chat")]
    assert result.total.latency_s is None
    assert any("exports no ttft latency" in reason for reason in result.unknown)


def test_fifty_services_cost_the_same_queries_as_one() -> None:
    one, fifty = FakePrometheus(), FakePrometheus()
    adapter(one).observe([query()])
    source = adapter(fifty)
    source.observe([query(service=f"svc{i}", namespace=f"ns{i % 7}") for i in range(50)])
    assert len(fifty.texts) == len(one.texts) == source.queries_issued == 6


def test_signals_per_pod_variant_and_service() -> None:
    fake = FakePrometheus()
    fake.serve_pod("chat-l4-a", "l4", rps=4)
    fake.serve_pod("chat-l4-b", "l4", rps=6)
    fake.serve_pod("chat-h100-a", "h100", rps=30)
    result = adapter(fake).observe([query()])[("team-a", "chat")]
    assert result.total.rps == pytest.approx(40)
    assert result.variants["l4"].rps == pytest.approx(10)
    assert result.pods["chat-h100-a"].rps == pytest.approx(30)
    assert result.pod_variant["chat-l4-b"] == "l4"
    # 95th percentile: rank 0.95 lies in (0.5, 1] at 50 % of it.
    assert result.total.latency_s == pytest.approx(0.75)
    assert result.total.slo_attainment == pytest.approx(0.9)
    assert result.variants["l4"].queue == 4
    assert result.variants["l4"].running == 10
    assert result.total.kv_cache_usage == pytest.approx(0.5)
    assert result.unknown == ()


def test_empty_result_is_unknown_never_zero() -> None:
    result = adapter(FakePrometheus()).observe([query()])[("team-a", "chat")]
    assert result.total.rps is None
    assert result.total.latency_s is None
    assert not result.available
    assert any("no series of vllm:request_success_total" in r for r in result.unknown)


@pytest.mark.parametrize("bad", ["NaN", "+Inf", "-Inf"])
def test_nan_and_inf_samples_are_unknown(bad: str) -> None:
    fake = FakePrometheus()
    fake.serve_pod("p0", "l4", rps=5)
    fake.rows[("rate", "vllm:request_success_total")] = [row(labels("p0", "l4"), bad)]
    result = adapter(fake).observe([query()])[("team-a", "chat")]
    assert result.total.rps is None
    assert any(str(float(bad)) in r for r in result.unknown)


def test_nan_latency_buckets_are_unknown_not_zero() -> None:
    fake = FakePrometheus()
    fake.serve_pod("p0", "l4", rps=5)
    fake.rows[("buckets", "vllm:time_to_first_token_seconds")] = [
        row({**labels("p0", "l4"), "le": le}, "NaN") for le in ("0.1", "+Inf")
    ]
    result = adapter(fake).observe([query()])[("team-a", "chat")]
    assert result.total.rps == 5
    assert result.total.latency_s is None
    assert any("no latency samples" in r for r in result.unknown)


def test_no_traffic_gives_zero_rate_and_unknown_latency() -> None:
    fake = FakePrometheus()
    fake.serve_pod("p0", "l4", rps=0)
    result = adapter(fake).observe([query()])[("team-a", "chat")]
    assert result.total.rps == 0
    assert result.total.latency_s is None


def test_stale_series_are_dropped_with_a_reason() -> None:
    fake = FakePrometheus()
    fake.serve_pod("fresh", "l4", rps=5)
    fake.serve_pod("old", "l4", rps=50, age_s=120)
    result = adapter(fake).observe([query()])[("team-a", "chat")]
    assert result.total.rps == 5
    assert "old" not in result.pods
    assert any("stale series" in r and "old" in r for r in result.unknown)


def test_prometheus_error_is_unknown_with_the_reason() -> None:
    fake = FakePrometheus()
    fake.serve_pod("p0", "l4", rps=5)
    fake.failing.add("vllm:request_success_total")
    result = adapter(fake).observe([query()])[("team-a", "chat")]
    assert result.total.rps is None
    assert any("failed: connection refused" in r for r in result.unknown)


def test_an_unreachable_prometheus_costs_one_query_per_round() -> None:
    def down(text: str) -> list[dict[str, Any]]:
        calls.append(text)
        raise TimeoutError("read timed out")

    calls: list[str] = []
    source = prometheus.PrometheusMetrics(down, clock=lambda: NOW)
    results = source.observe([query(), query(service="embed")])
    assert calls[1:] == ["vector(1)"], "one query, one probe, then nothing"
    for result in results.values():
        assert result.total.rps is None
        assert any("skipped: Prometheus unreachable (TimeoutError)" in r for r in result.unknown)


def test_one_slow_family_does_not_blind_the_other_services() -> None:
    fake = FakePrometheus()
    fake.serve_pod("p0", "l4", rps=5)
    fake.serve_pod("e0", "cpu", rps=3, service="embed")

    def one_family_times_out(text: str) -> list[dict[str, Any]]:
        if "custom_requests_total" in text:
            raise TimeoutError("read timed out")
        return fake(text)

    slow = query(service="slow", preset="generic", request_counter="custom_requests_total")
    source = prometheus.PrometheusMetrics(one_family_times_out, staleness_s=30, clock=lambda: NOW)
    results = source.observe([slow, query(), query(service="embed")])
    assert results[("team-a", "slow")].total.rps is None
    assert results[("team-a", "chat")].total.rps == 5
    assert results[("team-a", "embed")].total.rps == 3


def test_a_bad_query_does_not_skip_the_others() -> None:
    fake = FakePrometheus()
    fake.serve_pod("p0", "l4", rps=5)
    fake.rejected.add("vllm:time_to_first_token_seconds")
    result = adapter(fake).observe([query()])[("team-a", "chat")]
    assert result.total.rps == 5
    assert result.total.latency_s is None
    assert any("bad_data" in r for r in result.unknown)
    assert not any("skipped" in r for r in result.unknown)


def test_partial_one_variant_missing() -> None:
    fake = FakePrometheus()
    fake.serve_pod("chat-l4-a", "l4", rps=4)
    result = adapter(fake).observe([query()])[("team-a", "chat")]
    assert set(result.variants) == {"l4"}
    assert result.total.rps == 4


def test_another_tenants_series_are_never_used() -> None:
    fake = FakePrometheus()
    fake.serve_pod("mine", "l4", rps=1, service="chat")
    # team-b/chat and team-a/other match the batched regexes but were not asked for as pairs.
    fake.rows[("rate", "vllm:request_success_total")] += [
        row(labels("theirs", "l4", "chat", "team-b"), 1000),
        row(labels("other", "l4", "other", "team-a"), 1000),
    ]
    results = adapter(fake).observe([query(), query(service="x", namespace="team-b")])
    assert results[("team-a", "chat")].total.rps == 1
    assert results[("team-b", "x")].total.rps is None


def unescape_promql(body: str) -> str:
    return body.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


@pytest.mark.parametrize(
    "hostile", ['chat"} or vector(1) #', "a}|.*", 'x",namespace=~".*', "a=~b", "line\nbreak", "\\"]
)
def test_label_values_stay_inert_in_the_selector(hostile: str) -> None:
    builder = prometheus.QueryBuilder(metrics.SeriesLabels(), 60)
    selector = builder.selector([("team-a", hostile)])
    # Exactly two matchers whose string bodies end only at unescaped quotes.
    bodies = re.findall(r'=~"((?:[^"\\]|\\.)*)"', selector)
    assert len(bodies) == 2
    assert selector == '{namespace=~"' + bodies[0] + '",infscale_dev_service=~"' + bodies[1] + '"}'
    assert "\n" not in selector
    pattern = re.compile(unescape_promql(bodies[1]))
    assert pattern.fullmatch(hostile)
    assert not pattern.fullmatch("chat")
    assert not pattern.fullmatch(hostile + "x")


def test_injected_metric_name_is_never_queried() -> None:
    fake = FakePrometheus()
    source = adapter(fake)
    result = source.observe([query(request_counter='up{job="x"} or vector(1)')])
    assert all("vector(1)" not in text for text in fake.texts)
    assert any(
        "not a valid Prometheus metric name" in r for r in result[("team-a", "chat")].unknown
    )


def gateway(service: str) -> str:
    return f'sum(rate(gateway_requests_total{{service="{service}"}}[1m]))'


def test_arrival_rates_of_many_services_take_one_more_query() -> None:
    fake = FakePrometheus()
    fake.serve_pod("p0", "l4", rps=5)
    fake.arrivals = {gateway("chat"): "7.5", gateway("embed"): "0"}
    source = adapter(fake)
    services = [query(service=s, arrival_rate_query=gateway(s)) for s in ("chat", "embed")]
    results = source.observe([*services, query(service="plain")])
    assert source.queries_issued == 7, "the six families and one arrival-rate request"
    chat, embed = results[("team-a", "chat")], results[("team-a", "embed")]
    assert (chat.total.rps, chat.arrival_rps) == (5, 7.5)
    # No pods at all (scaled to zero): the gateway's zero is a known rate.
    assert embed.total.rps is None
    assert embed.arrival_rps == 0
    assert embed.available
    assert results[("team-a", "plain")].arrival_rps is None


def test_no_arrival_request_without_arrival_queries() -> None:
    fake = FakePrometheus()
    adapter(fake).observe([query()])
    assert not any("label_replace" in t for t in fake.texts)


@pytest.mark.parametrize("answer", [None, "NaN", "+Inf", "-1"])
def test_a_missing_or_bad_arrival_rate_is_unknown(answer: str | None) -> None:
    fake = FakePrometheus()
    if answer is not None:
        fake.arrivals[gateway("chat")] = answer
    result = adapter(fake).observe([query(arrival_rate_query=gateway("chat"))])
    chat = result[("team-a", "chat")]
    assert chat.arrival_rps is None
    assert not chat.available
    assert any(r.startswith("arrival-rate query returned") for r in chat.unknown)


def test_one_bad_arrival_expression_blinds_no_other_service() -> None:
    fake = FakePrometheus()
    fake.arrivals = {gateway("chat"): "3", gateway("embed"): "2"}
    fake.rejected.add("sum(rate(oops[1m])")
    services = [query(service=s, arrival_rate_query=gateway(s)) for s in ("chat", "embed")]
    typo = query(service="typo", arrival_rate_query="sum(rate(oops[1m])")
    results = adapter(fake).observe([services[0], typo, services[1]])
    assert results[("team-a", "chat")].arrival_rps == 3
    assert results[("team-a", "embed")].arrival_rps == 2
    bad = results[("team-a", "typo")]
    assert bad.arrival_rps is None
    assert any("arrival-rate query failed: " in r and "bad_data" in r for r in bad.unknown)


def test_an_unreachable_prometheus_skips_the_arrival_request() -> None:
    def down(text: str) -> list[dict[str, Any]]:
        calls.append(text)
        raise ConnectionError("connection refused")

    calls: list[str] = []
    source = prometheus.PrometheusMetrics(down, clock=lambda: NOW)
    result = source.observe([query(arrival_rate_query=gateway("chat"))])[("team-a", "chat")]
    assert len(calls) == 2, "one query, one probe"
    assert result.arrival_rps is None
    assert any("arrival-rate query skipped: Prometheus unreachable" in r for r in result.unknown)


def test_a_failing_arrival_expression_is_retried_alone_after_a_backoff() -> None:
    # A bad or slow expression must not cost every cycle a failed request plus one per service.
    fake = FakePrometheus()
    fake.arrivals = {gateway("chat"): "3", gateway("embed"): "2", "sum(rate(oops[1m]))": "1"}
    fake.rejected.add("sum(rate(oops[1m]))")
    services = [query(service=s, arrival_rate_query=gateway(s)) for s in ("chat", "embed")]
    services.append(query(service="typo", arrival_rate_query="sum(rate(oops[1m]))"))
    clock = [NOW]
    source = prometheus.PrometheusMetrics(fake, clock=lambda: clock[0])

    def cycle(at_s: float) -> tuple[int, dict[tuple[str, str], metrics.ServiceMetrics]]:
        clock[0] = NOW + at_s
        before = len(fake.texts)
        results = source.observe(services)
        requests = sum(t.startswith("label_replace(") for t in fake.texts[before:])
        assert results[("team-a", "chat")].arrival_rps == 3
        assert results[("team-a", "embed")].arrival_rps == 2
        return requests, results

    def typo(results: dict[tuple[str, str], metrics.ServiceMetrics]) -> str:
        return next(r for r in results[("team-a", "typo")].unknown if "arrival-rate" in r)

    requests, results = cycle(0)
    assert requests == 4, "the batch fails, then each expression alone"
    assert "bad_data" in typo(results)
    requests, results = cycle(15)
    assert requests == 1, "the failing expression waits out its backoff"
    assert typo(results).endswith("(retried in 15 s)")
    assert results[("team-a", "typo")].arrival_rps is None
    assert cycle(30)[0] == 2, "due: the healthy batch, and the failing one alone"
    assert cycle(75)[0] == 1, "failed again: the backoff doubled to 60 s"
    fake.rejected.clear()  # the expression is fixed
    requests, results = cycle(90)
    assert (requests, results[("team-a", "typo")].arrival_rps) == (2, 1)
    assert cycle(105)[0] == 1, "answered: back in the one request"


def test_users_expressions_are_read_in_one_request_and_a_bad_one_blinds_no_other() -> None:
    # A pool's electricity price and carbon intensity as PromQL (power.*Query): one request for
    # all of them, each averaged over its series; a typo or a missing series is unknown, with why.
    fake = FakePrometheus()
    fake.arrivals = {"grid_usd_per_kwh": "0.31", "grid_g_co2_per_kwh": "412"}
    fake.rejected.add("grid_usd_per_kwh{")
    source = adapter(fake)
    answers = source.values(
        ["grid_usd_per_kwh", "grid_g_co2_per_kwh", "grid_usd_per_kwh{", "absent_series"]
    )
    assert answers["grid_usd_per_kwh"] == (0.31, None)
    assert answers["grid_g_co2_per_kwh"] == (412.0, None)
    assert answers["grid_usd_per_kwh{"][0] is None
    assert "query failed: " in (answers["grid_usd_per_kwh{"][1] or "")
    assert answers["absent_series"] == (None, "query returned no series")
    assert fake.texts[0].startswith('label_replace(avg(grid_usd_per_kwh), "infscale_expression"')
    # The failed batch, then each expression alone: a bounded number of requests.
    assert len(fake.texts) == 1 + 4
    fake.texts.clear()
    source.values(["grid_usd_per_kwh", "grid_usd_per_kwh{"])
    assert len(fake.texts) == 1, "the failing expression waits out its backoff"


def test_the_crd_rule_knows_the_slo_metrics_every_preset_exports() -> None:
    exported = {name: set(p.latency) for name, p in prometheus.PRESETS.items() if p.latency}
    assert exported == {name: set(m) for name, m in v1alpha1.PRESET_SLO_METRICS.items()}
    assert set(v1alpha1.MetricsPreset) == {*prometheus.PRESETS}


def test_a_5xx_answer_to_a_posted_query_is_retried() -> None:
    retry = prometheus.query_retry(2)
    assert retry.is_retry("POST", 503)  # queries go by POST
    assert not retry.is_retry("POST", 400)  # a bad query is not retried


@pytest.mark.parametrize("nan_first", [True, False])
def test_a_pod_with_one_nan_bucket_gives_no_histogram_whatever_the_row_order(
    nan_first: bool,
) -> None:
    fake = FakePrometheus()
    fake.serve_pod("p0", "l4", rps=5)
    fake.serve_pod("p1", "l4", rps=5)
    rows = fake.rows[("buckets", "vllm:time_to_first_token_seconds")]
    nan = row({**labels("p1", "l4"), "le": "0.1"}, "NaN")
    rows[:] = [nan, *[r for r in rows if r["metric"] != nan["metric"]]]
    if not nan_first:
        rows.append(rows.pop(0))
    fake.rows[("gauge", "vllm:num_requests_waiting")] = [
        row(labels("p0", "l4"), 2),
        row(labels("p1", "l4"), "NaN"),
    ]
    result = adapter(fake).observe([query()])[("team-a", "chat")]
    assert result.pods["p1"].latency_s is None  # not a partial histogram of p1's other buckets
    assert result.pods["p0"].latency_s == result.total.latency_s  # p0's alone
    assert result.pods["p1"].queue is None
    gaps = decide.missing_pod_rates(result, {"l4": 2})
    assert gaps == ("queue of pod p1",)  # the backlog undercounts: scale up only


def serve_tgi(fake: FakePrometheus, served: dict[str, float], idle: list[str]) -> None:
    """TGI pods: the ones that have served requests export its counters and gauges; an idle one
    exports nothing of TGI's (its exporter shows a series once touched), only its target's up."""
    for pod, rps in served.items():
        at = labels(pod, "l4")
        fake.rows.setdefault(("rate", "tgi_request_success"), []).append(row(at, rps))
        fake.rows.setdefault(("freshness", "tgi_request_success"), []).append(row(at, NOW))
        for le in ("0.5", "1", "+Inf"):
            fake.rows.setdefault(("buckets", "tgi_request_duration"), []).append(
                row({**at, "le": le}, rps)
            )
        fake.rows.setdefault(("gauge", "tgi_queue_size"), []).append(row(at, 3))
    for pod in [*served, *idle]:
        fake.rows.setdefault(("up", "up"), []).append(row(labels(pod, "l4"), 1))


def test_a_lazy_exporters_pod_that_has_served_nothing_is_idle_not_missing() -> None:
    fake = FakePrometheus()
    serve_tgi(fake, {"busy": 4.0}, ["new"])
    result = adapter(fake).observe([query(preset="tgi", slo_metric="e2e")])[("team-a", "chat")]
    assert result.available
    assert result.total.rps == 4.0
    assert (result.pods["new"].rps, result.pods["new"].queue) == (0.0, 0.0)
    assert result.total.queue == 3.0
    assert decide.missing_pod_rates(result, {"l4": 2}) == ()  # nothing blocks a scale-down


def test_a_lazy_exporters_service_that_has_served_nothing_reads_zero_not_unknown() -> None:
    fake = FakePrometheus()
    serve_tgi(fake, {}, ["a", "b"])
    result = adapter(fake).observe([query(preset="tgi", slo_metric="e2e")])[("team-a", "chat")]
    assert (result.available, result.total.rps, result.total.latency_s) == (True, 0.0, None)
    assert not any("no series" in r for r in result.unknown)


def test_a_target_that_is_down_is_not_idle_and_vllm_needs_no_up() -> None:
    fake = FakePrometheus()
    serve_tgi(fake, {"busy": 4.0}, [])
    fake.rows[("up", "up")].append(row(labels("down", "l4"), 0))
    result = adapter(fake).observe([query(preset="tgi", slo_metric="e2e")])[("team-a", "chat")]
    assert "down" not in result.pods  # a failed scrape is missing data, never a zero
    assert decide.missing_pod_rates(result, {"l4": 2})  # so no scale-down
    fake.texts.clear()
    fake.serve_pod("p0", "l4", rps=5)
    adapter(fake).observe([query()])
    assert not any("(up{" in text for text in fake.texts)  # vLLM counts from zero
