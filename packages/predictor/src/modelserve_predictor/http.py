"""HTTP pieces shared by every route: the error-to-JSON mapping, an ASGI middleware for media
types, request size limits and bearer tokens, and the placement endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelserve_predictor.core import Predictor
from modelserve_predictor.dataplane import DataPlane
from modelserve_predictor.errors import (
    PayloadTooLarge,
    PredictorError,
    RequestTimeout,
    Unauthorized,
    UnsupportedMediaType,
)
from modelserve_predictor.lifecycle import ModelSlot
from modelserve_predictor.process import process_view

INFERENCE_PREFIXES = ("/analyze-sentiment", "/embed", "/v2/models/", "/v2/repository/")
JSON_TYPES = {"application/json", ""}
# Triton's binary tensor extension: a JSON header then raw tensors, in one body.
BINARY_TYPES = {"application/octet-stream", "application/vnd.triton.binary"}
CLIENT_GONE = "the client disconnected"  # the cancel message that says the cancel is ours


def error_response(error: PredictorError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.http_status, headers=error.headers())


async def answer(work: Awaitable[dict[str, Any]]) -> Response:
    try:
        return JSONResponse(await work)
    except PredictorError as error:
        return error_response(error)


def media_type(content_type: str) -> str:
    """`Application/JSON; charset=utf-8` -> `application/json` (media types ignore case)."""
    return content_type.split(";")[0].strip().lower()


def is_inference(path: str) -> bool:
    """Routes that run models or change them: these need the token; health, metadata,
    metrics and docs stay open for probes and scrapers."""
    return path.startswith(INFERENCE_PREFIXES) and (
        not path.startswith("/v2/models/") or path.endswith("/infer")
    )


class GuardMiddleware:
    """Refuses inference bodies that are neither JSON nor Triton's binary format (415),
    oversized bodies (413, also for chunked uploads) and, when tokens are set, inference and
    repository requests without a valid bearer token (401). Serves `GET /v2` itself as
    `/v2/` (Starlette would answer the bare mount point with a redirect that Triton's client
    does not follow)."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        tokens: frozenset[str] = frozenset(),
        body_timeout_s: float = 10.0,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.tokens = tokens
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/v2":
            scope = {**scope, "path": "/v2/", "raw_path": b"/v2/"}
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.tokens and is_inference(scope["path"]) and not self._authorized(headers):
            await error_response(Unauthorized("missing or invalid bearer token"))(
                scope, receive, send
            )
            return
        sent_type = media_type(headers.get("content-type", "application/json"))
        binary = "inference-header-content-length" in headers
        if (
            is_inference(scope["path"])
            and scope["method"] == "POST"
            and sent_type not in JSON_TYPES
            and not (binary and sent_type in BINARY_TYPES)
        ):
            refusal = UnsupportedMediaType(
                f"send JSON (application/json), or Triton's binary tensor format with "
                f"Inference-Header-Content-Length, not {sent_type!r}"
            )
            await error_response(refusal)(scope, receive, send)
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            refusal = too_large(self.max_body_bytes)
            await error_response(refusal)(scope, receive, send)
            return
        exchange = Exchange(
            receive, send, self.max_body_bytes, self.body_timeout_s, is_inference(scope["path"])
        )
        try:
            with contextlib.suppress(ClientDisconnect):
                await self.app(scope, exchange.receive, exchange.send)
        except asyncio.CancelledError as cancel:
            if not exchange.cancelled_by_us(cancel):
                raise
            await exchange.answer_the_gone_client()
            return
        finally:
            exchange.close()
        if exchange.refusal is not None and not exchange.started:
            await error_response(exchange.refusal)(scope, receive, send)

    def _authorized(self, headers: dict[str, str]) -> bool:
        return authorized(headers.get("authorization", ""), self.tokens)


