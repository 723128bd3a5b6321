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
- a request the parser cannot read (a 100 KB URL, a 64 KB header, garbage) is answered in
  the documented JSON `{"error", "type"}` form (431 for a head over 16 KiB, else 400 with
  the parser's reason), not uvicorn's plain text;
- a JSON POST to a hot route goes to the short chain of fastroutes.HotPath;
- a POST to a worker clearly busier than a sibling is answered with `Connection: close`,
  so that the client's next request may land on the idle one (loadboard.py).

BentoML builds the uvicorn config in its worker, so the protocol class is chosen through
uvicorn's name table (`http="auto"`), which `install()` points here before the worker's
server starts. Both of uvicorn's HTTP/1.1 protocols carry these guards: httptools (what
`auto` picks, and the predictor depends on it) and h11 (`--http h11`, or without
httptools)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import h11
import httptools
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.protocols.http.flow_control import CLOSE_HEADER
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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
# () -> whether this worker should hand the connection of the POST in hand to a sibling
# (loadboard.LoadBoard.hand_off, set by service.py when there are several workers)
hand_off: Callable[[], bool] | None = None


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


class Guards:
    """What both protocols add to uvicorn's, whichever parser reads the request: mixed in
    before uvicorn's protocol class, which supplies `cycle`, `transport`, `loop`, `conn` or
    `parser`. Each protocol says whether a request head has begun to arrive and how to write
    an error answer before any app runs."""

    header_timeout_s = HEADER_TIMEOUT_S
    cycle: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

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

    def _guard_connection(self) -> None:
        """From connection_made: a head must arrive within the header timeout."""
        self._header_timer: asyncio.TimerHandle | None = None
        self._answered = 0
        self._closing = False  # shutdown began: answer what is read, then close
        self._arm_header_timer()

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _head_complete(self) -> None:
        """The headers are in: the app's own limits apply from here."""
        self._disarm_header_timer()
        if self.cycle.keep_alive and (
            self._closing
            or (hand_off is not None and self.cycle.scope["method"] == "POST" and hand_off())
        ):
            self.cycle.keep_alive = False
            self._announce_close()

    def _announce_close(self) -> None:
        """Make the answer say `Connection: close`, so the client does not send its next
        request on a connection about to close (a POST it would not retry)."""

    def _head_begun(self) -> bool:
        raise NotImplementedError

    def _send_error(self, error: PredictorError) -> None:
        raise NotImplementedError

    def shutdown(self) -> None:
        if self.cycle is None and not self._answered and not self.transport.is_closing():
            # accepted, request not read yet (it may be in the socket's buffer): answer it
            self._closing = True
            self.loop.call_later(FIRST_REQUEST_GRACE_S, self._close_if_idle)
            return
        super().shutdown()  # type: ignore[misc]

    def _close_if_idle(self) -> None:
        if self._between_requests():
            super().shutdown()  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        self._answered += 1
        super().on_response_complete()  # type: ignore[misc]  # arms the keep-alive timer
        self._disarm_header_timer()

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
        if not self._between_requests():
            return  # a request is being answered: not ours to cut
        if not self._head_begun():
            # nothing of a next request arrived: an idle keep-alive connection, which
            # uvicorn's own keep-alive timer closes; one that never sent a byte is closed here
            self.transport.close()
            return
        self._send_error(
            RequestTimeout(
                f"the request line and headers did not arrive within {self.header_timeout_s:g} s"
            )
        )


class GuardedH11Protocol(Guards, H11Protocol):
    """The guards on uvicorn's h11 protocol (pure Python; used where httptools is missing)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._refusal: h11.RemoteProtocolError | None = None
        parse = self.conn.next_event

        def next_event():  # keeps h11's reason and status hint, which uvicorn drops
            try:
                return parse()
            except h11.RemoteProtocolError as exc:
                self._refusal = exc
                raise

        self.conn.next_event = next_event  # type: ignore[method-assign]
        self._guard_connection()

    def data_received(self, data: bytes) -> None:
        # Between requests (a keep-alive connection's next one) the headers get a deadline
        # again; the keep-alive timer, which uvicorn cancels on the first byte, no longer holds.
        if self._between_requests():
            self._arm_header_timer()
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if not self._between_requests():
            self._head_complete()

    def _head_begun(self) -> bool:
        return not (self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0])

    def _announce_close(self) -> None:
        # uvicorn's h11 cycle adds the header only when the request carried it
        self.cycle.scope["headers"].append(CLOSE_HEADER)

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


class HeadTooLarge(Exception):
    """Raised from a parser callback: the request line and headers passed the limit."""


class GuardedHttpToolsProtocol(Guards, HttpToolsProtocol):
    """The guards on uvicorn's httptools protocol (llhttp, in C), the one `auto` picks: it
    parses a request head in a few microseconds where h11 took about 250 (measured here, one
    request at a time). llhttp sets no limit on the head's size, so this protocol applies
    h11's (the request line and headers, 16 KiB unless uvicorn is told otherwise): 431."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limit = self.config.h11_max_incomplete_event_size
        self._head_limit = limit if limit is not None else DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        self._head_bytes = 0
        self._in_head = False
        self._too_large = False
        self._guard_connection()

    def data_received(self, data: bytes) -> None:
        if self._between_requests():  # as on h11: a keep-alive's next head gets a deadline
            self._arm_header_timer()
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:  # uvicorn's own handler drops the reason
            self.send_400_response(str(exc) or type(exc).__name__)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._in_head = True

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self._head_limit:
            self._too_large = True
            raise HeadTooLarge  # llhttp stops and raises HttpParserCallbackError

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()
        if self.parser.should_upgrade():  # a websocket takes the connection over: not ours
            self._disarm_header_timer()
        elif self.cycle is not None and not self.cycle.response_complete:
            self._head_complete()

    def _head_begun(self) -> bool:
        return self._in_head

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._send_error(
                HeadersTooLarge("invalid HTTP request: the request line and headers are too long")
            )
        else:
            self._send_error(BadRequest(f"invalid HTTP request: {msg}"))

    def _send_error(self, error: PredictorError) -> None:
        if self._between_requests() or not self.cycle.response_started:
            body, headers = encoded(error)
            status = error.http_status
            head = [b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())]
            head += [name + b": " + value + b"\r\n" for name, value in headers]
            head.append(b"connection: close\r\n\r\n")
            self.transport.write(b"".join(head) + body)
        self.transport.close()


def install(header_timeout_s: float) -> None:
    """Make uvicorn's HTTP protocols these (call before the server starts): `auto` and
    `httptools` the guarded httptools one, `h11` the guarded h11 one."""
    Guards.header_timeout_s = header_timeout_s
    HTTP_PROTOCOLS["auto"] = f"{__name__}:GuardedHttpToolsProtocol"
    HTTP_PROTOCOLS["httptools"] = f"{__name__}:GuardedHttpToolsProtocol"
    HTTP_PROTOCOLS["h11"] = f"{__name__}:GuardedH11Protocol"
