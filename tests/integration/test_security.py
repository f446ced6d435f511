"""Security gates on the real cluster: Prometheus credentials never reach logs, status or
Events, even at debug level and when every query fails."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from kubernetes import client

from tests.integration import waiting
from tests.integration.manifests import Cluster, service_manifest
from tests.integration.operator_process import OperatorProcess

TOKEN = "tok-3f9c1a7e-do-not-log"  # noqa: S105 (a marker to search for, not a credential)
PASSWORD = "pw-8d2b6c44-do-not-log"  # noqa: S105


def refused_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens: every query fails


def test_prometheus_credentials_never_leak(
    api_client: client.ApiClient,
    namespace: str,
    pools: tuple[str, str],
    prometheus_url: str,
    tmp_path: Path,
) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "auth").write_text(f"infscale:{PASSWORD}\n")
    cluster = Cluster(api_client, namespace)
    cluster.create_service(service_manifest("chat", *pools))

    def run_operator(url: str, log: Path, expected: str, in_log: str) -> str:
        operator = OperatorProcess(
            log, 1.0, "--verbose", "--prometheus-url", url,
            "--prometheus-token-file", str(tmp_path / "token"),
            "--prometheus-basic-auth-file", str(tmp_path / "auth"),
            namespaces=[namespace], pools=pools,
        )  # fmt: skip
        operator.start()
        try:
            waiting.until(
                lambda: (cluster.condition("chat", "MetricsAvailable") or {}).get("status")
                == expected,
                timeout_s=60, what=f"MetricsAvailable={expected}",
            )  # fmt: skip
            waiting.until(lambda: in_log in operator.log(), timeout_s=30, what=repr(in_log))
            time.sleep(3)  # a few more cycles of logging
        finally:
            operator.stop()
        return operator.log()

    # Once against a Prometheus that answers (no series yet: MetricsAvailable=False), once
    # against one that refuses every connection, with the credentials in its URL too.
    refused = refused_url().replace("http://", f"http://infscale:{PASSWORD}@")
    logs = [
        run_operator(prometheus_url, tmp_path / "answering.log", "False", "reconciled"),
        run_operator(refused, tmp_path / "refused.log", "False", "Prometheus query for"),
    ]
    status = json.dumps(cluster.service("chat").get("status"))
    events = json.dumps([e.message for e in cluster.core.list_namespaced_event(namespace).items])
    for where, text in (("log", "\n".join(logs)), ("status", status), ("events", events)):
        for secret in (TOKEN, PASSWORD):
            assert secret not in text, f"a Prometheus credential appears in the {where}"
