"""A Prometheus of one test's own (the real binary from the tool cache), so the test can stop,
hang and restart it without touching the shared one."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

from tests.integration import waiting


class PrometheusProcess:
    """Scrapes every file_sd target written into `targets_dir` each second."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.targets_dir = workdir / "targets"
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        (workdir / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "- job_name: file-targets\n"
            "  file_sd_configs:\n"
            f"  - files: ['{self.targets_dir}/*.json']\n"
            "    refresh_interval: 1s\n"
        )

    def start(self) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is not on PATH: source the cluster's env file"
        log = (self.workdir / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [binary, f"--config.file={self.workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        waiting.until(self.ready, timeout_s=60, what=f"Prometheus on {self.url}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def pause(self) -> None:
        """SIGSTOP: connections are accepted but never answered, as a hung server."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.terminate()
            self.process.wait(timeout=30)
