"""Failure paths of the real predictor: a killed worker, authentication, the OpenAPI fuzz,
and refusing to start on a model it cannot verify."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelserve_metric_names import predictor as metrics
from modelserve_runtime.store import Registry, _blob_key
from tests.e2e.conftest import Server, start_server, stop_server, worker_pids


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, e2e_registry: Path) -> Iterator[Server]:
    tokens = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    tokens.write_text("file-token-1\n\nfile-token-2\n")
    config = {
        "registry_uri": str(e2e_registry),
        "workers": 2,
        "models": [{"ref": "tiny-sentiment"}, {"ref": "tiny-embed"}],
        "auth_tokens": ["inline-secret-token"],
        "auth_token_file": str(tokens),
    }
    running = start_server(tmp_path_factory.mktemp("guarded"), config)
    yield running
    stop_server(running)


def test_inference_needs_a_bearer_token_while_probes_stay_open(guarded: Server) -> None:
    payload = {"text": "hello"}
    assert guarded.post("/analyze-sentiment", json=payload).status_code == 401
    wrong = guarded.post("/embed", json=payload, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    infer = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}
    assert guarded.post("/v2/models/tiny-sentiment/infer", json=infer).status_code == 401
    for token in ("inline-secret-token", "file-token-2"):
        ok = guarded.post(
            "/analyze-sentiment", json=payload, headers={"Authorization": f"Bearer {token}"}
        )
        assert ok.status_code == 200, ok.text
    for open_path in (
        "/readyz",
        "/livez",
        "/metrics",
        "/v2/health/ready",
        "/v2/models/tiny-sentiment",
        "/placement",
    ):
        assert guarded.get(open_path).status_code == 200, open_path
    log = guarded.log.read_text()
    assert "inline-secret-token" not in log and "file-token-1" not in log


def test_a_killed_worker_is_replaced_and_the_other_keeps_serving(guarded: Server) -> None:
    headers = {"Authorization": "Bearer inline-secret-token"}
    before = worker_pids(guarded)
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    served = 0
    deadline = time.monotonic() + 90
    replaced: set[int] = set()
    while time.monotonic() < deadline:
        response = guarded.post("/analyze-sentiment", json={"text": "still here?"}, headers=headers)
        assert response.status_code == 200, response.text
        served += 1
        replaced = worker_pids(guarded) - before
        if replaced and guarded.get("/readyz").status_code == 200:
            break
        time.sleep(0.2)
    assert replaced, "no replacement worker was started"
    assert victim not in worker_pids(guarded) and len(worker_pids(guarded)) == 2
    assert served > 0
    # the dead worker's live gauges left with it (the replacement forgot them at start)
    deadline = time.monotonic() + 60  # at the replacement's start, or its siblings' next check
    while f'pid="{victim}"' in (exposition := guarded.get("/metrics").text):
        assert time.monotonic() < deadline, "the dead worker's live gauges are still there"
        time.sleep(0.5)
    assert re.search(r'^predictor_model_state\{[^}]*state="READY"[^}]*\} 1', exposition, re.M)


def test_the_published_openapi_spec_fuzzes_without_a_server_error(server: Server) -> None:
    schemathesis = Path(sys.executable).parent / "schemathesis"
    spec = server.get("/docs.json").json()
    assert "/analyze-sentiment" in spec["paths"] and "/embed" in spec["paths"]
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{server.url}/docs.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "40",
            "--workers",
            "2",
            "--phases",
            "examples,coverage,fuzzing",
            "--request-timeout",
            "20",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:]


def _serve_once(
    tmp_path: Path, registry: Path | str, *model_args: str
) -> subprocess.CompletedProcess:
    predictor = Path(sys.executable).parent / "predictor"
    env = {**os.environ, "REGISTRY_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run(
        [str(predictor), "serve", "--registry-uri", str(registry), "--port", "1", *model_args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_serve_refuses_a_missing_model_or_variant_in_one_line(
    tmp_path: Path, e2e_registry: Path
) -> None:
    missing = _serve_once(tmp_path, e2e_registry, "--model", "no-such-model")
    assert missing.returncode == 3
    assert missing.stderr.strip().splitlines()[-1] == (
        f"error: model 'no-such-model' is not in the registry at {e2e_registry}"
    )
    variant = _serve_once(tmp_path, e2e_registry, "--model", "tiny-sentiment=pytorch-fp16")
    assert variant.returncode == 3 and "has no variant 'pytorch-fp16'" in variant.stderr
    unreachable = _serve_once(tmp_path, "gs://bucket/x", "--model", "tiny-sentiment")
    assert unreachable.returncode == 7 and "unsupported registry URI" in unreachable.stderr
    bad = _serve_once(tmp_path, e2e_registry, "--model", "tiny-sentiment=onnx-int4")
    assert bad.returncode == 2 and "bad model spec" in bad.stderr


def test_serve_refuses_a_corrupt_model_naming_the_file(tmp_path: Path, e2e_registry: Path) -> None:
    import shutil

    registry_copy = tmp_path / "registry"
    shutil.copytree(e2e_registry, registry_copy)
    manifest = Registry.open(str(registry_copy)).manifest("tiny-sentiment")
    blob = registry_copy / _blob_key(manifest.variants["onnx-int8"].files[0].sha256)
    blob.write_bytes(blob.read_bytes()[:-10])
    result = _serve_once(tmp_path, registry_copy, "--model", "tiny-sentiment")
    assert result.returncode == 4
    assert "model.onnx" in result.stderr and "truncated" in result.stderr
    assert "Traceback" not in result.stderr


def test_placement_command_prints_the_plan() -> None:
    predictor = Path(sys.executable).parent / "predictor"
    result = subprocess.run(
        [
            str(predictor),
            "placement",
            "--gpus",
            "0,1",
            "--workers-per-gpu",
            "2",
            "--model",
            "a",
            "--model",
            "b",
            "--gpu-map",
            "a=1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PREDICTOR_CONFIG_FILE": ""},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("worker 1: cuda:0")
    assert "a on cuda:1" in lines[0] and "b on cuda:0" in lines[0]


def test_grpc_and_the_repository_api_need_the_same_bearer_token(guarded: Server) -> None:
    import numpy as np
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(guarded.grpc_address)
    try:
        assert client.is_server_ready()  # health stays open, as over REST
        text = grpcclient.InferInput("text", [1], "BYTES")
        text.set_data_from_numpy(np.array([b"hello"], dtype=object))
        for headers in (None, {"authorization": "Bearer nope"}):
            with pytest.raises(InferenceServerException) as caught:
                client.infer("tiny-sentiment", [text], headers=headers)
            assert caught.value.status() == "StatusCode.UNAUTHENTICATED"
        with pytest.raises(InferenceServerException) as caught:
            client.get_model_repository_index()
        assert caught.value.status() == "StatusCode.UNAUTHENTICATED"
        ok = client.infer(
            "tiny-sentiment", [text], headers={"authorization": "Bearer file-token-1"}
        )
        assert ok.as_numpy("logits").shape == (1, 3)
    finally:
        client.close()
    assert guarded.post("/v2/repository/index", json={}).status_code == 401
    assert guarded.post("/v2/repository/models/tiny-embed/unload").status_code == 401
    authorized = guarded.post(
        "/v2/repository/index", json={}, headers={"Authorization": "Bearer inline-secret-token"}
    )
    assert authorized.status_code == 200 and len(authorized.json()) >= 2


def test_two_servers_on_one_host_keep_their_own_metrics(
    tmp_path: Path, e2e_registry: Path, guarded: Server
) -> None:
    """The same BENTOML_HOME for both: each `predictor serve` still gets its own Prometheus
    multiprocess folder, so starting one never resets or mixes the other's counts."""
    headers = {"Authorization": "Bearer inline-secret-token"}
    for _ in range(3):
        assert guarded.post("/embed", json={"text": "x"}, headers=headers).status_code == 200

    def embed_requests(server: Server) -> float:
        pattern = (
            r'^predictor_requests_total\{[^}]*model="tiny-embed"[^}]*outcome="ok"[^}]*\} (\S+)'
        )
        return sum(float(v) for v in re.findall(pattern, server.get("/metrics").text, re.M))

    before = embed_requests(guarded)
    config = {"registry_uri": str(e2e_registry), "models": [{"ref": "tiny-embed"}]}
    other = start_server(
        tmp_path,
        config,
        env_extra={"BENTOML_HOME": os.environ.get("BENTOML_HOME", str(Path.home() / "bentoml"))},
    )
    try:
        for _ in range(5):
            assert other.post("/embed", json={"text": "y"}).status_code == 200
        assert embed_requests(other) == 5
        assert embed_requests(guarded) == before >= 3
    finally:
        stop_server(other)


