"""The version manifest: what a pushed version holds, how to run it, and how well it matched
the FP32 reference. Stored as JSON next to the content-addressed blobs it names."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_SCHEMA_VERSION = 1

Task = Literal["text-classification", "embedding"]


class Variant(StrEnum):
    PYTORCH_FP32 = "pytorch-fp32"
    PYTORCH_FP16 = "pytorch-fp16"
    ONNX_FP32 = "onnx-fp32"
    ONNX_OPTIMIZED = "onnx-optimized"
    ONNX_FP16 = "onnx-fp16"
    ONNX_INT8 = "onnx-int8"
    ONNX_INT8_STATIC = "onnx-int8-static"

    @property
    def engine(self) -> Literal["torch", "onnxruntime"]:
        return "torch" if self.value.startswith("pytorch") else "onnxruntime"

    @property
    def precision(self) -> Literal["fp32", "fp16", "int8"]:
        if self.value.endswith("fp16"):
            return "fp16"
        if "int8" in self.value:
            return "int8"
        return "fp32"


REFERENCE_VARIANT = Variant.PYTORCH_FP32


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileEntry(_Frozen):
    """One file of a variant or tokenizer: its path inside a pulled folder, and its blob."""

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class Runtime(_Frozen):
    engine: Literal["torch", "onnxruntime"]
    devices: list[Literal["cpu", "cuda"]]
    execution_providers: list[str] = Field(
        default_factory=list, description="ONNX Runtime providers, best first."
    )
    note: str = ""
    fused_ops: dict[str, int] = Field(
        default_factory=dict,
        description="ONNX Runtime fused ops in the graph (Attention, SkipLayerNormalization...)",
    )


class Tolerance(_Frozen):
    max_abs_diff: float = Field(description="per unit of output scale: max(1, max |reference|)")
    min_argmax_agreement: float | None = None
    min_cosine: float | None = None
    max_accuracy_drop: float | None = None


class Validation(_Frozen):
    """Figures from comparing a variant with the FP32 PyTorch reference on the same inputs."""

    reference: Variant = REFERENCE_VARIANT
    samples: int
    max_abs_diff: float
    mean_abs_diff: float
    argmax_agreement: float | None = None
    decisive_agreement: float | None = Field(
        default=None,
        description="argmax agreement where the reference margin exceeds the "
        "tolerance band; what the check uses",
    )
    min_cosine: float | None = None
    eval_samples: int = 0
    accuracy: float | None = None
    macro_f1: float | None = None
    tolerance: Tolerance
    passed: bool
    failures: list[str] = Field(default_factory=list)
    one_text_per_call: Validation | None = Field(
        default=None,
        description="the same check with one text per call, for variants whose outputs "
        "depend on their batch-mates (dynamic INT8 quantization scales per batch); "
        "`passed` requires both",
    )


class VariantManifest(_Frozen):
    variant: Variant
    files: list[FileEntry]
    runtime: Runtime
    validation: Validation | None = None

    @property
    def size_bytes(self) -> int:
        return sum(entry.size for entry in self.files)


class GraphSpec(_Frozen):
    """How the exported graph is built from the Hugging Face model: the same recipe for the
    PyTorch variants (rebuilt from config + safetensors) and the ONNX export."""

    kind: Literal["sequence-classification", "mean-pooling"]
    normalize: bool = False
    head: bool = False
    model_type: str
    num_attention_heads: int
    hidden_size: int


class ModelManifest(_Frozen):
    schema_version: int = MANIFEST_SCHEMA_VERSION
    name: str
    version: int
    created_at: dt.datetime
    task: Task
    labels: list[str] = Field(default_factory=list)
    embedding_dim: int | None = None
    max_sequence_length: int
    graph: GraphSpec
    tokenizer_files: list[FileEntry]
    variants: dict[Variant, VariantManifest]
    synthetic: bool = False
    description: str = ""
    source: dict[str, str] = Field(default_factory=dict)

    def variant(self, variant: Variant | str) -> VariantManifest:
        from modelserve_runtime.errors import NotFound

        try:
            return self.variants[Variant(variant)]
        except (KeyError, ValueError):
            have = ", ".join(sorted(v.value for v in self.variants))
            raise NotFound(
                f"{self.name}:{self.version} has no variant {str(variant)!r} (it has: {have})"
            ) from None

    @property
    def blobs(self) -> set[str]:
        digests = {entry.sha256 for entry in self.tokenizer_files}
        for variant in self.variants.values():
            digests.update(entry.sha256 for entry in variant.files)
        return digests
