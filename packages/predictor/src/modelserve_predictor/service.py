"""The BentoML service: a thin adapter over core.Predictor.

Served with `uv run predictor serve` (which resolves settings, bootstraps and pre-pulls the
models, then starts `bentoml serve modelserve_predictor.service:Predictor`). Each worker
finds its line in the placement plan by bentoml.server_context.worker_index (1-based), pins
its GPUs through CUDA_VISIBLE_DEVICES before any CUDA context exists, then loads its models."""

from __future__ import annotations

import os

import bentoml

from modelserve_predictor import core
from modelserve_predictor.http import (
    GuardMiddleware,
    answer,
    build_oip_app,
    build_placement_app,
)
from modelserve_predictor.metrics import Metrics
from modelserve_predictor.plan import worker_plans
from modelserve_predictor.schemas import EmbedResponse, SentimentResponse
from modelserve_predictor.settings import load_settings

SETTINGS = load_settings()
PLANS = worker_plans(SETTINGS)
_current: core.Predictor | None = None


def current() -> core.Predictor | None:
    return _current


def _pin_gpus(visible: str | None) -> None:
    """Restrict this worker to its GPUs, translating through any inherited restriction."""
    if visible is None:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # CPU worker: never touch a GPU
        return
    inherited = os.environ.get("PREDICTOR_PARENT_CUDA_VISIBLE_DEVICES", "")
    physical = [p for p in inherited.split(",") if p.strip()] if inherited else None
    ids = [physical[int(i)] if physical else i for i in visible.split(",")]
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids)


@bentoml.asgi_app(build_oip_app(current), path="/v2", name="open-inference-protocol")
@bentoml.asgi_app(build_placement_app(current), path="/placement", name="placement")
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
        predictor = core.Predictor(SETTINGS, plan, Metrics.create())
        predictor.load()
        self.predictor = predictor
        _current = predictor

    @bentoml.on_startup
    async def _warm_up(self) -> None:
        await self.predictor.warm_up()

    @bentoml.on_shutdown
    async def _close(self) -> None:
        await self.predictor.close()

    async def __is_ready__(self) -> bool:
        return self.predictor.ready

    @bentoml.api(route="/analyze-sentiment")
    async def analyze_sentiment(
        self, text: str | None = None, texts: list[str] | None = None, model: str | None = None
    ) -> SentimentResponse:
        """Sentiment of one text (`text`) or several (`texts`): label and per-class scores."""
        return await answer(self.predictor.analyze(text, texts, model))  # type: ignore[return-value]

    @bentoml.api(route="/embed")
    async def embed(
        self, text: str | None = None, texts: list[str] | None = None, model: str | None = None
    ) -> EmbedResponse:
        """Sentence embeddings (L2-normalised) of one text or several."""
        return await answer(self.predictor.embed(text, texts, model))  # type: ignore[return-value]


Predictor.add_asgi_middleware(
    GuardMiddleware,
    max_body_bytes=SETTINGS.max_request_bytes,
    tokens=frozenset(SETTINGS.tokens()),
)
