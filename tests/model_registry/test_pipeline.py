"""Real exports of tiny models through every variant, checked against the FP32 reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelserve_registry import validation
from modelserve_registry.errors import ExportError, ValidationFailed
from modelserve_registry.evaldata import LabelledTexts
from modelserve_registry.pipeline import export_and_push
from modelserve_runtime.errors import UnsafeArtifact
from modelserve_runtime.inference import TextModel
from modelserve_runtime.manifest import Tolerance, Variant
from modelserve_runtime.store import Registry

EVAL = LabelledTexts(
    texts=["good", "bad", "fine I guess", "awful awful awful", "lovely day", "the bus is late"],
    labels=[2, 0, 1, 0, 2, 1],
)


def test_every_variant_of_a_classifier_exports_runs_and_matches(
    exported_store: Path, tmp_path: Path
) -> None:
    registry = Registry.open(str(exported_store))
    manifest = registry.manifest("tiny")
    assert set(manifest.variants) == set(Variant)
    assert manifest.task == "text-classification" and manifest.labels[0] == "negative"
    outputs = {}
    for variant, entry in manifest.variants.items():
        check = entry.validation
        assert check is not None and check.passed, (variant, check)
        assert check.samples > 20 and check.argmax_agreement is not None
        assert check.max_abs_diff <= check.tolerance.max_abs_diff
        model = TextModel(registry.pull("tiny", variant, tmp_path / variant.value))
        outputs[variant] = model.predict(["a pulled variant still answers", "yes"])
        assert outputs[variant].shape == (2, 3) and outputs[variant].dtype == np.float32
    reference = outputs[Variant.PYTORCH_FP32]
    for variant, output in outputs.items():
        assert (
            np.abs(output - reference).max()
            <= manifest.variants[variant].validation.tolerance.max_abs_diff
        )
    assert manifest.variants[Variant.PYTORCH_FP32].validation.max_abs_diff < 1e-4
    sizes = {v: e.size_bytes for v, e in manifest.variants.items()}
    assert sizes[Variant.ONNX_FP16] < 0.6 * sizes[Variant.ONNX_FP32]
    assert sizes[Variant.PYTORCH_FP16] < 0.6 * sizes[Variant.PYTORCH_FP32]
    assert sizes[Variant.ONNX_INT8] < 0.6 * sizes[Variant.ONNX_FP32]


def test_embedding_and_pooled_head_models_export_with_eval_scores(
    embedder_source: Path, head_source: Path, tmp_path: Path
) -> None:
    registry = Registry.open(str(tmp_path / "registry"))
    variants = [Variant.ONNX_FP32, Variant.ONNX_INT8]
    embed = export_and_push(registry, embedder_source, "embed", variants)
    assert embed.task == "embedding" and embed.embedding_dim == 32
    assert all(v.validation.min_cosine > 0.93 for v in embed.variants.values())
    head = export_and_push(registry, head_source, "head", variants, eval_data=EVAL)
    assert head.graph.head and head.graph.normalize and head.max_sequence_length == 64
    for entry in head.variants.values():
        assert entry.validation.eval_samples == len(EVAL.texts)
        assert 0.0 <= entry.validation.accuracy <= 1.0
        assert entry.validation.macro_f1 is not None
    # dynamic INT8 depends on batch-mates, so it is also scored one text per call
    single = head.variants[Variant.ONNX_INT8].validation.one_text_per_call
    assert single is not None and single.eval_samples == len(EVAL.texts)
    assert 0.0 <= single.accuracy <= 1.0 and single.passed
    assert head.variants[Variant.ONNX_FP32].validation.one_text_per_call is None
    pulled = TextModel(registry.pull("head", Variant.ONNX_FP32, tmp_path / "head"))
    long_text = "word " * 500
    encoded = pulled.encode(["short", long_text])
    assert encoded.truncated == [False, True]
    assert encoded.input_ids.shape[1] == 64  # padded to the longest, capped at the maximum
    assert pulled.encode(["a", "b c"]).input_ids.shape[1] < 64  # not padded to a fixed length


def test_a_variant_outside_tolerance_is_refused_unless_forced(
    classifier_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    strict = dict(validation.CLASSIFIER_TOLERANCES)
    strict["int8"] = Tolerance(max_abs_diff=1e-9, min_argmax_agreement=1.0)
    monkeypatch.setattr(validation, "CLASSIFIER_TOLERANCES", strict)
    registry = Registry.open(str(tmp_path / "registry"))
    with pytest.raises(ValidationFailed, match=r"onnx-int8: max \|diff\|"):
        export_and_push(registry, classifier_source, "strict", [Variant.ONNX_INT8])
    assert registry.models() == []  # nothing half-pushed
    forced = export_and_push(registry, classifier_source, "strict", [Variant.ONNX_INT8], force=True)
    assert forced.variants[Variant.ONNX_INT8].validation.passed is False


def test_sources_without_safetensors_or_config_are_refused(tmp_path: Path) -> None:
    registry = Registry.open(str(tmp_path / "registry"))
    with pytest.raises(ExportError, match=r"config\.json"):
        export_and_push(registry, tmp_path, "empty", [Variant.ONNX_FP32])
    (tmp_path / "config.json").write_text('{"model_type": "bert", "architectures": ["BertModel"]}')
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(UnsafeArtifact, match="safetensors"):
        export_and_push(registry, tmp_path, "pickled", [Variant.ONNX_FP32])


def test_one_pass_encoding_matches_the_tokenizers_own_truncation_and_padding(
    exported_store: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    model = TextModel(Registry.open(str(exported_store)).pull("tiny", "onnx-int8", tmp_path))
    texts = ["short", "a somewhat longer sentence here", "long " * 300, "ünïcödé ok?"]
    ours = model.encode(texts)
    exporter = AutoTokenizer.from_pretrained(tmp_path / "tokenizer")  # what export validated
    theirs = exporter(
        texts, padding="longest", truncation=True, max_length=model.max_length, return_tensors="np"
    )
    np.testing.assert_array_equal(ours.input_ids, theirs["input_ids"])
    np.testing.assert_array_equal(ours.attention_mask, theirs["attention_mask"])
    assert ours.truncated == [False, False, True, False]
