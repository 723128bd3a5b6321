"""A real Prometheus (the Debian/upstream binary) on 127.0.0.1 with its own configuration and
storage, and a small client for its HTTP API. Used by the live dashboard check and the demo."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from modelserve_dashboards.errors import PrometheusError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape_config(targets: dict[str, list[str]], interval: str = "1s") -> dict:
    """One job per entry: {"predictor": ["127.0.0.1:3000"], ...}."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": addresses}]}
            for job, addresses in targets.items()
        ],
    }


@dataclass
class Client:
    url: str
    timeout_s: float = 10.0

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        try:
            response = httpx.get(f"{self.url}{path}", params=params, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"{self.url} unreachable: {exc}") from None
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(
                f"{body.get('errorType', response.status_code)}: "
                f"{body.get('error', response.text[:200])}"
            )
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        return self._get("/api/v1/query", params)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        params = {"query": expr, "start": start, "end": end, "step": step}
        return self._get("/api/v1/query_range", params)["result"]

    def label_values(self, label: str, match: str, start: float, end: float) -> list[str]:
        params = {"match[]": match, "start": start, "end": end}
        return self._get(f"/api/v1/label/{label}/values", params)


@dataclass
class PrometheusServer:
    client: Client
    process: subprocess.Popen
    folder: Path
    log: Any = None  # the log file handle, closed on stop

    @property
    def url(self) -> str:
        return self.client.url

    @classmethod
    def start(
        cls,
        folder: Path,
        targets: dict[str, list[str]],
        scrape_interval: str = "1s",
        binary: str = "prometheus",
        timeout_s: float = 60.0,
    ) -> PrometheusServer:
        executable = shutil.which(binary)
        if executable is None:
            raise PrometheusError(f"{binary} not found: install it (apt-get install prometheus)")
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "prometheus.yml"
        config.write_text(yaml.safe_dump(scrape_config(targets, scrape_interval)))
        port = free_port()
        log = open(folder / "prometheus.log", "wb")  # noqa: SIM115 - kept for the process
        process = subprocess.Popen(
            [
                executable,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = cls(Client(f"http://127.0.0.1:{port}"), process, folder, log)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log.close()
                raise PrometheusError(
                    f"prometheus exited: {(folder / 'prometheus.log').read_text()[-1500:]}"
                )
            try:
                if httpx.get(f"{server.url}/-/ready", timeout=1).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        server.stop()
        raise PrometheusError(f"prometheus not ready in {timeout_s:g} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.log is not None:
            self.log.close()
