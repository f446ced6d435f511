"""Run the real operator (`infscale operator`) as a subprocess against the test cluster."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


RUNNING: list[OperatorProcess] = []


class OperatorProcess:
    """One operator process; its log goes to a file the tests print on failure.

    It manages only the services of `namespaces` and sizes only the nodes of `pools`
    (`--namespace`, `--pool`): tests run in parallel, and an operator acting on every namespace
    and pool would fight the other tests' operators.
    """

    def __init__(
        self,
        log_path: Path,
        interval_s: float = 1.0,
        *extra_args: str,
        namespaces: Sequence[str],
        pools: Sequence[str],
    ) -> None:
        if not namespaces or not pools:
            raise ValueError("an operator under test needs its namespaces and pools")
        self.log_path = log_path
        self.interval_s = interval_s
        scope = [f"--namespace={n}" for n in namespaces] + [f"--pool={p}" for p in pools]
        self.extra_args = (*scope, *extra_args)
        self.metrics_url = ""
        self.env: dict[str, str] = {}
        """Extra environment, e.g. a KUBECONFIG with other credentials."""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "infscale.cli.main",
                "operator",
                "--interval",
                str(self.interval_s),
                *self.extra_args,
            ],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "operator"), **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        RUNNING.append(self)

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def compressed_operator(
    log_dir: Path,
    prometheus_url: str,
    namespace: str,
    pools: Sequence[str],
    interval_s: float = 2.0,
    *extra_args: str,
) -> OperatorProcess:
    """The end-to-end tests' operator on compressed time (a 10 s rate window, a 5 s node
    cool-down) reading `prometheus_url`, for one namespace and its pools; log in `log_dir`."""
    return OperatorProcess(
        log_dir / "operator.log", interval_s,
        "--prometheus-url", prometheus_url, "--rate-window", "10", "--node-cooldown", "5",
        *extra_args, namespaces=[namespace], pools=pools,
    )  # fmt: skip


def start_emulator(
    log_path: Path, *args: str, namespaces: Sequence[str]
) -> subprocess.Popen[bytes]:
    """The model-server EMULATOR (`infscale emulator ARGS`) as a subprocess, its output in
    ``log_path``; the caller terminates it. It serves only the services of `namespaces`
    (`--namespace`), so concurrent tests' emulators do not feed each other's services."""
    if not namespaces:
        raise ValueError("an emulator under test needs its namespaces")
    scope = [f"--namespace={n}" for n in namespaces]
    return subprocess.Popen(
        [sys.executable, "-m", "infscale.cli.main", "emulator", *scope, *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "operator")},
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )


def emulator_totals(targets_file: Path, namespace: str, service: str) -> dict[str, Any]:
    """The emulator's ground truth for one service since it started: requests arrived,
    completed, and completed within the SLO threshold (or a batch service's deadline)."""
    address = json.loads(targets_file.read_text())[0]["targets"][0]
    with urllib.request.urlopen(f"http://{address}/truth?window=10") as response:
        truth: dict[str, Any] = json.loads(response.read())
    return dict(truth[f"{namespace}/{service}"]["totals"])


def stop_emulator(process: subprocess.Popen[bytes] | None) -> None:
    """Stop an emulator from :func:`start_emulator`, if one was started."""
    if process is not None:
        process.terminate()
        process.wait(timeout=15)


def free_port() -> int:
    """A local TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
