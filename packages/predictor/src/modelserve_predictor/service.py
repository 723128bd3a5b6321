"""The BentoML service: a thin adapter over core.Predictor.

Served with `uv run predictor serve` (which resolves settings, bootstraps and pre-pulls the
models, then starts `bentoml serve modelserve_predictor.service:Predictor`). Each worker
finds its line in the placement plan by bentoml.server_context.worker_index (1-based), pins
its GPUs through CUDA_VISIBLE_DEVICES before any CUDA context exists, then loads its models."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import bentoml
import grpc
from starlette.types import ASGIApp

from modelserve_predictor import connections, core, grpc_server
from modelserve_predictor.dataplane import DataPlane
from modelserve_predictor.fastroutes import FastRoutes, HotPath
from modelserve_predictor.http import (
    GuardMiddleware,
    JsonErrorsMiddleware,
    answer,
    build_placement_app,
    early_refusal,
    quiet_client_errors,
)
from modelserve_predictor.loadboard import LoadBoard
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
# before BentoML's worker builds its uvicorn server: header timeout, JSON parse errors
connections.install(SETTINGS.header_timeout_s)
quiet_client_errors()
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
    tracing={
        "excluded_urls": [
            "/analyze-sentiment",
            "/embed",
            "/v2/models/[^/]+(/versions/[^/]+)?/infer",
        ]
    },
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
        self.board: LoadBoard | None = None
        if SETTINGS.rebalance and SETTINGS.control_dir and len(PLANS) > 1:
            # before the (long) load: siblings see this worker as not serving meanwhile
            self.board = LoadBoard(SETTINGS.control_dir / "load", index, len(PLANS))
        predictor.load()
        self.plane = DataPlane(predictor)
        self.grpc: grpc.aio.Server | None = None
        self._grpc_stopping: asyncio.Task | None = None
        _current = self.plane
        connections.shed_early = early_refusal(self.plane, TOKENS)
        if (board := self.board) is not None:
            connections.hand_off = lambda: board.hand_off(predictor.wait_ahead_s())

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
        if self.board is not None:
            self.board.keep_published(self.plane.predictor.wait_ahead_s)
        self._drain_on_stop_signals()

    def _drain_on_stop_signals(self) -> None:
        """uvicorn, which owns SIGTERM/SIGINT here, stops taking HTTP requests and lets the
        admitted ones finish (for `drain_s`); at the same signal this worker also turns not
        ready and stops taking gRPC calls, letting the admitted ones finish alike."""
        loop = asyncio.get_running_loop()

        def begin_drain() -> None:
            self.plane.predictor.draining = True
            if self.grpc is not None and self._grpc_stopping is None:
                self._grpc_stopping = loop.create_task(self.grpc.stop(grace=SETTINGS.drain_s))

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)

            def handler(number: int, frame: object, previous: object = previous) -> None:
                loop.call_soon_threadsafe(begin_drain)
                if callable(previous):
                    previous(number, frame)

            signal.signal(signum, handler)

    @bentoml.on_shutdown
    async def _close(self) -> None:
        if self.board is not None:
            self.board.close()
        if self._grpc_stopping is not None:
            await self._grpc_stopping
        elif self.grpc is not None:
            await self.grpc.stop(grace=SETTINGS.drain_s)
        await self.plane.predictor.close()

    async def __is_ready__(self) -> bool:
        return self.plane.ready

    async def __is_alive__(self) -> bool:
        """False once a wanted model has failed to load for `load_give_up_s`."""
        return not self.plane.predictor.given_up()

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


GUARD_LIMITS = {
    "max_body_bytes": SETTINGS.max_request_bytes,
    "tokens": TOKENS,
    "body_timeout_s": SETTINGS.body_timeout_s,
}
Predictor.add_asgi_middleware(GuardMiddleware, **GUARD_LIMITS)
# the hot routes skip BentoML's router and IO round trip, validated by BentoML's own models
HOT_ROUTES = {
    "/analyze-sentiment": (Predictor.apis["analyze_sentiment"].input_spec, DataPlane.analyze),
    "/embed": (Predictor.apis["embed"].input_spec, DataPlane.embed),
}
Predictor.add_asgi_middleware(FastRoutes, routes=HOT_ROUTES, plane=current)
if SETTINGS.hot_path:  # and, from uvicorn's protocol, most of BentoML's middleware too

    def guarded(app: ASGIApp) -> ASGIApp:
        return GuardMiddleware(app, **GUARD_LIMITS)

    connections.hot_route = HotPath(HOT_ROUTES, current, guarded)
Predictor.add_asgi_middleware(JsonErrorsMiddleware)
