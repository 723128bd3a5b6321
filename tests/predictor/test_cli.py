"""`predictor serve`'s first-run decisions and `predictor wait-for-models`, against a real
registry holding one tiny model in onnx-int8."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelserve_predictor.cli import _missing_variants, cli
from modelserve_predictor.plan import worker_plans
from modelserve_predictor.settings import ModelConfig, load_settings
from modelserve_registry.pipeline import export_and_push
from modelserve_runtime.manifest import Variant
from modelserve_runtime.store import Registry
from tests.model_registry.conftest import make_classifier


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    root = tmp_path_factory.mktemp("cli")
    store = Registry.open(str(root / "registry"))
    manifest = export_and_push(store, make_classifier(root / "clf"), "tiny", [Variant.ONNX_INT8])
    store.tag("tiny", manifest.version, "production")
    return store


def _missing(registry: Registry, *refs: str) -> dict:
    settings = load_settings({"models": [ModelConfig.parse(r) for r in refs], "gpus": []})
    return _missing_variants(settings, registry, worker_plans(settings))


def test_only_unpinned_refs_lacking_the_served_variant_are_built(registry: Registry) -> None:
    assert _missing(registry, "tiny", "tiny@production") == {}  # CPU default: onnx-int8
    assert _missing(registry, "tiny=onnx-fp16") == {"tiny": {Variant.ONNX_FP16}}
    assert _missing(registry, "absent") == {"absent": {Variant.ONNX_INT8}}
    # a pinned version or another alias is the user's to build, never rebuilt here
    assert _missing(registry, "tiny:7=onnx-fp16", "tiny@staging=onnx-fp32") == {}


def test_wait_for_models_returns_once_present_and_fails_naming_what_is_missing(
    registry: Registry, capsys: pytest.CaptureFixture
) -> None:
    uri = str(Path(registry.location))
    cpu = ["wait-for-models", "--registry-uri", uri, "--gpus", ""]
    assert cli([*cpu, "--model", "tiny"]) == 0
    code = cli([*cpu, "--model", "tiny=onnx-fp16", "--timeout", "0", "--interval", "0.01"])
    assert code == 3
    assert "tiny onnx-fp16" in capsys.readouterr().err
