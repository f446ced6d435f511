"""High availability: two operator replicas elect one leader through a Lease; only it acts, and
when it is SIGKILLed the other takes over within the lease duration."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from kubernetes import client

from tests.integration import waiting
from tests.integration.manifests import Cluster, service_manifest
from tests.integration.operator_process import OperatorProcess

LEASE_S, RENEW_DEADLINE_S, RETRY_S = 4.0, 3.0, 0.5


def candidate(log: Path, namespace: str, pools: tuple[str, str]) -> OperatorProcess:
    return OperatorProcess(
        log, 1.0,
        "--leader-elect", "--leader-election-namespace", namespace,
        "--lease-duration", str(LEASE_S), "--renew-deadline", str(RENEW_DEADLINE_S),
        "--retry-period", str(RETRY_S),
        namespaces=[namespace], pools=pools,
    )  # fmt: skip


def holder(coordination: client.CoordinationV1Api, namespace: str) -> str:
    try:
        lease = coordination.read_namespaced_lease("infscale-leader", namespace)
    except client.ApiException as error:
        if error.status == 404:
            return ""
        raise
    return str(lease.spec.holder_identity or "")


def writes(process: OperatorProcess) -> list[str]:
    """The log lines where this replica changed a service (infscale logs every write)."""
    return [line for line in process.log().splitlines() if " reconciled: " in line]


@pytest.mark.serial  # the takeover's bound has 1.5 s of slack over the lease timing
def test_only_the_leader_acts_and_the_standby_takes_over(
    api_client: client.ApiClient, namespace: str, pools: tuple[str, str], tmp_path: Path
) -> None:
    cluster = Cluster(api_client, namespace)
    coordination = client.CoordinationV1Api(api_client)
    first = candidate(tmp_path / "first.log", namespace, pools)
    second = candidate(tmp_path / "second.log", namespace, pools)
    first.start()
    try:
        leader_id = waiting.until(
            lambda: holder(coordination, namespace), timeout_s=30, what="a lease holder"
        )
        second.start()
        waiting.until(lambda: "stands by" in second.log(), timeout_s=30, what="a standby")
        cluster.create_service(service_manifest("chat", *pools))
        waiting.until(lambda: cluster.replicas("chat-small") == 1, timeout_s=30, what="1 replica")
        time.sleep(3 * RETRY_S)
        assert holder(coordination, namespace) == leader_id, "the leader must keep its lease"
        assert writes(first), "the leader reconciled the service"
        assert not writes(second), "the standby must not write while the leader lives"

        first.kill()
        killed_at = time.monotonic()
        cluster.patch_service("chat", {"spec": {"replicas": {"fixed": 2}}})
        waiting.until(
            lambda: (h := holder(coordination, namespace)) != leader_id and h,
            timeout_s=LEASE_S + 10, what="a new lease holder",
        )  # fmt: skip
        takeover_s = time.monotonic() - killed_at
        waiting.until(lambda: cluster.replicas("chat-small") == 2, timeout_s=30, what="2 replicas")
        acted_s = time.monotonic() - killed_at
        print(f"takeover after {takeover_s:.1f} s, first write after {acted_s:.1f} s "
              f"(lease {LEASE_S} s, retry {RETRY_S} s)")  # fmt: skip
        assert takeover_s <= LEASE_S + 2 * RETRY_S + 1.0
        assert re.search(r"took over the lease from " + re.escape(leader_id), second.log())
        became = second.log().index("is the leader")
        assert all(second.log().index(line) > became for line in writes(second)), (
            "the standby wrote before it held the lease"
        )
    finally:
        first.kill()
        second.stop()
        print(first.log()[-3000:])
        print(second.log()[-3000:])
