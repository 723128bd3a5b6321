"""Memory of a serving worker: start `predictor serve` from a checkout (1 worker, the two real
models in onnx-int8, from the configured registry), send 100 requests to each, then read the
worker's resident set from /proc and whether libtorch is mapped into it.

    uv run python -m benchmarks.worker_rss [CHECKOUT ...]   # default: this checkout

Give an older checkout (a `git worktree` with its own `uv sync`) to compare before/after."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import psutil

MODELS = "sentiment-minilm@production=onnx-int8,minilm-embed@production=onnx-int8"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(checkout: Path, timeout_s: float = 600) -> dict:
    port = _free_port()
    env = {
        **os.environ,
        "PREDICTOR_WORKERS": "1",
        "PREDICTOR_MODELS": MODELS,
        "PREDICTOR_PORT": str(port),
    }
    env.pop("VIRTUAL_ENV", None)
    started = time.monotonic()
    server = subprocess.Popen(
        [str(checkout / ".venv" / "bin" / "predictor"), "serve"],
        env=env,
        cwd=checkout,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if time.monotonic() - started > timeout_s or server.poll() is not None:
                raise SystemExit(f"{checkout}: predictor not ready in {timeout_s:.0f} s")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        ready_s = time.monotonic() - started
        with httpx.Client(timeout=10) as client:
            for i in range(100):
                client.post(f"{url}/analyze-sentiment", json={"texts": [f"text {i} is fine"] * 4})
                client.post(f"{url}/embed", json={"text": f"text {i}"})
        workers = [
            p
            for p in psutil.Process(server.pid).children(recursive=True)
            if "worker" in " ".join(p.cmdline())
        ]
        return {
            "checkout": str(checkout),
            "ready_s": round(ready_s, 1),
            "workers": [
                {
                    "rss_mb": round(p.memory_info().rss / 2**20),
                    "libtorch_mapped": any("libtorch" in m.path for m in p.memory_maps()),
                }
                for p in workers
            ],
        }
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="*", type=Path, default=[Path.cwd()])
    args = parser.parse_args()
    for checkout in args.checkouts:
        print(json.dumps(measure(checkout.resolve())))


if __name__ == "__main__":
    main()