class Exchange:
    """One request's body and answer, as GuardMiddleware passes them to the app: the body is
    counted as it arrives (chunked uploads declare no size) and given `body_timeout_s` to
    arrive; a body cut short is answered 408 / 413 (`refusal`) in place of the app's answer.
    Once an inference body is in, a disconnect of the client cancels the request's task, so
    that its texts leave the queue instead of being computed."""

    def __init__(
        self,
        receive: Receive,
        send: Send,
        max_body_bytes: int,
        body_timeout_s: float,
        watch_disconnect: bool,
    ) -> None:
        self._receive, self._send = receive, send
        self.max_body_bytes, self.body_timeout_s = max_body_bytes, body_timeout_s
        self.watch_disconnect = watch_disconnect
        self.seen = 0
        self.refusal: PredictorError | None = None  # why the body was cut short
        self.started = False  # the app began its answer
        self.finished = False  # the answer was sent: a disconnect after it cancels nothing
        self.handler = asyncio.current_task()
        self.watching: asyncio.Task | None = None  # waits, once the body is in, for a disconnect

    async def receive(self) -> Message:
        if self.watching is not None:  # the body is in: the next message is the disconnect
            return await asyncio.shield(self.watching)
        try:  # a timer, where wait_for would run the receive in a task of its own (3.11)
            async with asyncio.timeout(self.body_timeout_s):
                message = await self._receive()
        except TimeoutError:
            self.refusal = RequestTimeout(
                f"the request body stopped arriving for {self.body_timeout_s:.0f} s "
                f"({self.seen} bytes received)"
            )
            return {"type": "http.disconnect"}
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.max_body_bytes:
                self.refusal = too_large(self.max_body_bytes)
                return {"type": "http.disconnect"}
            if not message.get("more_body") and self.watch_disconnect:
                loop = asyncio.get_running_loop()
                self.watching = loop.create_task(self._until_disconnected())
        return message

    async def send(self, message: Message) -> None:
        if self.refusal is not None:
            return  # the app's answer to a cut-short body is replaced by the refusal
        self.started = self.started or message["type"] == "http.response.start"
        self.finished = message["type"] == "http.response.body" and not message.get("more_body")
        await self._send(message)

    async def _until_disconnected(self) -> Message:
        message = await self._receive()
        while message["type"] != "http.disconnect":
            message = await self._receive()
        if not self.finished and self.handler is not None:
            self.handler.cancel(CLIENT_GONE)
        return message

    def cancelled_by_us(self, cancel: asyncio.CancelledError) -> bool:
        return CLIENT_GONE in cancel.args and self.handler is not None

    async def answer_the_gone_client(self) -> None:
        """Nobody is left to answer, but an answer still ends the request for the middlewares
        around this one (BentoML's timeout middleware waits for a first message, 30 s, before
        it lets the request go); 499 is nginx's "client closed request", so the HTTP metrics
        count these too."""
        assert self.handler is not None
        self.handler.uncancel()
        if not self.started:
            await self._send({"type": "http.response.start", "status": 499, "headers": []})
            await self._send({"type": "http.response.body", "body": b""})

    def close(self) -> None:
        self.finished = True
        if self.watching is not None:
            self.watching.cancel()


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body over {limit} bytes")


def authorized(header: str, tokens: frozenset[str]) -> bool:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return any(hmac.compare_digest(token.strip(), known) for known in tokens)


def early_refusal(
    plane: DataPlane, tokens: frozenset[str]
) -> Callable[[dict[str, Any]], tuple[float, str] | None]:
    """For connections.shed_early: the data plane's verdict, for authorized requests only (an
    unauthorized one gets its 401 from GuardMiddleware, overload or not)."""

    def verdict(scope: dict[str, Any]) -> tuple[float, str] | None:
        if tokens:
            header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            if not authorized(header.decode("latin-1"), tokens):
                return None
        return plane.shed_early(scope["path"])

    return verdict


