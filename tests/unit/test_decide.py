"""One decision over all services: metrics and planner wired as the operator uses them."""

from __future__ import annotations

import base64
import dataclasses
import zlib
from collections.abc import Sequence

import pytest

from infscale.api import v1alpha1
from infscale.controller import convert, decide, decisions
from infscale.domain import model, tuning
from infscale.ports import metrics

POOL = v1alpha1.InferenceNodePoolSpec.model_validate(
    {
        "provider": {"kwok": {}},
        "node": {"capacity": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"}},
        "usdPerHour": 0.8,
        "maxNodes": 10,
        "provisioningSeconds": 60,
    }
)
SPEC = v1alpha1.InferenceServiceSpec.model_validate(
    {
        "slo": {"thresholdSeconds": 0.5},
        "replicas": {"min": 1, "max": 10},
        "variants": [
            {"name": "l4", "nodePool": "gpu", "capacityRps": 10, "resources": {"nvidia.com/gpu": 1}}
        ],
        "template": {"spec": {"containers": [{"name": "server"}]}},
    }
)
KEY = ("team-a", "chat")


class FakeMetrics:
    """A metrics source with a fixed answer; counts its calls."""

    def __init__(
        self, rps: float | None, latency_s: float | None = 0.2, arrival_rps: float | None = None
    ) -> None:
        self.signals = metrics.Signals(rps=rps, latency_s=latency_s)
        self.arrival_rps = arrival_rps
        self.calls = 0

    @property
    def queries_issued(self) -> int:
        return self.calls

    def observe(
        self, queries: Sequence[metrics.ServiceQuery]
    ) -> dict[tuple[str, str], metrics.ServiceMetrics]:
        self.calls += 1
        unknown = () if self.signals.rps is not None else ("Prometheus query failed",)
        return {
            q.key: metrics.ServiceMetrics(
                total=self.signals,
                variants={"l4": self.signals} if self.signals.rps is not None else {},
                pods={},
                pod_variant={},
                unknown=unknown,
                arrival_rps=self.arrival_rps,
            )
            for q in queries
        }


def owned(replicas: int) -> dict[tuple[str, str], list[decisions.OwnedDeployment]]:
    return {KEY: [decisions.OwnedDeployment("chat-l4", "l4", replicas, replicas, "h")]}


def test_load_above_capacity_scales_up_and_sizes_the_pool() -> None:
    decider = decide.Decider(FakeMetrics(rps=35.0))
    decisions, nodes = decider.decide(
        [decide.ServiceInput(KEY, SPEC, held=False)], {"gpu": POOL}, owned(1), 1000.0
    )
    assert decisions[KEY].replicas["l4"] >= 4
    assert nodes["gpu"].nodes >= decisions[KEY].replicas["l4"]
    assert "demand" in decisions[KEY].reason


def test_recommend_mode_reports_but_keeps_replicas() -> None:
    decider = decide.Decider(FakeMetrics(rps=35.0))
    decisions, _ = decider.decide(
        [decide.ServiceInput(KEY, SPEC, held=True)], {"gpu": POOL}, owned(1), 1000.0
    )
    assert decisions[KEY].replicas == {"l4": 1}
    assert decisions[KEY].recommended["l4"] >= 4


def test_a_restarted_operator_does_not_scale_down_before_a_full_window() -> None:
    decider = decide.Decider(FakeMetrics(rps=1.0))
    inputs = [decide.ServiceInput(KEY, SPEC, held=False)]
    first, _ = decider.decide(inputs, {"gpu": POOL}, owned(6), 1000.0)
    assert first[KEY].replicas["l4"] == 6
    later, _ = decider.decide(inputs, {"gpu": POOL}, owned(6), 1000.0 + 400)
    assert later[KEY].replicas["l4"] < 6


def test_unknown_metrics_never_scale_down_and_say_why() -> None:
    decider = decide.Decider(FakeMetrics(rps=None, latency_s=None))
    inputs = [decide.ServiceInput(KEY, SPEC, held=False)]
    for step in range(5):
        decisions, _ = decider.decide(inputs, {"gpu": POOL}, owned(4), 1000.0 + 400 * step)
        assert decisions[KEY].replicas["l4"] == 4
    assert "Prometheus query failed" in decisions[KEY].reason


class PartialMetrics(FakeMetrics):
    """Three Ready pods, but only ``fresh`` of them have a series (the rest are stale)."""

    def __init__(self, rps: float, fresh: int) -> None:
        super().__init__(rps=rps)
        self.fresh = fresh

    def observe(
        self, queries: Sequence[metrics.ServiceQuery]
    ) -> dict[tuple[str, str], metrics.ServiceMetrics]:
        self.calls += 1
        pods = {f"chat-l4-{i}": metrics.Signals(rps=self.signals.rps) for i in range(self.fresh)}
        unknown = (
            ("stale series (older than 60 s) for pods ['chat-l4-9']",) if self.fresh < 3 else ()
        )
        return {
            q.key: metrics.ServiceMetrics(
                total=self.signals,
                variants={"l4": self.signals},
                pods=pods,
                pod_variant=dict.fromkeys(pods, "l4"),
                unknown=unknown,
            )
            for q in queries
        }


def test_stale_pod_series_block_scale_down_but_not_scale_up() -> None:
    inputs = [decide.ServiceInput(KEY, SPEC, held=False)]
    decider = decide.Decider(PartialMetrics(rps=1.0, fresh=2))
    for step in range(4):
        decisions, nodes = decider.decide(inputs, {"gpu": POOL}, owned(3), 1000.0 + 400 * step)
        assert decisions[KEY].replicas["l4"] == 3
        assert nodes["gpu"].nodes >= 3
    assert "missing request rate of 1 of 3 Ready l4 pod(s)" in decisions[KEY].reason
    up = decide.Decider(PartialMetrics(rps=60.0, fresh=2))
    decisions, _ = up.decide(inputs, {"gpu": POOL}, owned(3), 1000.0)
    assert decisions[KEY].replicas["l4"] >= 6
    # Every Ready pod reporting: the same low rate scales down after the window.
    complete = decide.Decider(PartialMetrics(rps=1.0, fresh=3))
    complete.decide(inputs, {"gpu": POOL}, owned(3), 1000.0)
    later, _ = complete.decide(inputs, {"gpu": POOL}, owned(3), 1400.0)
    assert later[KEY].replicas["l4"] < 3


def test_missing_pod_rates() -> None:
    nan_pod = metrics.ServiceMetrics(
        total=metrics.Signals(rps=3.0),
        variants={"l4": metrics.Signals(rps=3.0)},
        pods={"a": metrics.Signals(rps=3.0), "b": metrics.Signals()},
        pod_variant={"a": "l4", "b": "l4"},
    )
    gaps = decide.missing_pod_rates(nan_pod, {"l4": 2})
    assert gaps[0] == "request rate of pod b"
    assert "1 of 2 Ready l4" in gaps[1]
    assert decide.missing_pod_rates(metrics.empty("Prometheus down"), {"l4": 2}) == ()
    assert decide.missing_pod_rates(None, {"l4": 2}) == ()


KEY_TEXT = "team-a/chat"


def test_learned_memory_is_saved_when_due_and_a_restart_goes_on_from_it() -> None:
    service = [decide.ServiceInput(KEY, SPEC, held=False)]
    first = decide.Decider(FakeMetrics(rps=20.0), save_memory_s=60.0)
    saved: dict[float, str | None] = {}
    learned = {}
    for step in range(9):
        now_s = 1000.0 + 15.0 * step
        decisions, _ = first.decide(service, {"gpu": POOL}, owned(2), now_s)
        saved[now_s] = decisions[KEY].memory
        learned[now_s] = (first.state.forecasts[KEY_TEXT], first.state.capacity_rps[KEY_TEXT])
    # Every 60 s, at a phase of the service's own (a fleet does not save all in one cycle).
    times = [t for t, memory in saved.items() if memory]
    assert len(times) == 2
    assert times[1] - times[0] == 60.0
    assert times[0] <= 1060.0  # within a period of first sight
    memory = saved[times[1]]
    assert memory is not None
    restored, saved_at = decide.decode_memory(memory)
    assert saved_at == times[1]
    assert (restored.forecasts[KEY_TEXT], restored.capacity_rps[KEY_TEXT]) == learned[times[1]]
    assert not restored.last_replicas  # replicas and windows come from the cluster

    # A restart: the new operator goes on from the saved forecast and hourly-burst memory; the
    # replicas come from the Deployments and the stabilization window starts afresh.
    with_memory = [decide.ServiceInput(KEY, SPEC, held=False, memory=memory)]
    second = decide.Decider(FakeMetrics(rps=20.0), save_memory_s=60.0)
    second.decide(with_memory, {"gpu": POOL}, owned(3), 1200.0)
    fresh = decide.Decider(FakeMetrics(rps=20.0), save_memory_s=60.0)
    fresh.decide(service, {"gpu": POOL}, owned(3), 1200.0)
    minutes = second.state.forecasts["team-a/chat"].minutes
    assert minutes[0][0] < fresh.state.forecasts["team-a/chat"].minutes[0][0]  # from before
    assert second.state.history["team-a/chat"] == fresh.state.history["team-a/chat"]


def test_unreadable_memory_is_ignored_and_never_unbounded() -> None:
    service = [decide.ServiceInput(KEY, SPEC, held=False, memory="v1:not base64 at all")]
    decider = decide.Decider(FakeMetrics(rps=20.0))
    decisions, _ = decider.decide(service, {"gpu": POOL}, owned(2), 1000.0)
    assert decisions[KEY].replicas["l4"] >= 2
    bomb = "v1:" + base64.b64encode(zlib.compress(b"0" * (4 << 20))).decode()
    for text in ("v0:e30=", "v1:" + base64.b64encode(zlib.compress(b"[1, 2]")).decode(), bomb):
        with pytest.raises(ValueError, match=r"format|TypeError|larger"):
            decide.decode_memory(text)


def test_the_servers_queue_reaches_the_planner() -> None:
    # One saturated replica completes its 10 rps while 3000 requests wait: the rate alone asks for
    # nothing more; the queue, read through the same metrics source, asks for more replicas.
    plain, queued = FakeMetrics(rps=10.0, latency_s=30.0), FakeMetrics(rps=10.0, latency_s=30.0)
    queued.signals = dataclasses.replace(queued.signals, queue=3000.0)
    service = [decide.ServiceInput(KEY, SPEC, held=False)]
    without, _ = decide.Decider(plain).decide(service, {"gpu": POOL}, owned(1), 1000.0)
    with_queue, _ = decide.Decider(queued).decide(service, {"gpu": POOL}, owned(1), 1000.0)
    assert with_queue[KEY].replicas["l4"] > without[KEY].replicas["l4"]
    assert "3000 request(s) queued" in with_queue[KEY].reason


@pytest.mark.parametrize("arrival_rps", [None, 0.0, 6.0])
def test_a_service_scaled_to_zero_wakes_only_on_arrivals(arrival_rps: float | None) -> None:
    # No pods, so the servers report nothing; only a gateway's arrival rate can see traffic.
    spec = SPEC.model_copy(
        update={"replicas": v1alpha1.Replicas(min=0, max=10, idle_timeout_seconds=60)}
    )
    source = FakeMetrics(rps=None, latency_s=None, arrival_rps=arrival_rps)
    service = [decide.ServiceInput(KEY, spec, held=False)]
    decision, _ = decide.Decider(source).decide(service, {"gpu": POOL}, owned(0), 1000.0)
    woken = decision[KEY].replicas["l4"]
    if arrival_rps:
        assert woken == 1, "6 rps needs one 10-rps replica"
        assert "demand 6.00 rps" in decision[KEY].reason
    else:
        assert woken == 0
    gateway = 'sum(rate(istio_requests_total{destination_service_name="chat"}[1m]))'
    assert decision[KEY].reason.startswith(decide.ASLEEP_WITHOUT_ARRIVALS) == (woken == 0)
    metrics_spec = v1alpha1.MetricsSpec(arrival_rate_query=gateway)
    asked = [decide.ServiceInput(KEY, spec.model_copy(update={"metrics": metrics_spec}), False)]
    again, _ = decide.Decider(source).decide(asked, {"gpu": POOL}, owned(0), 1000.0)
    assert decide.ASLEEP_WITHOUT_ARRIVALS not in again[KEY].reason


def test_the_arrival_query_is_the_services_own_else_the_operators_template() -> None:
    template = (
        'sum(rate(gw_total{ns="$namespace",svc="$service"}[1m]))'
        ' + 0 * label_replace(vector(0), "a", "$1", "b", "(.*)")'
    )
    own = 'sum(rate(my_gateway_total{app="chat"}[1m]))'
    spec = SPEC.model_copy(update={"metrics": v1alpha1.MetricsSpec(arrival_rate_query=own)})
    assert convert.arrival_query("team-a", "chat", SPEC, None, True) is None
    filled = convert.arrival_query("team-a", "chat", SPEC, template, True)
    assert filled is not None
    assert filled.startswith('sum(rate(gw_total{ns="team-a",svc="chat"}[1m]))')
    assert '"$1"' in filled, "other $ text stays as it is"
    assert convert.arrival_query("team-a", "chat", spec, template, True) == own
    assert convert.arrival_query("team-a", "chat", spec, template, False) == filled
    assert convert.arrival_query("team-a", "chat", spec, None, False) is None


def test_a_forbidden_service_query_is_not_run_and_status_says_so() -> None:
    own = "sum(rate(other_teams_secret_total[1m]))"
    spec = SPEC.model_copy(update={"metrics": v1alpha1.MetricsSpec(arrival_rate_query=own)})
    asked: list[metrics.ServiceQuery] = []

    class Recording(FakeMetrics):
        def observe(
            self, queries: Sequence[metrics.ServiceQuery]
        ) -> dict[tuple[str, str], metrics.ServiceMetrics]:
            asked.extend(queries)
            return super().observe(queries)

    decider = decide.Decider(Recording(rps=5.0), service_arrival_queries=False)
    decision, _ = decider.decide(
        [decide.ServiceInput(KEY, spec, held=False)], {"gpu": POOL}, owned(1), 1000.0
    )
    assert [q.arrival_rate_query for q in asked] == [None]
    assert decision[KEY].reason.startswith(decide.IGNORED_ARRIVAL_QUERY)


@pytest.mark.parametrize("asks_arrivals", [False, True])
def test_asleep_is_not_lost_metrics_unless_the_arrivals_are_unknown(asks_arrivals: bool) -> None:
    # With no replica no server reports anything: that is sleep, not a metrics outage, so a
    # Fixed fallback must not wake the service (it would flap: wake, idle, sleep, wake...). If
    # the arrival rate is asked for and unknown, requests may be arriving: the fallback holds.
    query = 'sum(rate(gateway_requests_total{service="chat"}[1m]))' if asks_arrivals else None
    spec = SPEC.model_copy(
        update={
            "replicas": v1alpha1.Replicas(min=0, max=10, idle_timeout_seconds=60),
            "fallback": v1alpha1.Fallback(policy=v1alpha1.FallbackPolicy.FIXED, replicas=2),
            "metrics": v1alpha1.MetricsSpec(arrival_rate_query=query),
        }
    )
    decider = decide.Decider(FakeMetrics(rps=None, latency_s=None))
    service = [decide.ServiceInput(KEY, spec, held=False)]
    for now_s in (1000.0, 1015.0, 1030.0):
        decision, _ = decider.decide(service, {"gpu": POOL}, owned(0), now_s)
        assert decision[KEY].replicas["l4"] == (2 if asks_arrivals else 0)
        assert decision[KEY].asleep is not asks_arrivals


def test_a_new_service_that_must_run_has_not_started_rather_than_slept() -> None:
    # min 1 and no Deployment yet: nothing is known of its traffic (its first forecast must not
    # read a zero rate, as a saved planner memory would then show).
    decider = decide.Decider(FakeMetrics(rps=None, latency_s=None))
    decision, _ = decider.decide(
        [decide.ServiceInput(KEY, SPEC, held=False)], {"gpu": POOL}, {}, 1000.0
    )
    assert decision[KEY].replicas["l4"] == 1
    assert "request rate unknown" in decision[KEY].reason
    assert f"{KEY[0]}/{KEY[1]}" not in decider.state.forecasts or (
        decider.state.forecasts[f"{KEY[0]}/{KEY[1]}"].last_s is None
    )


def test_a_steady_memory_is_saved_rarely_and_a_change_at_the_next_period() -> None:
    # Saving a memory that only moved in noise would cost every service a write per period.
    source = FakeMetrics(rps=20.0)
    decider = decide.Decider(source, save_memory_s=60.0)
    service = [decide.ServiceInput(KEY, SPEC, held=False)]
    saves, changes = [], []
    for step in range(120):  # 30 min, 15 s apart: 30 periods
        now_s = 1000.0 + 15.0 * step
        if step == 100:
            source.signals = metrics.Signals(rps=45.0, latency_s=0.2)  # the traffic doubles
        decisions, _ = decider.decide(service, {"gpu": POOL}, owned(4), now_s)
        if decisions[KEY].memory:
            saves.append(now_s)
            changes.append(decisions[KEY].memory_changes)
    steady = [t for t in saves if t < 2500.0]
    # Once learned, at most the hourly refresh (one more save in 25 min of a steady rate).
    assert 1 <= len(steady) <= 4, steady
    assert any(2500.0 <= t <= 2500.0 + 75.0 for t in saves), saves  # within a period of it
    assert changes[0] == ("first",)
    assert all(moved and "first" not in moved for moved in changes[1:]), changes  # said why
    assert any(set(moved) & set(decide.MEMORY_PARTS) for moved in changes[1:]), changes


def test_a_fleet_that_learns_at_once_saves_a_share_each_cycle() -> None:
    # 200 services whose traffic doubles in the same minute: their memories are saved over one
    # period, each at its own phase, never all in one cycle (a thousand status writes at once).
    source = FakeMetrics(rps=20.0)
    decider = decide.Decider(source, save_memory_s=60.0)
    keys = [("team-a", f"chat-{i}") for i in range(200)]
    fleet = [decide.ServiceInput(key, SPEC, held=False) for key in keys]
    running = {key: owned(4)[KEY] for key in keys}
    per_cycle = []
    for step in range(40):
        now_s = 1000.0 + 15.0 * step
        if step == 20:
            source.signals = metrics.Signals(rps=45.0, latency_s=0.2)
        decisions, _ = decider.decide(fleet, {"gpu": POOL}, running, now_s)
        per_cycle.append(sum(1 for d in decisions.values() if d.memory))
    first, after = per_cycle[:20], per_cycle[20:]
    assert sum(first[:5]) >= 190  # every one saved its first memory within a period...
    assert max(per_cycle) <= 200 * 15 / 60 * 1.6  # ...a quarter of the fleet a cycle at most
    assert sum(after) >= 190  # the doubling too...
    assert max(after) <= 80  # ...spread the same way


def test_a_quiet_services_wandering_peak_is_no_memory_worth_a_write() -> None:
    # 0.2 requests/s on replicas of 5: its held peak reads 0.07-0.33 from one minute to the next
    # (a dozen requests a window); a restart would miss it only if it needed another replica.
    def digest(peak_rps: float) -> tuple[object, ...]:
        forecast = model.ForecastState(level_rps=0.2, last_s=0.0, peaks=((0.0, peak_rps),))
        state = model.PlannerState(
            forecasts={"ns/quiet": forecast}, capacity_rps={"ns/quiet": {"cpu": 5.0}}
        )
        return decide.memory_digest(state, "ns/quiet", tuning.PlannerSettings())

    assert digest(0.07) == digest(0.2) == digest(0.33) == digest(4.9)
    assert digest(5.5) != digest(0.33)


def test_a_too_slow_span_counts_in_the_memory_once_confirmed() -> None:
    cfg = tuning.PlannerSettings()

    def digest(span_s: float | None) -> tuple[object, ...]:
        spans = {} if span_s is None else {"cpu": (0.9, 100.0, 100.0 + span_s)}
        state = model.PlannerState(too_slow={"ns/quiet": spans})
        return decide.memory_digest(state, "ns/quiet", cfg)

    assert digest(None) == digest(0.0) == digest(cfg.too_slow_confirm_s - 15)  # noise
    assert digest(cfg.too_slow_confirm_s) != digest(None)  # excluded from the plan


def test_recommend_mode_buys_no_standby_nodes() -> None:
    pool = POOL.model_copy(update={"standby": v1alpha1.PoolStandby(max_nodes=3)})
    for held, spare in ((False, 3), (True, 0)):  # new to traffic: an acting service gets all 3
        _, nodes = decide.Decider(FakeMetrics(rps=5.0)).decide(
            [decide.ServiceInput(KEY, SPEC, held=held)], {"gpu": pool}, owned(1), 1000.0
        )
        assert nodes["gpu"].standby == spare
        assert nodes["gpu"].nodes == 1 + spare  # the one replica held, and the standby


def test_a_decision_carries_the_capacity_the_planner_used() -> None:
    decisions, _ = decide.Decider(FakeMetrics(rps=5.0)).decide(
        [decide.ServiceInput(KEY, SPEC, held=False)], {"gpu": POOL}, owned(1), 1000.0
    )
    assert decisions[KEY].capacity_rps == {"l4": 10.0}  # the spec's, nothing learned yet
