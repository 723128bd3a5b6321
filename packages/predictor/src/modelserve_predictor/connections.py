"""What uvicorn's HTTP/1.1 protocol does before any application code runs, made safe:

- a connection that does not finish its request line and headers within `header_timeout_s`
  is closed (uvicorn arms no timer until the first response, so a client that opens a
  connection and trickles or never sends its headers held it, and a worker's file
  descriptors, forever);
- at shutdown, a connection accepted whose first request has not been read yet is answered
  (then closed) instead of being closed with that request unread: uvicorn closes every
  connection without a request in progress, which reset clients that had connected and
  sent just before SIGTERM (3 of 24 in a test here);
- under overload, an inference request for a model whose queue has just refused (and will
  still be over its wait budget) is answered 429 right after its head is parsed, by a
  three-line app instead of BentoML's middleware stack and IO validation: refusals must
  cost far less than answers, or at 3x the sustainable rate they take the CPU the admitted
  requests need (that is how uvicorn's own `limit_concurrency` answers 503);
- a request h11 cannot parse (a 100 KB URL, a 64 KB header, garbage) is answered in the
  documented JSON `{"error", "type"}` form with h11's own status hint (431 for headers over
  its buffer), not uvicorn's plain text.

BentoML builds the uvicorn config in its worker, so the protocol class is chosen through
uvicorn's name table (`http="auto"`), which `install()` points here before the worker's
server starts. This subclasses the h11 protocol (the one uvicorn picks when httptools is
not installed, as here): installing httptools does not silently drop these guarantees."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import h11
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.protocols.http.h11_impl import H11Protocol

from modelserve_predictor.errors import (
    BadRequest,
    HeadersTooLarge,
    Overloaded,
    PredictorError,
    RequestTimeout,
)

HEADER_TIMEOUT_S = 10.0  # replaced by install()
FIRST_REQUEST_GRACE_S = 1.0  # at shutdown: how long a fresh connection's request may take
# ASGI scope -> (Retry-After seconds, reason) when the request is to be refused before it is
# read; set by the worker once its models are up (service.py)
shed_early: Callable[[dict[str, Any]], tuple[float, str] | None] | None = None
# (ASGI scope, the app uvicorn serves) -> a shorter app for this request, or None for that one
# (fastroutes.HotPath, set by service.py)
hot_route: Callable[[dict[str, Any], Any], Any] | None = None


def encoded(error: PredictorError) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The error's JSON body and headers, as error_response (http.py) writes them."""
    body = json.dumps(error.body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in error.headers().items()),
    ]
    return body, headers


def refusal_app(retry_after_s: float, message: str) -> Callable[..., Any]:
    body, headers = encoded(Overloaded(message, retry_after_s))

    async def refuse(_scope: Any, _receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return refuse


class GuardedH11Protocol(H11Protocol):
    header_timeout_s = HEADER_TIMEOUT_S

    # uvicorn reads `self.app` once per request, right after it parsed the head into
    # `self.scope`: the place to pick a cheaper app for a request that is refused anyway, or
    # the hot routes' short chain.
    @property
    def app(self) -> Any:
        scope = getattr(self, "scope", None)
        if shed_early is not None and scope is not None and scope["method"] == "POST":
            verdict = shed_early(scope)
            if verdict is not None:
                return refusal_app(*verdict)
        if hot_route is not None and scope is not None:
            return hot_route(scope, self._app) or self._app
        return self._app

    @app.setter
    def app(self, value: Any) -> None:
        self._app = value

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._refusal: h11.RemoteProtocolError | None = None
        self._answered = 0
        self._closing = False  # shutdown began: answer what is read, then close
        parse = self.conn.next_event

        def next_event():  # keeps h11's reason and status hint, which uvicorn drops
            try:
                return parse()
            except h11.RemoteProtocolError as exc:
                self._refusal = exc
                raise

        self.conn.next_event = next_event  # type: ignore[method-assign]
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        # Between requests (a keep-alive connection's next one) the headers get a deadline
        # again; the keep-alive timer, which uvicorn cancels on the first byte, no longer holds.
        if self.cycle is None or self.cycle.response_complete:
            self._arm_header_timer()
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm_header_timer()  # the headers are in: the app's own limits apply
            if self._closing:
                self.cycle.keep_alive = False

    def shutdown(self) -> None:
        if self.cycle is None and not self._answered and not self.transport.is_closing():
            # accepted, request not read yet (it may be in the socket's buffer): answer it
            self._closing = True
            self.loop.call_later(FIRST_REQUEST_GRACE_S, self._close_if_idle)
            return
        super().shutdown()

    def _close_if_idle(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        self._answered += 1
        super().on_response_complete()  # arms uvicorn's keep-alive timer for the idle wait
        self._disarm_header_timer()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request h11 refused, as JSON and with h11's status hint."""
        refusal = self._refusal
        if refusal is not None and refusal.error_status_hint == 431:
            self._send_error(
                HeadersTooLarge("invalid HTTP request: the request line and headers are too long")
            )
        else:
            self._send_error(BadRequest(f"invalid HTTP request: {refusal or msg}"))

    def _send_error(self, error: PredictorError) -> None:
        body, headers = encoded(error)
        headers.append((b"connection", b"close"))
        try:
            if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                status = error.http_status
                response = h11.Response(
                    status_code=status, headers=headers, reason=HTTPStatus(status).phrase.encode()
                )
                self.transport.write(self.conn.send(response))
                self.transport.write(self.conn.send(h11.Data(data=body)))
                self.transport.write(self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:  # h11 will not write on this connection any more
            pass
        self.transport.close()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:  # armed once per request head, not per packet
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered: not ours to cut
        if self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0]:
            # nothing of a next request arrived: an idle keep-alive connection, which
            # uvicorn's own keep-alive timer closes; one that never sent a byte is closed here
            self.transport.close()
            return
        self._send_error(
            RequestTimeout(
                f"the request line and headers did not arrive within {self.header_timeout_s:g} s"
            )
        )


def install(header_timeout_s: float) -> None:
    """Make uvicorn's `auto` and `h11` HTTP protocols this one (call before the server starts)."""
    GuardedH11Protocol.header_timeout_s = header_timeout_s
    name = f"{__name__}:GuardedH11Protocol"
    HTTP_PROTOCOLS["auto"] = name
    HTTP_PROTOCOLS["h11"] = name
