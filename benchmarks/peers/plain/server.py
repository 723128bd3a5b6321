"""The thinnest server we could write: one uvicorn process (uvloop, httptools, no access
log), Starlette routing, the model called right in the async handler (no thread hop, no
batching: one text runs at a time, ONNX Runtime using every core for it).

    PEER_MODEL_DIR=... uv run --project benchmarks/peers/plain \
        python benchmarks/peers/plain/server.py --port 8000"""

from __future__ import annotations

import argparse

import uvicorn
from peer_common import Classifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

classify = Classifier()


async def analyze(request: Request) -> Response:
    try:
        body = await request.json()
        texts = body["texts"] if "texts" in body else [body["text"]]
        if not (isinstance(texts, list) and texts and all(isinstance(t, str) for t in texts)):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": "send {'text': str} or {'texts': [str]}"}, status_code=400)
    return JSONResponse({"results": classify(texts)})


async def ready(_: Request) -> Response:
    return JSONResponse({"ready": True})


app = Starlette(
    routes=[Route("/analyze-sentiment", analyze, methods=["POST"]), Route("/readyz", ready)]
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
