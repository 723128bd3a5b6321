"""INT8 variants, both with ONNX Runtime's quantizer: dynamic (activation scales computed per
batch at run time) and static (scales calibrated once at export, QDQ format). Static is what
makes a text's outputs independent of its batch: under dynamic quantization 5% of
sentiment-minilm's labels on Sp1786 changed between batches of 32 and one text per call."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelserve_registry.evaldata import seeded_sample
from modelserve_runtime.tokenization import TextTokenizer

CALIBRATION_TEXTS = 256  # at most: a seeded sample of the eval CSV, else the probe texts


def dynamic_int8(optimized: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel s8 weights kept accuracy far better than per-tensor in our parity runs;
    # DefaultTensorType lets the quantizer type the fused graph's contrib ops.
    quantize_dynamic(
        str(optimized),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def calibration_sample(texts: list[str]) -> list[str]:
    """At most CALIBRATION_TEXTS of `texts`, the same ones on every run."""
    return [texts[i] for i in seeded_sample(len(texts), CALIBRATION_TEXTS)]


def _float_matmuls(graph) -> list[str]:
    """The MatMuls static INT8 leaves in float: the attention's (activation x activation:
    quantizing the scores cost sentiment-minilm 0.65 accuracy points on Sp1786 validation)
    and the feed-forward output, whose GELU input has outliers one calibrated scale cannot
    hold (with it quantized: 2.3 points on a 512-text sample, 0.19 on all of validation)."""
    weights = {init.name for init in graph.initializer}
    producer = {output: node for node in graph.node for output in node.output}

    def after_gelu(name: str, depth: int = 4) -> bool:
        node = producer.get(name)
        if node is None or depth == 0:
            return False
        if node.op_type in {"Erf", "Tanh", "Gelu", "FastGelu", "BiasGelu"}:
            return True
        return any(after_gelu(i, depth - 1) for i in node.input)

    return [
        n.name
        for n in graph.node
        if n.op_type == "MatMul" and (n.input[1] not in weights or after_gelu(n.input[0]))
    ]


def static_int8(raw: Path, target: Path, tokenizer: TextTokenizer, texts: list[str]) -> None:
    """Static INT8: QDQ, s8 per-channel weights, u8 activations whose scales are calibrated
    once on `texts` (so a text's outputs never depend on what it is batched with)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class OneTextAtATime(CalibrationDataReader):
        def __init__(self) -> None:
            self.encoded = (tokenizer.encode([text]) for text in texts)

        def get_next(self) -> dict[str, np.ndarray] | None:
            encoded = next(self.encoded, None)
            if encoded is None:
                return None
            return {"input_ids": encoded.input_ids, "attention_mask": encoded.attention_mask}

    prepared = target.with_name("prepared.onnx")
    quant_pre_process(str(raw), str(prepared), skip_symbolic_shape=True)
    graph = onnx.load(str(prepared)).graph
    kept_in_float = _float_matmuls(graph)
    quantize_static(
        str(prepared),
        str(target),
        OneTextAtATime(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        weight_type=QuantType.QInt8,
        activation_type=QuantType.QUInt8,
        calibrate_method=CalibrationMethod.MinMax,
        op_types_to_quantize=["MatMul", "Gather"],  # Gather: the embedding tables, 8-bit
        nodes_to_exclude=kept_in_float,
        # a moving average of each batch's min/max: one outlier text does not set the scale
        extra_options={"CalibMovingAverage": True, "WeightSymmetric": True},
    )
    prepared.unlink()
