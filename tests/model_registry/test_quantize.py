"""The two INT8 variants of a real (tiny) export: static INT8's outputs do not depend on what a
text is batched with, dynamic INT8's do; what static leaves in float; the calibration sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from modelserve_registry.quantize import CALIBRATION_TEXTS, calibration_sample
from modelserve_runtime.inference import ONNX_FILE, TextModel
from modelserve_runtime.manifest import Variant
from modelserve_runtime.probes import PROBE_TEXTS
from modelserve_runtime.store import Registry


def _alone_and_batched(exported_store: Path, variant: Variant, tmp_path: Path):
    folder = Registry.open(str(exported_store)).pull("tiny", variant.value, tmp_path / variant)
    model = TextModel(folder, device="cpu")
    texts = (PROBE_TEXTS * 4)[:32]  # short and long texts: the batch pads to the longest
    alone = np.concatenate([model.predict([t]) for t in texts])
    return alone, model.predict(texts), folder


def test_static_int8_answers_a_text_alone_as_in_a_batch_of_32(
    exported_store: Path, tmp_path: Path
) -> None:
    alone, batched, folder = _alone_and_batched(exported_store, Variant.ONNX_INT8_STATIC, tmp_path)
    np.testing.assert_allclose(alone, batched, rtol=0, atol=1e-5)
    graph = onnx.load(str(folder / ONNX_FILE)).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") > 0 and "DynamicQuantizeLinear" not in ops
    # the dynamic variant of the same export does depend on its batch: the check above can fail
    alone, batched, _ = _alone_and_batched(exported_store, Variant.ONNX_INT8, tmp_path)
    assert np.abs(alone - batched).max() > 1e-3


def test_static_int8_keeps_attention_and_feed_forward_output_in_float(
    exported_store: Path, tmp_path: Path
) -> None:
    folder = Registry.open(str(exported_store)).pull("tiny", "onnx-int8-static", tmp_path)
    graph = onnx.load(str(folder / ONNX_FILE)).graph
    producer = {output: node for node in graph.node for output in node.output}
    matmuls = [n for n in graph.node if n.op_type == "MatMul"]
    quantized = [n for n in matmuls if producer.get(n.input[1], n).op_type == "DequantizeLinear"]
    # per layer of the tiny BERT (2 layers): Q, K, V, attention output and FFN input quantized;
    # the two attention products and the FFN output left in float
    assert len(matmuls) == 2 * 8 and len(quantized) == 2 * 5


def test_the_calibration_sample_is_bounded_and_the_same_on_every_run() -> None:
    texts = [f"text {i}" for i in range(1000)]
    sample = calibration_sample(texts)
    assert len(sample) == CALIBRATION_TEXTS and sample == calibration_sample(texts)
    assert sample == sorted(sample, key=texts.index)  # in the source's order
    assert calibration_sample(texts[:10]) == texts[:10]


@pytest.mark.slow
def test_roberta_base_synthetic_exports_to_static_int8_within_tolerance(tmp_path: Path) -> None:
    from modelserve_registry.bootstrap import build_roberta_synthetic
    from modelserve_registry.pipeline import export_and_push

    build_roberta_synthetic(tmp_path / "source")
    registry = Registry.open(str(tmp_path / "registry"))
    variants = [Variant.ONNX_FP32, Variant.ONNX_INT8_STATIC]
    manifest = export_and_push(registry, tmp_path / "source", "roberta", variants)  # or refused
    fp32, static = (manifest.variants[v] for v in variants)
    assert static.validation is not None and static.validation.passed
    # 125M parameters: int8 weights but for the 12 feed-forward outputs (28M kept in float)
    assert static.size_bytes < 0.5 * fp32.size_bytes, (static.size_bytes, fp32.size_bytes)
