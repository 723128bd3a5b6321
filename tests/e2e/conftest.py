"""A real predictor over real HTTP on 127.0.0.1: tiny models exported into a temporary
registry, `predictor serve` started as users start it, always stopped afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import yaml

from modelserve_runtime.manifest import Variant
from tests.conftest import free_port
from tests.model_registry.conftest import make_classifier

VARIANTS = [Variant.ONNX_FP32, Variant.ONNX_INT8]


def make_big_classifier(folder: Path) -> Path:
    """Large enough (a few ms per long text) for queues to build under concurrent load."""
    return make_classifier(
        folder,
        seed=3,
        hidden_size=256,
        num_hidden_layers=4,
        intermediate_size=1024,
        max_position_embeddings=512,
    )


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path
    grpc_address: str = ""

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, follow_redirects=True, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(self.url + path, timeout=30, **kwargs)


def start_server(
    tmp: Path,
    config: dict,
    env_extra: dict[str, str] | None = None,
    timeout_s: float = 240,
    program: Path | None = None,
) -> Server:
    """`predictor serve` (this environment's, or `program`) with `config` as its YAML."""
    port = free_port()
    config = {"grpc_port": free_port(), **config, "port": port, "host": "127.0.0.1"}
    config_file = tmp / "predictor.yaml"
    config_file.write_text(yaml.safe_dump(config))
    log = tmp / "server.log"
    env = {
        **os.environ,
        "PREDICTOR_CONFIG_FILE": str(config_file),
        "REGISTRY_CACHE_DIR": str(tmp / "cache"),
        **(env_extra or {}),
    }
    predictor = program or Path(sys.executable).parent / "predictor"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [str(predictor), "serve", "--ready-timeout", str(timeout_s)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log, f"127.0.0.1:{config['grpc_port']}")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"predictor exited early:\n{log.read_text()[-3000:]}")
        try:
            if server.get("/readyz").status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_server(server)
    raise RuntimeError(f"predictor not ready in {timeout_s} s:\n{log.read_text()[-3000:]}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)


def worker_pids(server: Server) -> set[int]:
    """The server's live worker processes (a killed one shows as a zombie until reaped)."""
    found = set()
    for child in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "--worker-id" in " ".join(
                child.cmdline()
            ):
                found.add(child.pid)
        except psutil.Error:  # exited between listing and reading
            continue
    return found
