"""Several services on one simulated cluster (engine.Group), batch jobs and KEDA on a job queue."""

from __future__ import annotations

from infscale.domain import model
from infscale.sim import autoscaler, economics, engine, policies, scenario, tracegen


def _economics() -> scenario.SharedScenario:
    return scenario.load_shared("economics")


def test_a_group_of_one_replays_as_the_service_alone() -> None:
    scen = scenario.load("spot")
    trace = scen.workload(tracegen.generate(1002, 4.0, 900.0), 1002)

    def lane(cluster: engine.Cluster | None = None) -> engine.Simulator:
        hpa = policies.Hpa(scen.domain_service(), "l4", 7.0)
        return engine.Simulator(trace, scen, hpa, seed=3, initial={"l4": 2},
                                initial_nodes={"l4": 2}, cluster=cluster)  # fmt: skip

    alone = lane()
    alone.node_manager = autoscaler.ClusterAutoscaler()
    expected = alone.run()
    cluster = engine.Cluster.of(scen, 3)
    grouped = engine.Group(cluster, [lane(cluster)], node_manager=autoscaler.ClusterAutoscaler())
    got = grouped.run()
    only = got.services["bench/spot"]
    assert (only.cost_usd, only.slo_attainment, only.scale_events) == (
        expected.cost_usd,
        expected.slo_attainment,
        expected.scale_events,
    )
    assert got.cost_usd == expected.cost_usd


def test_batch_jobs_are_seeded_and_leave_room_for_their_deadlines() -> None:
    jobs = tracegen.batch_jobs(5, 7200.0, 6.0, (1000, 4000), (60.0, 600.0), last_s=4800.0)
    again = tracegen.batch_jobs(5, 7200.0, 6.0, (1000, 4000), (60.0, 600.0), last_s=4800.0)
    assert (jobs.arrivals_s == again.arrivals_s).all()
    assert jobs.arrivals_s.size > 0
    assert jobs.arrivals_s.max() < 4800.0 + 600.0  # the last job starts before last_s


def _short_jobs() -> scenario.SharedScenario:
    """The economics scenario with jobs of 3,000-6,000 requests (4 rps a replica), about a dozen
    an hour, deadline 30 min: some fit in an hour's replay."""
    shared = _economics()
    jobs = scenario.BatchJobs(per_hour=12, requests=(3000, 6000), submit_s=(60.0, 300.0))
    chat, index = shared.services
    return shared.model_copy(update={"services": [chat, index.model_copy(update={"jobs": jobs})]})


CASE = tracegen.Case(1001, "validation", "economics", 3600.0, 3.0)


def test_infscale_drains_batch_jobs_in_time_beside_an_interactive_service() -> None:
    # Beside the chat service; spot nodes reclaimed as the scenario says.
    record = economics.replay(_short_jobs(), CASE, "infscale", 1.0)
    assert record.batch_requests > 3000
    assert record.batch_attainment >= 0.999
    assert record.interactive_requests > 0


def test_the_cluster_autoscaler_serves_both_services_pending_pods() -> None:
    # HPA on chat (on demand) and KEDA on the batch queue (pinned to spot) share one cluster
    # under one Cluster Autoscaler: every batch request is done in time, and the same
    # autoscalers with the batch Deployment on demand pay more.
    record = economics.replay(_short_jobs(), CASE, "hpa+keda-spot", 1.0)
    assert record.batch_requests > 3000
    assert record.batch_attainment >= 0.999
    on_demand = economics.replay(_short_jobs(), CASE, "hpa+keda", 1.0)
    assert on_demand.interruptions == 0
    assert record.cost_usd < on_demand.cost_usd  # the same autoscalers: spot bills less


def test_keda_on_a_job_queue_activates_from_zero_and_cools_down_to_it() -> None:
    shared = _economics()
    batch_scen = shared.lanes()[1]
    service = batch_scen.domain_service()
    keda = policies.Keda(service, "l4-spot", 100.0, to_zero=True)

    def view(now_s: float, waiting: int, desired: int) -> engine.View:
        return engine.View(now_s, model.Observation(), waiting, 0, [], {"l4-spot": desired},
                           {"l4-spot": desired}, 0, {})  # fmt: skip

    assert keda.decide(view(0.0, 0, 0)).replicas == {"l4-spot": 0}
    assert keda.decide(view(15.0, 500, 0)).replicas == {"l4-spot": 0}  # next poll at 30 s
    assert keda.decide(view(30.0, 500, 0)).replicas == {"l4-spot": 1}  # activation
    assert keda.decide(view(45.0, 500, 1)).replicas == {"l4-spot": 5}  # the HPA: 500 / 100
    assert keda.decide(view(60.0, 0, 2)).replicas == {"l4-spot": 2}  # cooldown: 300 s
    assert keda.decide(view(345.0, 0, 2)).replicas == {"l4-spot": 0}
