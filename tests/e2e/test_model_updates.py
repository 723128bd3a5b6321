"""Live model updates on a real 2-worker predictor: the served model follows its alias under
open-loop load with no failed request, a broken version never serves, and the repository API
(REST, gRPC, tritonclient) loads, pins and unloads in every worker."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from modelserve_runtime.manifest import Variant
from modelserve_runtime.store import Registry, _blob_key
from tests.e2e.conftest import Server, start_server, stop_server
from tests.model_registry.conftest import make_classifier

MODEL = "release"
TEXTS = ["what a lovely day", "this is broken again", "meh", "best purchase ever", "awful"]
RATE = 20.0  # requests per second, fixed intervals (open loop: sends never wait on answers)


@pytest.fixture(scope="module")
def registry_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`release` versions 1 and 2 (different weights, both verified), 3 with a corrupt blob;
    `spare` (not configured, for loading a new model); production -> 1."""
    from modelserve_registry.pipeline import export_and_push

    root = tmp_path_factory.mktemp("updates")
    registry = Registry.open(str(root / "registry"))
    for seed in (0, 5, 7):
        export_and_push(
            registry, make_classifier(root / f"v{seed}", seed=seed), MODEL, [Variant.ONNX_INT8]
        )
    export_and_push(registry, make_classifier(root / "spare", seed=9), "spare", [Variant.ONNX_INT8])
    broken = registry.manifest(f"{MODEL}:3")
    blob = root / "registry" / _blob_key(broken.variant(Variant.ONNX_INT8).files[0].sha256)
    blob.write_bytes(blob.read_bytes()[:-64])
    registry.tag(MODEL, 1, "production")
    return root / "registry"


@pytest.fixture(scope="module")
def updating(tmp_path_factory: pytest.TempPathFactory, registry_root: Path) -> Iterator[Server]:
    config = {
        "registry_uri": str(registry_root),
        "workers": 2,
        "alias_poll_s": 0.5,
        "repository_timeout_s": 120,
        "models": [{"ref": f"{MODEL}@production", "max_queue": 128}],
    }
    running = start_server(tmp_path_factory.mktemp("updating"), config)
    yield running
    stop_server(running)


def tag(registry_root: Path, version: int) -> None:
    Registry.open(str(registry_root)).tag(MODEL, version, "production")


