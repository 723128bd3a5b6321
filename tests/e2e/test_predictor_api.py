"""Every API of the running predictor, over real HTTP."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelserve_metric_names import predictor as metrics
from modelserve_predictor.loadboard import SLOT
from tests.e2e.conftest import Server


def test_analyze_sentiment_one_text_and_several(server: Server) -> None:
    one = server.post("/analyze-sentiment", json={"text": "I love this"})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model"] == "tiny-sentiment" and body["variant"] == "onnx-int8"
    (result,) = body["results"]
    assert result["label"] in {"negative", "neutral", "positive"}
    assert sum(result["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert result["model"] == "tiny-sentiment" and result["version"] == 1
    many = server.post(
        "/analyze-sentiment", json={"texts": ["good", "bad", "fine"], "model": "big-batch"}
    ).json()
    assert [r["model"] for r in many["results"]] == ["big-batch"] * 3


def test_over_long_text_is_truncated_and_says_so(server: Server) -> None:
    body = server.post("/analyze-sentiment", json={"texts": ["short", "word " * 200]}).json()
    assert [r["truncated"] for r in body["results"]] == [False, True]  # tiny max is 126 tokens


def test_embed_returns_unit_vectors(server: Server) -> None:
    body = server.post("/embed", json={"texts": ["a cat", "a dog"]}).json()
    vectors = np.array(body["embeddings"])
    assert body["model"] == "tiny-embed" and body["dimension"] == 32 and vectors.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_open_inference_protocol(server: Server) -> None:
    assert server.get("/v2/health/live").json() == {"live": True}
    assert server.get("/v2/health/ready").status_code == 200
    meta = server.get("/v2/models/tiny-sentiment").json()
    assert meta["name"] == "tiny-sentiment" and meta["inputs"][0]["datatype"] == "BYTES"
    assert server.get("/v2/models/tiny-sentiment/ready").json()["ready"] is True
    request = {
        "id": "r1",
        "inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["good", "bad"]}],
    }
    answer = server.post("/v2/models/tiny-sentiment/infer", json=request).json()
    assert answer["id"] == "r1" and answer["model_version"] == "1"
    logits = next(o for o in answer["outputs"] if o["name"] == "logits")
    assert logits["shape"] == [2, 3] and len(logits["data"]) == 6
    versioned = server.post(
        "/v2/models/tiny-embed/versions/1/infer",
        json={"inputs": [{"name": "text", "shape": [1, 1], "datatype": "BYTES", "data": [["x"]]}]},
    )
    assert versioned.json()["outputs"][0]["shape"] == [1, 32]
    assert server.get("/v2/models/nope").status_code == 404
    assert server.post("/v2/models/tiny-embed/versions/9/infer", json=request).status_code == 404


@pytest.mark.parametrize(
    ("path", "payload", "status", "needle"),
    [
        ("/analyze-sentiment", {"text": ""}, 400, "empty"),
        ("/analyze-sentiment", {"text": "   "}, 400, "empty"),
        ("/analyze-sentiment", {"text": 42}, 400, ""),
        ("/analyze-sentiment", {"texts": []}, 400, "non-empty"),
        ("/analyze-sentiment", {"texts": ["a", 3]}, 400, ""),
        ("/analyze-sentiment", {}, 400, "exactly one"),
        ("/analyze-sentiment", {"text": "a", "texts": ["b"]}, 400, "exactly one"),
        ("/analyze-sentiment", {"texts": ["a"] * 9}, 413, "limit is 8"),
        ("/analyze-sentiment", {"text": "x" * 5001}, 413, "limit is 5000"),
        ("/analyze-sentiment", {"text": "a", "model": "nope"}, 404, "not served"),
        ("/analyze-sentiment", {"text": "a", "model": "tiny-embed"}, 400, "embedding model"),
        ("/embed", {"text": "a", "model": "tiny-sentiment"}, 400, "not embedding"),
        ("/v2/models/tiny-sentiment/infer", {"inputs": []}, 400, "exactly one tensor"),
        (
            "/v2/models/tiny-sentiment/infer",
            {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a"]}]},
            400,
            "holds 2 elements but 1 were sent",
        ),
        (
            "/v2/models/tiny-sentiment/infer",
            {"inputs": [{"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]}]},
            400,
            "BYTES",
        ),
        ("/v2/models/tiny-sentiment/infer", [1, 2], 400, "JSON object"),
    ],
)
def test_bad_input_is_a_clear_4xx(
    server: Server, path: str, payload: object, status: int, needle: str
) -> None:
    response = server.post(path, json=payload)
    assert response.status_code == status, response.text
    assert "error" in response.json()
    if needle:
        assert needle in response.json()["error"]


@pytest.mark.parametrize(
    "path", ["/analyze-sentiment", "/embed", "/v2/models/tiny-sentiment/infer"]
)
def test_malformed_json_and_oversized_bodies(server: Server, path: str) -> None:
    broken = server.post(
        path, content=b'{"text": "unterminated', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400, broken.text
    form = server.post(path, content=b"text=hi", headers={"content-type": "multipart/form-data"})
    assert form.status_code == 415 and "JSON" in form.json()["error"]
    huge = server.post(path, json={"text": "x" * 70_000})
    assert huge.status_code == 413 and "bytes" in huge.json()["error"]


def test_batches_larger_than_one_form_under_concurrent_load(server: Server) -> None:
    text = "a long enough review to cost the model some time " * 12
    with ThreadPoolExecutor(24) as pool:
        statuses = list(
            pool.map(
                lambda _: (
                    server.post(
                        "/analyze-sentiment", json={"text": text, "model": "big-batch"}
                    ).status_code
                ),
                range(96),
            )
        )
    assert statuses.count(200) == 96
    exposition = server.get("/metrics").text
    total, count = 0.0, 0.0
    for line in exposition.splitlines():
        if line.startswith(metrics.BATCH_SIZE) and 'model="big-batch"' in line:
            if line.startswith(f"{metrics.BATCH_SIZE}_sum"):
                total += float(line.rsplit(" ", 1)[1])
            elif line.startswith(f"{metrics.BATCH_SIZE}_count"):
                count += float(line.rsplit(" ", 1)[1])
    assert count > 0 and total / count > 1.0, (total, count)


def test_metrics_carry_model_variant_device_and_worker_labels(server: Server) -> None:
    server.post("/analyze-sentiment", json={"text": "hello"})
    exposition = server.get("/metrics").text
    for name in (
        metrics.INFERENCE_SECONDS,
        metrics.BATCH_SIZE,
        metrics.BATCH_TOKENS,
        metrics.QUEUE_WAIT_SECONDS,
        metrics.MODEL_LOAD_SECONDS,
        metrics.MODEL_INFO,
    ):
        pattern = (
            rf'^{name}\w*{{[^}}]*device="cpu"[^}}]*model="tiny-sentiment"[^}}]*'
            rf'variant="onnx-int8"[^}}]*worker="[12]"'
        )
        assert re.search(pattern, exposition, re.MULTILINE), name
    assert re.search(
        r'^predictor_model_info\{[^}]*sha256="[0-9a-f]{64}"[^}]*version="1"',
        exposition,
        re.MULTILINE,
    )
    assert "bentoml_service_request_total" in exposition


def _requests_counted(server: Server, endpoint: str, code: int) -> float:
    pattern = (
        rf'^bentoml_service_request_total{{endpoint="{re.escape(endpoint)}",'
        rf'http_response_code="{code}"[^}}]*}} ([0-9.e+]+)$'
    )
    found = re.findall(pattern, server.get("/metrics").text, re.MULTILINE)
    return sum(float(v) for v in found)


def test_fast_routes_keep_bentoml_validation_and_http_metrics(server: Server) -> None:
    """/analyze-sentiment and /embed skip BentoML's router and IO round trip (fastroutes.py),
    yet validate with BentoML's own input models and still count in BentoML's HTTP series,
    which the dashboards and the in-flight autoscaler read."""
    before = {
        (route, code): _requests_counted(server, route, code)
        for route in ("/analyze-sentiment", "/embed")
        for code in (200, 400)
    }
    for route in ("/analyze-sentiment", "/embed"):
        for _ in range(3):
            assert server.post(route, json={"text": "fine", "ignored": 1}).status_code == 200
        wrong = server.post(route, json={"texts": ["ok", 3]})
        assert wrong.status_code == 400
        assert wrong.json() == {
            "error": "texts.1: Input should be a valid string",
            "type": "BadRequest",
        }
        broken = server.post(
            route, content=b"{not json", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400 and broken.json()["error"].startswith("body: Invalid JSON")
        assert (
            server.post(route, json=["a list"]).json()["error"] == "body: Input should be an object"
        )
    for route in ("/analyze-sentiment", "/embed"):
        assert _requests_counted(server, route, 200) - before[route, 200] == 3
        assert _requests_counted(server, route, 400) - before[route, 400] == 3


def test_overload_is_a_fast_429_with_retry_after(server: Server) -> None:
    text = "slow text " * 200

    def call(_: int) -> httpx.Response:
        return server.post("/analyze-sentiment", json={"text": text, "model": "big-slow"})

    with ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(call, range(64)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    rejected = [r for r in responses if r.status_code == 429]
    assert rejected and statuses.count(200) >= 2
    assert all(int(r.headers["Retry-After"]) >= 1 for r in rejected)
    assert "overloaded" in rejected[0].json()["error"]
    fastest_reject = min(r.elapsed.total_seconds() for r in rejected)
    slowest_ok = max(r.elapsed.total_seconds() for r in responses if r.status_code == 200)
    assert fastest_reject < slowest_ok
    exposition = server.get("/metrics").text
    assert re.search(
        r'^predictor_rejected_total\{[^}]*model="big-slow"[^}]*reason="queue_full"'
        r"[^}]*\} [1-9]",
        exposition,
        re.MULTILINE,
    )


def test_placement_endpoint_names_worker_device_and_providers(server: Server) -> None:
    view = server.get("/placement").json()
    assert view["worker"] in (1, 2) and view["device"] == "cpu" and view["threads"] == 1
    models = {m["model"]: m for m in view["models"]}
    assert set(models) == {"tiny-sentiment", "tiny-embed", "big-batch", "big-slow"}
    assert models["tiny-sentiment"]["providers"] == ["CPUExecutionProvider"]
    assert all(m["ready"] and m["error"] is None for m in models.values())


def test_workers_serving_onnx_have_neither_torch_nor_transformers_loaded(server: Server) -> None:
    """Each live worker reports what its own sys.modules holds; both are asked."""
    seen: dict[int, dict] = {}
    deadline = time.monotonic() + 60
    while len(seen) < 2 and time.monotonic() < deadline:
        view = server.get("/placement").json()  # a new connection: any worker may answer
        seen[view["worker"]] = view["process"]
    assert set(seen) == {1, 2}, f"only worker(s) {sorted(seen)} answered in 60 s"
    for process in seen.values():
        assert process["frameworks"]["torch"] is None
        assert process["frameworks"]["transformers"] is None
        assert process["frameworks"]["onnxruntime"] and process["frameworks"]["tokenizers"]
        assert 50 < process["rss_mb"] <= process["peak_rss_mb"]


@pytest.mark.parametrize("endpoint", ["analyze", "oip"])
def test_the_load_tester_drives_the_live_predictor(server: Server, tmp_path, endpoint) -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    loadtest = Path(sys.executable).parent / "loadtest"
    result = subprocess.run(
        [
            str(loadtest),
            "run",
            "--host",
            server.url,
            "--endpoint",
            endpoint,
            "--model",
            "tiny-sentiment",
            "--scenario",
            "extreme",
            "--rate",
            "25",
            "--duration",
            "2",
            "--quiet",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["requests"] > 10 and summary["failures"] == 0 and summary["dropped"] == 0
    assert summary["latency_ms"]["p50"] < 1000


def test_binary_and_compressed_bodies_refuse_hostile_input_clearly(server: Server) -> None:
    import gzip
    import json
    import struct

    url = f"{server.url}/v2/models/tiny-sentiment/infer"
    raw = struct.pack("<I", 4) + b"good"
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "text",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    ).encode()
    binary = {"Content-Type": "application/octet-stream"}
    ok = httpx.post(
        url,
        content=header + raw,
        headers={**binary, "Inference-Header-Content-Length": str(len(header))},
    )
    assert ok.status_code == 200 and ok.json()["outputs"][0]["name"] == "logits"
    cases = [
        ({**binary, "Inference-Header-Content-Length": "99999"}, header + raw, 400),
        ({**binary, "Inference-Header-Content-Length": str(len(header))}, header + raw[:-1], 400),
        (binary, header + raw, 415),  # octet-stream without the header length
        ({"Content-Encoding": "gzip"}, gzip.compress(b"{" + b" " * 5_000_000 + b"}"), 413),
        ({"Content-Encoding": "gzip"}, b"not gzip at all", 400),
    ]
    for headers, body, status in cases:
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        assert response.status_code == status, (headers, response.text)
        assert "error" in response.json()
    after = server.post(
        url.removeprefix(server.url),
        json={
            "inputs": [
                {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["still serving"]}
            ]
        },
    )
    assert after.status_code == 200


def test_server_metadata_answers_at_v2_without_a_redirect(server: Server) -> None:
    response = httpx.get(f"{server.url}/v2", timeout=30, follow_redirects=False)
    assert response.status_code == 200, response.headers
    assert "binary_tensor_data" in response.json()["extensions"]


def test_a_lone_surrogate_fails_only_its_own_request(server: Server) -> None:
    body = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["\ud800"]}]}
    poisoned = json.dumps(body).encode()  # "\ud800" as JSON escapes it

    def good(i: int) -> httpx.Response:
        return server.post("/analyze-sentiment", json={"text": f"a fine sentence number {i}"})

    with ThreadPoolExecutor(16) as pool:
        goods = [pool.submit(good, i) for i in range(48)]
        bads = [
            pool.submit(
                httpx.post,
                f"{server.url}{path}",
                content=poisoned if "infer" in path else b'{"text": "\\ud800"}',
                headers={"content-type": "application/json"},
                timeout=30,
            )
            for path in ("/v2/models/tiny-sentiment/infer", "/embed", "/analyze-sentiment")
        ]
        statuses = [f.result().status_code for f in goods]
        refused = [f.result() for f in bads]
    assert statuses == [200] * 48
    oip, *bentoml_routes = refused
    assert oip.status_code == 400 and "lone surrogate" in oip.json()["error"], oip.text
    for response in bentoml_routes:  # BentoML's own JSON parser refuses the escape itself
        assert response.status_code == 400, response.text
        assert response.json()["type"] == "BadRequest" and "escape" in response.json()["error"]


def test_every_error_is_json_with_a_type(server: Server) -> None:
    cases = [
        ("GET", "/no-such-route", None, 404),
        ("GET", "/analyze-sentiment", None, 405),
        ("POST", "/analyze-sentiment", {"text": {"not": "a string"}}, 400),
        ("POST", "/analyze-sentiment", {"texts": "not a list"}, 400),
    ]
    for method, path, payload, status in cases:
        response = httpx.request(method, server.url + path, json=payload, timeout=30)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"].startswith("application/json"), path
        document = response.json()
        assert set(document) >= {"error", "type"} and document["error"], (path, document)
    upper = httpx.post(
        f"{server.url}/analyze-sentiment",
        content=b'{"text": "fine"}',
        headers={"Content-Type": "APPLICATION/JSON"},
        timeout=30,
    )
    assert upper.status_code == 200, upper.text


def test_a_client_deadline_that_cannot_be_met_is_a_fast_429(server: Server) -> None:
    def infer(parameters: dict) -> httpx.Response:
        body = {
            "parameters": parameters,
            "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hi"]}],
        }
        return server.post("/v2/models/big-batch/infer", json=body)

    refused = infer({"timeout": 1})  # one microsecond: no wait can be that short
    assert refused.status_code == 429 and "deadline" in refused.json()["error"], refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert infer({"timeout": 20_000_000}).status_code == 200
    bad = infer({"timeout": "soon"})
    assert bad.status_code == 400 and "microseconds" in bad.json()["error"]
    exposition = server.get("/metrics").text
    assert re.search(
        r'^predictor_rejected_total\{[^}]*model="big-batch"[^}]*reason="deadline"[^}]*\} [1-9]',
        exposition,
        re.MULTILINE,
    )


def test_a_body_that_stops_arriving_gets_408_not_a_hang(server: Server) -> None:
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(server.url)
    for path in ("/analyze-sentiment", "/v2/models/tiny-sentiment/infer"):
        with socket.create_connection((address.hostname, address.port), timeout=60) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: 100\r\n\r\n".encode()
                + b'{"text": "'
            )
            started = time.monotonic()
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        waited = time.monotonic() - started
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), answer[:200]
        assert json.loads(body)["type"] == "RequestTimeout"
        assert waited < 20  # body_timeout_s is 2 here; the request timeout would be 30
    assert server.post("/analyze-sentiment", json={"text": "after"}).status_code == 200


def _series_sum(exposition: str, name: str, *needles: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith(name + "{") and all(n in line for n in needles)
    )


def test_a_client_that_disconnects_takes_its_queued_texts_with_it(server: Server) -> None:
    def computed_and_cancelled() -> tuple[float, float]:
        exposition = server.get("/metrics").text
        model = 'model="big-batch"'
        return (
            _series_sum(exposition, metrics.BATCH_SIZE + "_sum", model),
            _series_sum(exposition, metrics.REQUESTS_TOTAL, model, 'outcome="cancelled"'),
        )

    computed_before, cancelled_before = computed_and_cancelled()
    texts = ["a long text that takes the big model some milliseconds " * 70] * 8

    def give_up_early(_: int) -> str:
        try:  # far less than the queue of 40 x 8 long texts takes: the client leaves
            return str(
                httpx.post(
                    f"{server.url}/analyze-sentiment",
                    json={"texts": texts, "model": "big-batch"},
                    timeout=0.25,
                ).status_code
            )
        except httpx.TimeoutException:
            return "gave up"

    with ThreadPoolExecutor(40) as pool:
        outcomes = list(pool.map(give_up_early, range(40)))
    assert outcomes.count("gave up") >= 10, outcomes
    deadline = time.monotonic() + 60  # until every worker has settled its queue
    while True:
        exposition = server.get("/metrics").text
        busy = _series_sum(exposition, metrics.REQUESTS_IN_PROGRESS, 'model="big-batch"')
        if not busy or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert busy == 0, "requests whose clients left are still in progress"
    computed, cancelled = computed_and_cancelled()
    assert cancelled > cancelled_before  # counted as cancelled, not as served
    sent_and_dropped = outcomes.count("gave up") * len(texts)
    # texts already in a running batch are finished; the rest were never computed
    assert computed - computed_before < 40 * len(texts) - sent_and_dropped / 2
    answer = server.post("/analyze-sentiment", json={"text": "still fine", "model": "big-batch"})
    assert answer.status_code == 200


def test_a_refused_body_leaves_no_traceback_in_the_log(server: Server) -> None:
    tracebacks = server.log.read_text().count("Traceback")
    answer = server.post(
        "/analyze-sentiment",
        content=b'{"text": "\xff\xfe"}',
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("body: Invalid JSON")
    # fastroutes.py refuses it without BentoML's ERROR traceback (which took ~30 lines each)
    after = server.post("/analyze-sentiment", json={"text": "fine"})
    assert after.status_code == 200
    assert server.log.read_text().count("Traceback") == tracebacks


def test_both_workers_publish_their_load_for_rebalancing(
    server: Server, server_control_dir: Path
) -> None:
    """Each worker of the live server maps the load board and keeps its own wait on it (a
    worker still loading or gone reads infinite, and no sibling hands it a client); an idle
    server's waits come back to about zero."""
    board = server_control_dir / "load"
    deadline = time.monotonic() + 60
    while True:
        raw = board.read_bytes()  # read only: a LoadBoard would publish into a worker's slot
        waits = [SLOT.unpack_from(raw, offset)[0] for offset in range(0, len(raw), SLOT.size)]
        if len(waits) == 2 and all(0 <= w < 0.5 for w in waits):
            break
        assert time.monotonic() < deadline, f"the workers' published waits: {waits}"
        time.sleep(0.05)
