"""From a Hugging Face model folder to one folder per variant, each laid out exactly like a
pulled variant (tokenizer/ + model files), so validation runs the same loading code as the
predictor.

Path chosen on purpose: torch.onnx (legacy TorchScript exporter, dynamic batch and sequence
axes) plus ONNX Runtime's own transformer optimizer and quantizer. optimum's exporters only
know stock Hugging Face heads, while our graphs carry pooling and a trained head, and
optimum-onnx would pin transformers below 4.58."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer

from modelserve_registry import fusion, quantize
from modelserve_registry.errors import ExportError
from modelserve_registry.evaldata import PROBE_TEXTS
from modelserve_registry.graph import (
    SourceSpec,
    load_reference,
    read_source_spec,
    save_torch_variant,
)
from modelserve_runtime.inference import ONNX_FILE, TOKENIZER_DIR
from modelserve_runtime.manifest import Runtime, Variant
from modelserve_runtime.tokenization import TextTokenizer
from modelserve_runtime.torch_graph import ExportableModel

ONNX_OPSET = 17
ALL_VARIANTS = list(Variant)
OPTIMIZED = frozenset({Variant.ONNX_OPTIMIZED, Variant.ONNX_FP16, Variant.ONNX_INT8})

RUNTIMES: dict[Variant, Runtime] = {
    Variant.PYTORCH_FP32: Runtime(engine="torch", devices=["cpu", "cuda"]),
    Variant.PYTORCH_FP16: Runtime(
        engine="torch",
        devices=["cuda", "cpu"],
        note="meant for GPUs; runs on CPU for validation but without any speed-up",
    ),
    Variant.ONNX_FP32: Runtime(
        engine="onnxruntime",
        devices=["cpu", "cuda"],
        execution_providers=["CUDAExecutionProvider", "CPUExecutionProvider"],
    ),
    Variant.ONNX_OPTIMIZED: Runtime(
        engine="onnxruntime",
        devices=["cpu", "cuda"],
        execution_providers=["CUDAExecutionProvider", "CPUExecutionProvider"],
        note="ONNX Runtime transformer fusions (attention, skip layer norm, bias GELU)",
    ),
    Variant.ONNX_FP16: Runtime(
        engine="onnxruntime",
        devices=["cuda", "cpu"],
        execution_providers=["CUDAExecutionProvider", "CPUExecutionProvider"],
        note="fused graph in FP16 with FP32 inputs/outputs; no speed-up on CPU",
    ),
    Variant.ONNX_INT8: Runtime(
        engine="onnxruntime",
        devices=["cpu"],
        execution_providers=["CPUExecutionProvider"],
        note="dynamic quantization, u8 activations x s8 per-channel weights (x86 VNNI/AVX2)",
    ),
    Variant.ONNX_INT8_STATIC: Runtime(
        engine="onnxruntime",
        devices=["cpu"],
        execution_providers=["CPUExecutionProvider"],
        note="static quantization (QDQ): s8 per-channel weights, u8 activations with scales "
        f"calibrated on up to {quantize.CALIBRATION_TEXTS} texts (seeded sample); attention and "
        "feed-forward output MatMuls in float; a text's outputs do not depend on its batch",
    ),
}

Step = Callable[[str], None]


def quiet_third_party() -> None:
    """Our own progress display replaces transformers' bars and ORT's advice lines."""
    import logging

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization logs on the root


@dataclass
class ExportResult:
    spec: SourceSpec
    reference: ExportableModel
    folders: dict[Variant, Path]
    max_sequence_length: int
    output_dim: int
    fused_ops: dict[Variant, dict[str, int]]  # per ONNX variant whose graph was optimized


def runtime_for(result: ExportResult, variant: Variant) -> Runtime:
    """The variant's runtime entry, with what ONNX Runtime fused in its graph."""
    runtime = RUNTIMES[variant]
    fused = result.fused_ops.get(variant)
    if fused is None:
        return runtime
    notes = [runtime.note] if runtime.note else []
    if not fused["Attention"] + fused["QAttention"]:
        family = result.reference.spec.model_type
        notes.append(f"attention left unfused (ONNX Runtime does not fuse {family}'s attention)")
    return runtime.model_copy(update={"fused_ops": fused, "note": "; ".join(notes)})


def _max_length(tokenizer, config, spec: SourceSpec) -> int:
    if spec.max_sequence_length:
        return int(spec.max_sequence_length)
    positions = int(getattr(config, "max_position_embeddings", 512))
    if config.model_type in {"roberta", "xlm-roberta", "camembert"}:
        positions -= (config.pad_token_id or 0) + 1  # RoBERTa's positions start after padding
    elif config.model_type == "mpnet":
        positions -= 2  # so do MPNet's, after a padding index fixed at 1 whatever the config
    limit = int(getattr(tokenizer, "model_max_length", positions) or positions)
    return min(limit, positions)


