"""The peers of benchmarks/peers/: a real peer server, started in its own uv project as the
comparison starts it, loads the predictor's own pulled files and answers what the predictor's
runtime computes for the same texts."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from benchmarks import serving
from benchmarks.peers import compare
from modelserve_predictor.models import CHARS_PER_TOKEN_BOUND
from modelserve_runtime.inference import TextModel
from tests.tools import require_peer_environment

TEXTS = ["I love it", "worst purchase ever", "the parcel came on Tuesday", "meh", "ok " * 900]


@pytest.mark.skipif(shutil.which("uv") is None, reason="the peers run in their own uv projects")
def test_the_plain_peer_answers_what_the_predictors_runtime_computes(
    tmp_path: Path, e2e_registry: Path
) -> None:
    require_peer_environment(compare.PEERS / "plain")
    folder = compare.model_folder("tiny-sentiment", str(e2e_registry), tmp_path / "cache")
    system = compare.systems(folder)["plain"]
    system.env["UV_OFFLINE"] = "1"  # its environment is there: nothing to fetch
    serving.start(system, tmp_path / "logs", timeout_s=240)
    try:
        rows = [
            httpx.post(f"{system.host}/analyze-sentiment", json={"text": t}, timeout=30).json()
            for t in TEXTS
        ]
        refused = httpx.post(f"{system.host}/analyze-sentiment", json={"txt": "x"}, timeout=30)
        labelled = compare.labels(system, TEXTS[:2])
        texts_csv = tmp_path / "texts.csv"
        texts_csv.write_text("text\n" + "".join(f'"{t}"\n' for t in TEXTS[:4]))
        # one harness step, as the comparison measures each: load, latency and who used the CPU
        step = serving.measured_run(
            system, tmp_path / "step", rate=10, duration_s=2, texts=texts_csv, seed=1
        )
    finally:
        serving.stop(system)
    assert refused.status_code == 400
    assert labelled == [r["results"][0]["label"] for r in rows[:2]]
    assert step["requests"] >= 5 and step["failure_rate"] == 0 and step["p99_ms"] > 0
    assert step["cores_server"] > 0 and step["cores_generator"] > 0
    model = TextModel(folder)
    labels = model.manifest.labels
    for text, row in zip(TEXTS, rows, strict=True):
        # the predictor's own cut before tokenizing: the peer must do the same work per text
        logits = model.predict([text[: model.max_length * CHARS_PER_TOKEN_BOUND]])[0]
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        (answer,) = row["results"]
        assert answer["label"] == labels[int(expected.argmax())]
        assert [answer["scores"][label] for label in labels] == pytest.approx(expected, abs=1e-5)


def test_every_system_gets_its_port_and_the_peers_their_own_project(tmp_path: Path) -> None:
    found = compare.systems(tmp_path)
    peers = {"plain", "bentoml-batchable", "litserve", "ray-serve", "pytriton"}
    assert {"predictor-1w", "predictor-2w", "predictor-2w-wait60", *peers} <= set(found)
    # the predictor as an operator sets it for a 100 ms SLO: a 60 ms admission budget
    assert '"max_queue_wait_ms": 60.0' in found["predictor-2w-wait60"].env["PREDICTOR_MODELS"]
    assert found["predictor-2w-wait60"].port != found["predictor-2w"].port
    for name in peers:
        system = found[name]
        assert str(system.port) in system.command and "{port}" not in " ".join(system.command)
        assert system.cwd == compare.PEERS / name and (system.cwd / "uv.lock").exists()
        assert system.env["PEER_MODEL_DIR"] == str(tmp_path)
    assert found["bentoml-batchable"].endpoint == "analyze-list"
    triton = found["pytriton"]  # Triton's KServe v2 route, the batch dimension in the shape
    assert (triton.endpoint, triton.model) == ("oip-batched", "sentiment")
    assert triton.ready_path == "/v2/models/sentiment/ready"
