"""The two BentoML routes that carry most traffic, `/analyze-sentiment` and `/embed`, answered
without BentoML's request machinery in between.

Measured on this 2-core machine (sentiment-minilm onnx-int8, one text per request), the
event-loop thread spent 3.9 ms of CPU per request against 2.4 ms for the model itself:
Starlette's router and exception middleware, BentoML's context middleware, endpoint wrapper
and pydantic IO round trip, for a body of a few dozen bytes. Under 3x overload that cost is
what made admitted requests and refusals slow alike (issue 13). This middleware sits inside
GuardMiddleware (token, media type, size, body timeout and disconnect watch all still apply)
and inside BentoML's metrics middleware (the `bentoml_service_request_*` series still count
these requests), and answers a POST to either route itself:

- the body is validated by the very pydantic model BentoML generated from the service
  method's signature, so what is accepted and each 400's message are BentoML's own;
- everything else (other methods, other routes, a body BentoML would read as a form or
  multipart) goes down the BentoML stack unchanged.

`HotPath` goes one step further: uvicorn's protocol (connections.py) hands these requests to
a chain of BentoML's HTTP metrics middleware, GuardMiddleware and FastRoutes, around
BentoML's stack rather than inside it. Traced at one request at a time, the 564 us between
the first byte and FastRoutes were h11's parse, then Starlette's error middleware,
OpenTelemetry's (excluded for these routes, yet still matching the URL), and BentoML's timeout
middleware, which runs every request in a second task with a 30 s timer that is never
cancelled. These routes keep their deadline from the model's `deadline_ms` (the batcher's
admission and expiry), the token, size, media type and body timeout (GuardMiddleware), and
BentoML's `bentoml_service_request_*` series (the same metric objects); they are not traced."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from modelserve_predictor.dataplane import DataPlane
from modelserve_predictor.errors import BadRequest, InternalError, NotReady, PredictorError
from modelserve_predictor.http import JSON_TYPES, error_response, media_type, validation_message

# a DataPlane method, called with the validated body's fields as keyword arguments
Handler = Callable[..., Awaitable[dict[str, Any]]]
Routes = dict[str, tuple[type[BaseModel], Handler]]
logger = logging.getLogger("modelserve.predictor")


class FastRoutes:
    """`routes`: path -> (the pydantic input model BentoML built for the route, the DataPlane
    method that answers it); `plane`: the worker's data plane, once it exists."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Routes,
        plane: Callable[[], DataPlane | None],
    ) -> None:
        self.app = app
        self.routes = routes
        self.plane = plane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST" or not _json_body(scope):
            await self.app(scope, receive, send)
            return
        spec, handler = route
        body = await _read_body(receive)
        if body is None:
            return  # cut short: GuardMiddleware answers (408/413), or the client has gone
        try:
            args = _parse(spec, body)
            plane = self.plane()
            if plane is None:
                raise NotReady("the predictor is still starting")
            document = await handler(plane, **dict(args))
        except PredictorError as error:
            await error_response(error)(scope, receive, send)
            return
        except Exception:
            logger.exception("%s failed", scope["path"])
            await error_response(InternalError(f"{scope['path']} failed: see the log"))(
                scope, receive, send
            )
            return
        payload = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(payload)),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


class HotPath:
    """connections.hot_route: for a POST of JSON to one of `routes`, the chain that answers
    it (built at the first such request, from the uvicorn app it is given); None for any
    other request, which goes to that app, BentoML's whole stack."""

    def __init__(
        self,
        routes: Routes,
        plane: Callable[[], DataPlane | None],
        guard: Callable[[ASGIApp], ASGIApp],
    ) -> None:
        self.routes = routes
        self.plane = plane
        self.guard = guard  # wraps an app in GuardMiddleware with the worker's limits
        self.chain: ASGIApp | None = None

    def __call__(self, scope: Scope, full_app: ASGIApp) -> ASGIApp | None:
        if scope["method"] != "POST" or scope["path"] not in self.routes or not _json_body(scope):
            return None
        if self.chain is None:
            self.chain = self.build(full_app)
        return self.chain

    def build(self, full_app: ASGIApp) -> ASGIApp:
        chain = self.guard(FastRoutes(full_app, self.routes, self.plane))
        counting = _bentoml_http_metrics(full_app)
        if counting is None:  # BentoML's metrics turned off
            return chain
        # the same middleware (the same metric objects) around this chain instead of
        # BentoML's stack: the dashboards' request, latency and in-flight series count these
        counting = copy.copy(counting)
        counting.app = chain
        return counting


def _bentoml_http_metrics(app: Any, depth: int = 32) -> Any | None:
    """BentoML's HTTP metrics middleware inside the app uvicorn serves (ProxyHeaders ->
    Starlette -> ServerError -> metrics -> ...), set up as for its first request."""
    from bentoml._internal.server.http.instruments import RunnerTrafficMetricsMiddleware

    for _ in range(depth):
        if isinstance(app, RunnerTrafficMetricsMiddleware):
            if not app._is_setup:
                app._setup()
            return app
        if hasattr(app, "build_middleware_stack"):  # Starlette builds it at its first request
            if app.middleware_stack is None:
                app.middleware_stack = app.build_middleware_stack()
            app = app.middleware_stack
        else:
            app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def _json_body(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"content-type":
            return media_type(value.decode("latin-1")) in JSON_TYPES
    return True  # no content type: BentoML reads it as JSON too


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _parse(spec: type[BaseModel], body: bytes) -> BaseModel:
    try:
        return spec.model_validate_json(body)
    except ValidationError as error:
        raise BadRequest(validation_message(error.errors(include_url=False))) from None