def samples(server: Server, metric: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of one metric in the aggregated /metrics of all workers."""
    found = []
    for labels, value in re.findall(
        rf"^{metric}\{{([^}}]*)\}} (\S+)$", server.get("/metrics").text, re.MULTILINE
    ):
        found.append((dict(re.findall(r'(\w+)="([^"]*)"', labels)), float(value)))
    return found


def served_versions(server: Server, model: str = MODEL) -> dict[str, float]:
    """worker -> the version it answers with."""
    return {
        labels["worker"]: value
        for labels, value in samples(server, "predictor_model_version")
        if labels["model"] == model
    }


def swaps(server: Server, result: str) -> float:
    return sum(
        value
        for labels, value in samples(server, "predictor_model_swaps_total")
        if labels["model"] == MODEL and labels["result"] == result
    )


def wait_until(condition, timeout_s: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@dataclass
class Answer:
    sent: float  # seconds from the start of the run
    latency: float
    status: int
    version: str | None
    worker: int | None


def infer_body(text: str) -> dict:
    return {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [text]}]}


def open_loop(server: Server, seconds: float, events: dict[float, object]) -> list[Answer]:
    """Requests at fixed intervals from a pool (never waiting on earlier answers), and
    `events` (offset -> callable) run on their own thread at their offsets."""
    answers: list[Answer] = []
    lock = threading.Lock()
    # a connection per request: BentoML's workers share the socket, so new connections are
    # what spreads requests over both workers
    client = httpx.Client(
        timeout=30, limits=httpx.Limits(max_connections=64, max_keepalive_connections=0)
    )
    start = time.perf_counter()

    def send(index: int) -> None:
        sent = time.perf_counter()
        try:
            response = client.post(
                f"{server.url}/v2/models/{MODEL}/infer", json=infer_body(TEXTS[index % 5])
            )
            body = response.json() if response.status_code == 200 else {}
            answer = Answer(
                sent - start,
                time.perf_counter() - sent,
                response.status_code,
                body.get("model_version"),
                body.get("parameters", {}).get("worker"),
            )
        except httpx.HTTPError:
            answer = Answer(sent - start, time.perf_counter() - sent, 0, None, None)
        with lock:
            answers.append(answer)

    def run_events() -> None:
        for offset, action in sorted(events.items()):
            delay = start + offset - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            action()  # type: ignore[operator]

    timeline = threading.Thread(target=run_events)
    timeline.start()
    with ThreadPoolExecutor(64) as pool:
        for index in range(int(seconds * RATE)):
            delay = start + index / RATE - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, index)
    timeline.join()
    client.close()
    return sorted(answers, key=lambda a: a.sent)


def runs(versions: list[str]) -> list[str]:
    """['1','1','2','2','1'] -> ['1','2','1']"""
    return [v for i, v in enumerate(versions) if i == 0 or versions[i - 1] != v]


def test_alias_moves_under_load_fail_no_request(updating: Server, registry_root: Path) -> None:
    answers = open_loop(
        updating, 60, {15.0: lambda: tag(registry_root, 2), 35.0: lambda: tag(registry_root, 1)}
    )
    failed = [a for a in answers if a.status != 200]
    assert not failed, f"{len(failed)} failed requests, first: {failed[:3]}"
    assert len(answers) == 60 * RATE
    by_worker = {w: [a.version for a in answers if a.worker == w] for w in (1, 2)}
    assert max(len(v) for v in by_worker.values()) > 100, {w: len(v) for w, v in by_worker.items()}
    for worker, versions in by_worker.items():
        if len(versions) > 100:  # the kernel decides which worker accepts a connection
            assert runs(versions) == ["1", "2", "1"], f"worker {worker}: {runs(versions)}"
    assert {a.version for a in answers if a.sent < 14} == {"1"}
    assert {a.version for a in answers if 30 < a.sent < 34} == {"2"}
    assert {a.version for a in answers if a.sent > 55} == {"1"}
    # p99 while swapping stays bounded (the 2x target is measured by the release benchmark;
    # a test on a shared 2-core machine only guards against stalls)
    before = np.percentile([a.latency for a in answers if 5 < a.sent < 15], 99)
    during = np.percentile([a.latency for a in answers if 15 < a.sent < 20], 99)
    assert during < max(4 * before, before + 0.5), (before, during)
    assert swaps(updating, "ok") >= 4  # two moves x two workers
    views = [updating.get("/placement").json() for _ in range(6)]
    assert all(m["retiring"] == 0 for v in views for m in v["models"])  # one copy each


def test_a_broken_version_is_refused_and_the_previous_keeps_serving(
    updating: Server, registry_root: Path
) -> None:
    tag(registry_root, 2)
    wait_until(lambda: served_versions(updating) == {"1": 2.0, "2": 2.0}, what="version 2")
    failed_before = swaps(updating, "failed")
    tag(registry_root, 3)
    wait_until(lambda: swaps(updating, "failed") >= failed_before + 2, what="both refusals")
    assert served_versions(updating) == {"1": 2.0, "2": 2.0}
    answer = updating.post(f"/v2/models/{MODEL}/infer", json=infer_body("still fine"))
    assert answer.status_code == 200 and answer.json()["model_version"] == "2"
    meta = updating.get(f"/v2/models/{MODEL}").json()
    assert meta["versions"] == ["2"] and meta["parameters"]["state"] == "READY"
    assert "version 3 not loaded" in meta["parameters"]["reason"]
    assert "model.onnx" in meta["parameters"]["reason"]
    log = updating.log.read_text()
    assert "version 3 not loaded" in log and "Traceback" not in log
    tag(registry_root, 1)  # rolling back is moving the alias back
    wait_until(lambda: served_versions(updating) == {"1": 1.0, "2": 1.0}, what="version 1")
    assert updating.get(f"/v2/models/{MODEL}").json()["parameters"]["reason"] == ""


def load(server: Server, model: str, parameters: dict | None = None) -> httpx.Response:
    body = {"parameters": parameters} if parameters is not None else {}
    return httpx.post(f"{server.url}/v2/repository/models/{model}/load", json=body, timeout=150)


def test_repository_load_pins_a_version_in_every_worker(updating: Server) -> None:
    pinned = load(updating, MODEL, {"version": 2})
    assert pinned.status_code == 200, pinned.text
    assert served_versions(updating) == {"1": 2.0, "2": 2.0}  # all workers, before the answer
    index = httpx.post(f"{updating.url}/v2/repository/index", json={}, timeout=30).json()
    entry = next(m for m in index if m["name"] == MODEL)
    assert entry == {"name": MODEL, "version": "2", "state": "READY", "reason": ""}
    assert {"name": "spare", "version": "", "state": "UNAVAILABLE", "reason": "not loaded"} in index
    refused = load(updating, MODEL, {"version": 3})
    assert refused.status_code == 409 and "model.onnx" in refused.json()["error"]
    assert served_versions(updating) == {"1": 2.0, "2": 2.0}
    for parameters, status in (
        ({"version": 99}, 404),
        ({"version": "two"}, 400),
        ({"version": 1, "alias": "production"}, 400),
        ({"variant": "onnx-fp16"}, 409),  # not in the registry for this model
        ({"config": "{}"}, 400),
    ):
        response = load(updating, MODEL, parameters)
        assert response.status_code == status, (parameters, response.text)
        assert "error" in response.json()
    assert load(updating, "ghost").status_code == 404
    back = load(updating, MODEL, {"alias": "production"})
    assert back.status_code == 200 and served_versions(updating) == {"1": 1.0, "2": 1.0}


def test_repository_over_grpc_loads_a_new_model_and_unloads_it(updating: Server) -> None:
    client = grpcclient.InferenceServerClient(updating.grpc_address)
    try:
        client.load_model("spare")  # tritonclient's own call: not configured, now served
        assert served_versions(updating, "spare") == {"1": 1.0, "2": 1.0}
        text = grpcclient.InferInput("text", [1], "BYTES")
        text.set_data_from_numpy(np.array([b"hello"], dtype=object))
        assert client.infer("spare", [text]).as_numpy("logits").shape == (1, 3)
        client.unload_model("spare")
        states = {m.name: m.state for m in client.get_model_repository_index().models}
        assert states["spare"] == "UNAVAILABLE" and states[MODEL] == "READY"
        with pytest.raises(InferenceServerException) as caught:
            client.infer("spare", [text])
        assert caught.value.status() == "StatusCode.UNAVAILABLE"
        assert "unloaded" in caught.value.message()
        over_rest = httpx.post(f"{updating.url}/v2/models/spare/infer", json=infer_body("x"))
        assert over_rest.status_code == 503 and "Retry-After" in over_rest.headers
    finally:
        client.close()
    channel = grpc.insecure_channel(updating.grpc_address)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    request = service_pb2.RepositoryModelLoadRequest(model_name=MODEL)
    request.parameters["version"].int64_param = 2
    stub.RepositoryModelLoad(request, timeout=150)
    assert served_versions(updating) == {"1": 2.0, "2": 2.0}
    request = service_pb2.RepositoryModelLoadRequest(model_name=MODEL)
    request.parameters["version"].int64_param = 99
    with pytest.raises(grpc.RpcError) as caught_rpc:
        stub.RepositoryModelLoad(request, timeout=150)
    assert caught_rpc.value.code() == grpc.StatusCode.NOT_FOUND
    request = service_pb2.RepositoryModelLoadRequest(model_name=MODEL)
    request.parameters["alias"].string_param = "production"
    stub.RepositoryModelLoad(request, timeout=150)
    channel.close()
    assert updating.get("/readyz").status_code == 200
