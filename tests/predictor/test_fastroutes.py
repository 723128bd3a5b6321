"""The hot routes' short chain (fastroutes.HotPath), chosen by uvicorn's protocol for a JSON
POST to a hot route, served for real on 127.0.0.1: it answers with the guard's limits and
token, turns a fault into a JSON 500, and leaves every other request to the full app."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from modelserve_predictor import connections
from modelserve_predictor.fastroutes import HotPath
from modelserve_predictor.http import GuardMiddleware
from tests.conftest import free_port

TOKEN = "s3cret"


class Body(BaseModel):
    text: str | None = None


class Plane:
    ready = True


async def analyze(plane: Plane, text: str | None = None) -> dict[str, Any]:
    if text == "boom":
        raise RuntimeError("a bug, not the client's fault")
    return {"via": "hot", "text": text}


async def full_stack(request) -> JSONResponse:
    return JSONResponse({"via": "full"})


PLANE: list[Plane | None] = [Plane()]


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    connections.install(10.0)
    app = Starlette(routes=[Route("/analyze-sentiment", full_stack, methods=["GET", "POST"])])
    connections.hot_route = HotPath(
        {"/analyze-sentiment": (Body, analyze)},
        lambda: PLANE[0],
        lambda inner: GuardMiddleware(
            inner, max_body_bytes=1000, tokens=frozenset({TOKEN}), body_timeout_s=5
        ),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        connections.hot_route = None
        server.should_exit = True
        thread.join(timeout=30)


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_a_json_post_to_a_hot_route_is_answered_by_the_short_chain(base: str) -> None:
    with httpx.Client(base_url=base, timeout=20, headers=AUTH) as client:
        for text in ("one", "two"):  # twice on one keep-alive connection
            answer = client.post("/analyze-sentiment", json={"text": text, "extra": 1})
            assert answer.status_code == 200
            assert answer.json() == {"via": "hot", "text": text}
        wrong = client.post("/analyze-sentiment", json={"text": 5})
        assert wrong.status_code == 400 and wrong.json()["type"] == "BadRequest"


def test_the_guard_still_applies_on_the_short_chain(base: str) -> None:
    with httpx.Client(base_url=base, timeout=20) as client:
        anonymous = client.post("/analyze-sentiment", json={"text": "x"})
        assert anonymous.status_code == 401 and anonymous.json()["type"] == "Unauthorized"
        big = client.post("/analyze-sentiment", json={"text": "x" * 2000}, headers=AUTH)
        assert big.status_code == 413 and big.json()["type"] == "PayloadTooLarge"


def test_a_fault_is_a_json_500_and_the_connection_goes_on(base: str) -> None:
    with httpx.Client(base_url=base, timeout=20, headers=AUTH) as client:
        fault = client.post("/analyze-sentiment", json={"text": "boom"})
        assert fault.status_code == 500
        assert fault.json() == {
            "error": "/analyze-sentiment failed: see the log",
            "type": "InternalError",
        }
        assert client.post("/analyze-sentiment", json={"text": "ok"}).json()["via"] == "hot"


def test_a_worker_without_its_plane_answers_503(base: str) -> None:
    PLANE[0] = None
    try:
        with httpx.Client(base_url=base, timeout=20, headers=AUTH) as client:
            starting = client.post("/analyze-sentiment", json={"text": "x"})
        assert starting.status_code == 503 and starting.json()["type"] == "NotReady"
    finally:
        PLANE[0] = Plane()


def test_other_requests_go_to_the_full_app(base: str) -> None:
    with httpx.Client(base_url=base, timeout=20, headers=AUTH) as client:
        assert client.get("/analyze-sentiment").json() == {"via": "full"}
        form = client.post("/analyze-sentiment", data={"text": "a form"})
        assert form.json() == {"via": "full"}
