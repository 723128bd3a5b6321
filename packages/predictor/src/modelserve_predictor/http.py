"""HTTP pieces that do not depend on BentoML: the error-to-JSON mapping, an ASGI middleware
for request size limits and bearer tokens, and the Starlette app serving the Open Inference
Protocol (v2) and the placement endpoint."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelserve_predictor.core import Predictor
from modelserve_predictor.errors import (
    BadRequest,
    PayloadTooLarge,
    PredictorError,
    Unauthorized,
    UnsupportedMediaType,
)
from modelserve_predictor.process import process_view

INFERENCE_PREFIXES = ("/analyze-sentiment", "/embed", "/v2/models/")
JSON_TYPES = {"application/json", ""}


def error_response(error: PredictorError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.http_status, headers=error.headers())


async def answer(work: Awaitable[dict[str, Any]]) -> Response:
    try:
        return JSONResponse(await work)
    except PredictorError as error:
        return error_response(error)


def is_inference(path: str) -> bool:
    return path.startswith(INFERENCE_PREFIXES) and (
        not path.startswith("/v2/models/") or path.endswith("/infer")
    )


class GuardMiddleware:
    """Refuses non-JSON inference bodies (415), oversized bodies (413, also for chunked
    uploads) and, when tokens are set,
    inference requests without a valid bearer token (401). Health, metrics and docs stay open
    for probes and scrapers."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, tokens: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.tokens and is_inference(scope["path"]) and not self._authorized(headers):
            await error_response(Unauthorized("missing or invalid bearer token"))(
                scope, receive, send
            )
            return
        media_type = headers.get("content-type", "application/json").split(";")[0].strip()
        if (
            is_inference(scope["path"])
            and scope["method"] == "POST"
            and media_type not in JSON_TYPES
        ):
            refusal = UnsupportedMediaType(f"send JSON (application/json), not {media_type!r}")
            await error_response(refusal)(scope, receive, send)
            return
        declared = headers.get("content-length", "")
        if declared.isdigit():
            if int(declared) > self.max_body_bytes:
                await error_response(self._too_large())(scope, receive, send)
                return
            await self.app(scope, receive, send)  # size known and fine: no wrapping needed
            return
        seen = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                started = True
                await error_response(self._too_large())(scope, receive, send)
                return
            if not too_large:
                started = started or message["type"] == "http.response.start"
                await send(message)

        await self.app(scope, limited_receive, tracking_send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body over {self.max_body_bytes} bytes")

    def _authorized(self, headers: dict[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        return any(hmac.compare_digest(token.strip(), known) for known in self.tokens)


PredictorGetter = Callable[[], Predictor | None]


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None


def build_oip_app(get_predictor: PredictorGetter) -> Starlette:
    """Routes relative to the /v2 mount point."""

    def predictor() -> Predictor:
        current = get_predictor()
        if current is None:
            from modelserve_predictor.errors import NotReady

            raise NotReady("the predictor is still starting")
        return current

    async def live(_: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(_: Request) -> Response:
        current = get_predictor()
        is_ready = bool(current and current.ready)
        return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)

    async def server_metadata(_: Request) -> Response:
        return JSONResponse(
            {"name": "modelserve-predictor", "version": "0.1.0", "extensions": ["placement"]}
        )

    async def model_metadata(request: Request) -> Response:
        async def work() -> dict[str, Any]:
            return predictor().oip_metadata(request.path_params["name"])

        return await answer(work())

    async def model_ready(request: Request) -> Response:
        try:
            current = predictor()
            current.oip_metadata(request.path_params["name"])  # 404 for unknown models
        except PredictorError as error:
            return error_response(error)
        model = current.models[request.path_params["name"]]
        return JSONResponse(
            {"name": model.name, "ready": model.ready}, status_code=200 if model.ready else 503
        )

    async def infer(request: Request) -> Response:
        async def work() -> dict[str, Any]:
            body = await _json_body(request)
            return await predictor().oip_infer(
                request.path_params["name"], body, request.path_params.get("version")
            )

        return await answer(work())

    return Starlette(
        routes=[
            Route("/health/live", live),
            Route("/health/ready", ready),
            Route("/", server_metadata),
            Route("/models/{name}", model_metadata),
            Route("/models/{name}/ready", model_ready),
            Route("/models/{name}/versions/{version}", model_metadata),
            Route("/models/{name}/versions/{version}/ready", model_ready),
            Route("/models/{name}/infer", infer, methods=["POST"]),
            Route("/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
        ]
    )


def placement_view(predictor: Predictor | None) -> dict[str, Any]:
    if predictor is None:
        return {"ready": False, "models": []}
    plan = predictor.plan
    return {
        "worker": plan.worker_index,
        "device": str(plan.device),
        "threads": plan.threads,
        "cuda_visible_devices": plan.cuda_visible_devices,
        "ready": predictor.ready,
        "process": process_view(),
        "models": [
            {
                "model": m.name,
                "device": str(m.device),
                "ready": m.ready,
                "error": m.error,
                "version": m.manifest.version if m.manifest else None,
                "variant": m.variant.value if m.text_model else None,
                "providers": m.text_model.runner.providers if m.text_model else [],
                "load_seconds": round(m.load_seconds, 3),
            }
            for m in predictor.models.values()
        ],
    }


def build_placement_app(get_predictor: PredictorGetter) -> Starlette:
    async def view(_: Request) -> Response:
        return JSONResponse(placement_view(get_predictor()))

    return Starlette(routes=[Route("/", view)])
