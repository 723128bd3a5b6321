"""uvicorn's HTTP/1.1 protocol with the predictor's guards, served for real on 127.0.0.1:
headers that never finish are cut off, requests h11 refuses get JSON, normal traffic and
keep-alive are untouched."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from modelserve_predictor import connections
from tests.conftest import free_port

HEADER_TIMEOUT_S = 1.0


async def hello(_request) -> JSONResponse:
    return JSONResponse({"hello": "world"})


async def slow(_request) -> JSONResponse:
    await asyncio.sleep(HEADER_TIMEOUT_S * 2)  # an app slower than the header timeout
    return JSONResponse({"hello": "world"})


@pytest.fixture(scope="module", params=["httptools", "h11"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    """A server on each of uvicorn's HTTP/1.1 protocols, as `install()` made them."""
    connections.install(HEADER_TIMEOUT_S)
    chosen = free_port()
    app = Starlette(
        routes=[Route("/", hello), Route("/slow", slow), Route("/post", hello, methods=["POST"])]
    )
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=chosen,
        log_level="warning",
        lifespan="off",
        http=request.param,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    expected = {
        "httptools": connections.GuardedHttpToolsProtocol,
        "h11": connections.GuardedH11Protocol,
    }
    assert server.config.http_protocol_class is expected[request.param]
    yield chosen
    server.should_exit = True
    thread.join(timeout=30)


def exchange(port: int, *chunks: bytes, pause_s: float = 0.0, wait_s: float = 20.0) -> bytes:
    """Send the chunks (pausing between them), then read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        for index, chunk in enumerate(chunks):
            if index and pause_s:
                time.sleep(pause_s)  # the client's pace, not a wait on the server
            sock.sendall(chunk)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body


def test_headers_that_stop_arriving_get_a_408_in_json(port: int) -> None:
    started = time.monotonic()
    status, headers, body = parse(exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\n"))
    took = time.monotonic() - started
    assert status == 408 and headers["content-type"] == "application/json"
    assert json.loads(body)["type"] == "RequestTimeout"
    assert HEADER_TIMEOUT_S * 0.9 <= took < HEADER_TIMEOUT_S + 15


def test_a_connection_that_never_sends_a_byte_is_closed(port: int) -> None:
    assert exchange(port) == b""  # closed by the server (else recv would time out)


def test_headers_past_16_kib_get_a_431_in_json(port: int) -> None:
    # h11 judges the size of what it has buffered without a complete head, the httptools
    # protocol what it has been given: send part of a 64 KiB header, pause, then the rest
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536
    status, headers, body = parse(
        exchange(port, head[:20000], head[20000:] + b"\r\n\r\n", pause_s=0.3)
    )
    assert status == 431 and headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "error": "invalid HTTP request: the request line and headers are too long",
        "type": "HeadersTooLarge",
    }


def test_garbage_gets_a_400_in_json(port: int) -> None:
    status, _, body = parse(exchange(port, b"\x00\x01 not http\r\n\r\n"))
    assert status == 400 and json.loads(body)["type"] == "BadRequest"
    assert json.loads(body)["error"].startswith("invalid HTTP request: ")


def test_keep_alive_requests_are_answered_and_the_timer_does_not_cut_a_slow_app(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        for path in (b"/", b"/slow", b"/"):
            sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while b'"world"}' not in answer:
                chunk = sock.recv(65536)
                assert chunk, "the server closed a keep-alive connection between requests"
                answer += chunk
            assert parse(answer)[0] == 200
    status, _, body = parse(exchange(port, b"GET / HTTP/1.0\r\n\r\n"))
    assert status == 200 and json.loads(body) == {"hello": "world"}


def test_a_request_the_worker_sheds_early_gets_429_and_the_connection_goes_on(port: int) -> None:
    def verdict(scope: dict) -> tuple[float, str] | None:
        return (2.4, "model 'm' is overloaded") if scope["path"] == "/shed" else None

    connections.shed_early = verdict
    try:
        body = b'{"text": "' + b"x" * 5000 + b'"}'  # a body the app never reads
        request = (
            b"POST /shed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            for expected in (429, 429, 200):
                if expected == 200:
                    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                sock.sendall(request)
                answer = b""
                while not answer.endswith(b"}"):
                    chunk = sock.recv(65536)
                    assert chunk, "the connection was closed after an early refusal"
                    answer += chunk
                status, headers, payload = parse(answer)
                assert status == expected
                if status == 429:
                    assert headers["retry-after"] == "2"
                    assert json.loads(payload) == {
                        "error": "model 'm' is overloaded",
                        "type": "Overloaded",
                    }
    finally:
        connections.shed_early = None


def test_a_worker_handing_off_answers_the_post_then_closes_and_keeps_its_gets(port: int) -> None:
    """A busy worker (loadboard.hand_off says so) answers the POST in hand, says
    `Connection: close` and closes, so the client's next request takes a new connection;
    GETs (health checks, metrics) keep theirs."""
    asked: list[bool] = []

    def busy() -> bool:
        asked.append(True)
        return True

    connections.hand_off = busy
    try:
        post = b"POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        status, headers, body = parse(exchange(port, post))  # reads until the server closes
        assert status == 200 and json.loads(body) == {"hello": "world"}
        assert headers["connection"] == "close"
        assert len(asked) == 1  # once per request, not per chunk the parser saw
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            for _ in range(2):
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = b""
                while not answer.endswith(b"}"):
                    chunk = sock.recv(65536)
                    assert chunk, "a GET's keep-alive connection was closed"
                    answer += chunk
                assert "connection" not in parse(answer)[1]
    finally:
        connections.hand_off = None
