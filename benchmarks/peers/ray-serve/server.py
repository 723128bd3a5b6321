"""Ray Serve as its documentation recommends for batching: one deployment, one replica, an
`@serve.batch` method (at most 32 texts, 5 ms wait), a local Ray instance on this machine's
cores with the dashboard off. POST /analyze-sentiment {"text": ...}; GET /readyz answers once
the deployment serves (the proxy's own /-/healthz answers before that).

    PEER_MODEL_DIR=... uv run --locked --project benchmarks/peers/ray-serve \\
        python benchmarks/peers/ray-serve/server.py --port 8000"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

# Started under `uv run`, Ray would ship this folder to its workers and run them with
# `uv run` there, where ../common (peer-common) does not exist; this project's environment
# is already the one every worker needs.
os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"

import ray
from peer_common import Classifier
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse


@serve.deployment(num_replicas=1, max_ongoing_requests=1000)
class Sentiment:
    def __init__(self) -> None:
        self.classify = Classifier()

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def analyze(self, texts: list[str]) -> list[dict]:
        return self.classify(texts)

    async def __call__(self, request: Request) -> JSONResponse:
        if request.url.path.rstrip("/").endswith("/readyz"):
            return JSONResponse({"ready": True})
        body = await request.json()
        return JSONResponse(await self.analyze(body["text"]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    ray.init(include_dashboard=False, object_store_memory=200 * 2**20, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    serve.run(Sentiment.bind(), route_prefix="/")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    serve.shutdown()
    ray.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