def _export_onnx(model: ExportableModel, tokenizer, target: Path) -> None:
    sample = tokenizer(
        ["a short text", "a somewhat longer example sentence for tracing"],
        padding=True,
        return_tensors="pt",
    )
    output = (
        "logits" if model.spec.kind == "sequence-classification" or model.head else "embeddings"
    )
    axes = {0: "batch", 1: "sequence"}
    with fusion.fusable_form(model) as fused, warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (sample["input_ids"], sample["attention_mask"]),
            str(target),
            input_names=["input_ids", "attention_mask"],
            output_names=[output],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, output: {0: "batch"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    if fused:
        heads = model.spec.num_attention_heads
        fusion.name_head_count(target, heads, model.spec.hidden_size // heads)


def _optimize(source: Path, model: ExportableModel):
    from onnxruntime.transformers.optimizer import optimize_model

    return optimize_model(
        str(source),
        model_type="bert",
        num_heads=model.spec.num_attention_heads,
        hidden_size=model.spec.hidden_size,
    )


def export_variants(
    source: Path,
    work: Path,
    variants: list[Variant],
    step: Step = lambda _: None,
    calibration: list[str] | None = None,
) -> ExportResult:
    """Write each requested variant to `work/<variant>/`. `work` is scratch space;
    `calibration` holds the texts static INT8 is calibrated on (default: the probe texts)."""
    quiet_third_party()
    spec = read_source_spec(source)
    step("loading the FP32 reference")
    reference = load_reference(source, spec)
    tokenizer = AutoTokenizer.from_pretrained(source)
    max_length = _max_length(tokenizer, reference.backbone.config, spec)
    tokenizer_dir = work / TOKENIZER_DIR
    tokenizer.save_pretrained(tokenizer_dir)
    for stray in tokenizer_dir.glob("*"):
        if stray.suffix not in {".json", ".txt", ".model"}:
            stray.unlink()

    folders: dict[Variant, Path] = {}
    fused: dict[Variant, dict[str, int]] = {}
    needs_onnx = {v for v in Variant if v.engine == "onnxruntime"}
    raw_onnx = work / "raw" / ONNX_FILE
    optimized_onnx = work / "raw" / "optimized.onnx"
    if needs_onnx & set(variants):
        step("exporting to ONNX")
        raw_onnx.parent.mkdir(parents=True, exist_ok=True)
        _export_onnx(reference, tokenizer, raw_onnx)
    if {Variant.ONNX_OPTIMIZED, Variant.ONNX_INT8} & set(variants):
        step("optimizing the ONNX graph")
        _optimize(raw_onnx, reference).save_model_to_file(str(optimized_onnx))

    for variant in variants:
        folder = work / variant.value
        if folder.exists():
            shutil.rmtree(folder)
        step(f"writing {variant.value}")
        if variant is Variant.PYTORCH_FP32:
            save_torch_variant(reference, folder, torch.float32)
        elif variant is Variant.PYTORCH_FP16:
            save_torch_variant(reference, folder, torch.float16)
        else:
            folder.mkdir(parents=True)
            if variant is Variant.ONNX_FP32:
                shutil.copyfile(raw_onnx, folder / ONNX_FILE)
            elif variant is Variant.ONNX_OPTIMIZED:
                shutil.copyfile(optimized_onnx, folder / ONNX_FILE)
            elif variant is Variant.ONNX_FP16:
                half = _optimize(raw_onnx, reference)
                half.convert_float_to_float16(keep_io_types=True)
                half.save_model_to_file(str(folder / ONNX_FILE))
            elif variant is Variant.ONNX_INT8:
                quantize.dynamic_int8(optimized_onnx, folder / ONNX_FILE)
            elif variant is Variant.ONNX_INT8_STATIC:
                texts = quantize.calibration_sample(calibration or PROBE_TEXTS)
                step(f"calibrating {variant.value} on {len(texts)} texts")
                calibrating = TextTokenizer(tokenizer_dir, max_length)
                quantize.static_int8(raw_onnx, folder / ONNX_FILE, calibrating, texts)
            else:  # pragma: no cover - every Variant is handled above
                raise ExportError(f"no exporter for {variant}")
        shutil.copytree(tokenizer_dir, folder / TOKENIZER_DIR)
        folders[variant] = folder
        if variant in OPTIMIZED:
            import onnx

            graph = onnx.load(str(folder / ONNX_FILE), load_external_data=False).graph
            fused[variant] = fusion.fused_ops(graph)

    with torch.inference_mode():
        sample = tokenizer(["probe"], return_tensors="pt")
        output_dim = int(reference(sample["input_ids"], sample["attention_mask"]).shape[-1])
    return ExportResult(spec, reference, folders, max_length, output_dim, fused)