PredictorGetter = Callable[[], Predictor | None]


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
        "models": [_model_view(slot) for slot in predictor.slots.values()],
    }


ERROR_TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    408: "RequestTimeout",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "Unprocessable",
    429: "Overloaded",
    500: "InternalError",
    503: "NotReady",
    504: "GatewayTimeout",
}


def error_document(status: int, body: bytes, content_type: str) -> dict[str, Any]:
    """The documented `{"error", "type"}` form of an error answer someone else wrote
    (Starlette's plain-text 404/405, BentoML's pydantic validation details)."""
    kind = ERROR_TYPES.get(status, "Error")
    text = body.decode("utf-8", "replace").strip()
    if content_type.startswith("application/json"):
        try:
            found = json.loads(body)
        except ValueError:
            found = None
        if isinstance(found, dict):
            if "type" in found and "error" in found:
                return found
            detail = found.get("detail")
            if isinstance(detail, list) and detail and isinstance(detail[0], dict):
                return {"error": validation_message(detail), "type": kind}
            # a document of its own (OIP's `{"ready": false}`...): kept, with the two keys added
            message = found.get("error") or found.get("detail")
            return {**found, "error": str(message or HTTPStatus(status).phrase), "type": kind}
    return {"error": text or HTTPStatus(status).phrase, "type": kind}


def validation_message(errors: list[dict[str, Any]]) -> str:
    """pydantic's first error as one line: where (dotted, without BentoML's `body` prefix)
    and what, e.g. `texts.1: Input should be a valid string`."""
    where = ".".join(str(p) for p in errors[0].get("loc", []) if p != "body")
    return f"{where or 'body'}: {errors[0].get('msg', 'invalid')}"


class JsonErrorsMiddleware:
    """Every error answer is JSON `{"error", "type"}`, whoever wrote it; successful answers
    pass through untouched (only error bodies, which are small, are buffered)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def rewriting_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            headers = {k.decode("latin-1").lower(): v for k, v in start.get("headers", [])}
            content_type = headers.get("content-type", b"").decode("latin-1").lower()
            document = error_document(start["status"], b"".join(chunks), content_type)
            body = json.dumps(document).encode()
            kept = [
                (k, v)
                for k, v in start.get("headers", [])
                if k.lower() not in (b"content-type", b"content-length")
            ]
            await send(
                {
                    "type": "http.response.start",
                    "status": start["status"],
                    "headers": [
                        *kept,
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewriting_send)


def _model_view(slot: ModelSlot) -> dict[str, Any]:
    served = slot.serving
    loaded = served is not None and served.text_model is not None
    return {
        **slot.view(),
        "device": str(slot.placement.device),
        "error": slot.reason if slot.state == "UNAVAILABLE" else None,
        "variant": served.variant.value if loaded else None,  # type: ignore[union-attr]
        "providers": served.text_model.runner.providers if loaded else [],  # type: ignore[union-attr]
        "load_seconds": round(served.load_seconds, 3) if served else 0.0,
    }


def build_placement_app(get_predictor: PredictorGetter) -> Starlette:
    async def view(_: Request) -> Response:
        return JSONResponse(placement_view(get_predictor()))

    return Starlette(routes=[Route("/", view)])


class ClientErrorsInOneLine(logging.Filter):
    """BentoML logs every request its IO validation refuses (invalid JSON, a wrong field) at
    ERROR with a full traceback: a flood of bad requests became a flood of 30-line entries.
    Client errors become one WARNING line; real server errors keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        status = getattr(getattr(error, "error_code", None), "value", None)
        if type(error).__name__ == "ValidationError" or (
            isinstance(status, int) and 400 <= status < 500
        ):
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            record.msg = f"{record.getMessage()}: client error: {first}"
            record.args = ()
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def quiet_client_errors() -> None:
    logging.getLogger("bentoml._internal.server.http_app").addFilter(ClientErrorsInOneLine())