def test_sigterm_refuses_new_connections_answers_admitted_requests_and_exits_in_time(
    tmp_path: Path, e2e_registry: Path
) -> None:
    import socket
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlsplit

    import httpx

    drain_s = 5.0
    config = {
        "registry_uri": str(e2e_registry),
        "workers": 2,
        "drain_s": drain_s,
        "models": [{"ref": "big-batch"}],
    }
    server = start_server(tmp_path, config)
    address = urlsplit(server.url)
    texts = ["a long text that keeps the model busy for a while " * 70] * 8
    try:

        def admitted(_: int) -> int | str:
            try:  # one connection each: none is an idle keep-alive one the drain may close
                answer = httpx.post(
                    f"{server.url}/analyze-sentiment",
                    json={"texts": texts},
                    timeout=60,
                    headers={"Connection": "close"},
                )
                if answer.status_code == 200:
                    return 200
                return f"{answer.status_code} {answer.json()['type']}"
            except httpx.HTTPError as exc:
                return type(exc).__name__

        with ThreadPoolExecutor(24) as pool:
            calls = [pool.submit(admitted, i) for i in range(24)]
            deadline = time.monotonic() + 60
            # SIGTERM once every request is answered or inside the app: one still in the
            # kernel's accept queue when the socket closes is reset, and may rightly be
            while True:
                exposition = server.get("/metrics").text
                inside = sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in exposition.splitlines()
                    if line.startswith(metrics.HTTP_IN_PROGRESS + "{")
                    and 'endpoint="/analyze-sentiment"' in line
                )
                if inside + sum(c.done() for c in calls) >= len(calls):
                    break
                assert time.monotonic() < deadline, "the requests never all reached the server"
                time.sleep(0.05)
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)  # as the kubelet does: the CLI only
            refused_after = None
            while refused_after is None and time.monotonic() - signalled < 30:
                try:
                    with socket.create_connection((address.hostname, address.port), timeout=10):
                        pass
                # refused, or reset: a connect that reached the listener's queue as it closed
                except (ConnectionRefusedError, ConnectionResetError):
                    refused_after = time.monotonic() - signalled
            answers = [call.result() for call in calls]
        code = server.process.wait(timeout=drain_s + 60)
        exited_after = time.monotonic() - signalled
    finally:
        stop_server(server)
    # every request sent before the signal got an answer: served, or refused by admission
    # (429: the expected wait exceeds the deadline; 503: the deadline passed in the queue),
    # none a reset connection or a cancelled drain
    admission = (200, "429 Overloaded", "503 DeadlineExceeded")
    assert all(a in admission for a in answers), [a for a in answers if a not in admission]
    assert answers.count(200) >= 1
    assert refused_after is not None and refused_after < 10, "new connections were not refused"
    assert code == 0
    assert exited_after < drain_s + 30  # drain_s, plus the shutdown hooks, on a slow machine
