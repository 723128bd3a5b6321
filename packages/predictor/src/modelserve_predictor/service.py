"""The BentoML service: a thin adapter over core.Predictor.

Served with `uv run predictor serve` (which resolves settings, bootstraps and pre-pulls the
models, then starts `bentoml serve modelserve_predictor.service:Predictor`). Each worker
finds its line in the placement plan by bentoml.server_context.worker_index (1-based), pins
its GPUs through CUDA_VISIBLE_DEVICES before any CUDA context exists, then loads its models."""

from __future__ import annotations

import logging
import os

import bentoml
import grpc

from modelserve_predictor import core, grpc_server
from modelserve_predictor.dataplane import DataPlane
from modelserve_predictor.http import (
    GuardMiddleware,
    JsonErrorsMiddleware,
    answer,
    build_placement_app,
)
from modelserve_predictor.metrics import Metrics, forget_dead_workers
from modelserve_predictor.plan import worker_plans
from modelserve_predictor.rest import build_oip_app
from modelserve_predictor.schemas import EmbedResponse, SentimentResponse
from modelserve_predictor.settings import load_settings

# Our lifecycle lines (a version switched, a load refused) at INFO, through BentoML's handlers.
logging.getLogger("modelserve.predictor").setLevel(logging.INFO)
SETTINGS = load_settings()
PLANS = worker_plans(SETTINGS)
TOKENS = frozenset(SETTINGS.tokens())
_current: DataPlane | None = None


def current() -> DataPlane | None:
    return _current


def current_predictor() -> core.Predictor | None:
    return _current.predictor if _current else None


def _pin_gpus(visible: str | None) -> None:
    """Restrict this worker to its GPUs, translating through any inherited restriction."""
    if visible is None:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # CPU worker: never touch a GPU
        return
    inherited = os.environ.get("PREDICTOR_PARENT_CUDA_VISIBLE_DEVICES", "")
    physical = [p for p in inherited.split(",") if p.strip()] if inherited else None
    ids = [physical[int(i)] if physical else i for i in visible.split(",")]
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids)


@bentoml.asgi_app(
    build_oip_app(current, SETTINGS.max_request_bytes), path="/v2", name="open-inference-protocol"
)
@bentoml.asgi_app(build_placement_app(current_predictor), path="/placement", name="placement")
@bentoml.service(
    name="predictor",
    workers=len(PLANS),
    traffic={"timeout": SETTINGS.request_timeout_s},
    metrics={"enabled": True, "namespace": "bentoml_service"},
    logging={"access": {"enabled": SETTINGS.access_log}},
)
class Predictor:
    def __init__(self) -> None:
        global _current
        index = bentoml.server_context.worker_index or 1
        plan = PLANS[index - 1]
        _pin_gpus(plan.cuda_visible_devices)
        forget_dead_workers()  # a replaced worker's live gauges go with it
        self.metrics = Metrics.create()
        self.metrics.worker_starts_total.labels(worker=str(index)).inc()
        predictor = core.Predictor(SETTINGS, plan, self.metrics, workers=len(PLANS))
        predictor.load()
        self.plane = DataPlane(predictor)
        self.grpc: grpc.aio.Server | None = None
        _current = self.plane

    @bentoml.on_startup
    async def _start(self) -> None:
        if SETTINGS.grpc_port:
            self.grpc = await grpc_server.start(
                current,
                SETTINGS.host,
                SETTINGS.grpc_port,
                TOKENS,
                SETTINGS.max_request_bytes,
                self.metrics,
            )
        await self.plane.predictor.warm_up()

    @bentoml.on_shutdown
    async def _close(self) -> None:
        if self.grpc is not None:
            await self.grpc.stop(grace=5)
        await self.plane.predictor.close()

    async def __is_ready__(self) -> bool:
        return self.plane.ready

    @bentoml.api(route="/analyze-sentiment")
    async def analyze_sentiment(
        self, text: str | None = None, texts: list[str] | None = None, model: str | None = None
    ) -> SentimentResponse:
        """Sentiment of one text (`text`) or several (`texts`): label and per-class scores."""
        return await answer(self.plane.analyze(text, texts, model))  # type: ignore[return-value]

    @bentoml.api(route="/embed")
    async def embed(
        self, text: str | None = None, texts: list[str] | None = None, model: str | None = None
    ) -> EmbedResponse:
        """Sentence embeddings (L2-normalised) of one text or several."""
        return await answer(self.plane.embed(text, texts, model))  # type: ignore[return-value]


Predictor.add_asgi_middleware(
    GuardMiddleware,
    max_body_bytes=SETTINGS.max_request_bytes,
    tokens=TOKENS,
    body_timeout_s=SETTINGS.body_timeout_s,
)
Predictor.add_asgi_middleware(JsonErrorsMiddleware)
