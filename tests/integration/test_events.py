"""Events on the real API server: a condition repeated every cycle is one Event with a count."""

from __future__ import annotations

from kubernetes import client

from infscale.adapters.reporting import KubernetesReporter


def test_a_repeated_event_is_counted_not_posted_again(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str
) -> None:
    config = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="subject"))
    )
    involved = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "subject", "namespace": namespace, "uid": config.metadata.uid},
    }
    reporter = KubernetesReporter(api_client)
    for _ in range(3):
        reporter.record(involved, "Warning", "PoolResized", "pool cpu: cannot delete node n1")
    reporter.record(involved, "Normal", "Scaled", "variant cpu: 1 -> 2 replicas")
    # A restarted operator (nothing remembered) finds the first Event and counts on.
    KubernetesReporter(api_client).record(
        involved, "Warning", "PoolResized", "pool cpu: cannot delete node n1"
    )

    events = core.list_namespaced_event(
        namespace, field_selector="involvedObject.name=subject"
    ).items
    counts = sorted((e.reason, e.count) for e in events)
    assert counts == [("PoolResized", 4), ("Scaled", 1)]
    resized = next(e for e in events if e.reason == "PoolResized")
    assert resized.first_timestamp is not None
    assert resized.last_timestamp is not None
    assert resized.last_timestamp >= resized.first_timestamp
