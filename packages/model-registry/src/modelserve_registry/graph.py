"""The model as one graph: a Hugging Face encoder plus what turns its output into the answer
(the classifier it already has, or mean pooling, L2 normalisation and an optional linear
head). The same module is exported to ONNX and rebuilt from safetensors for the PyTorch
variants, so every variant computes exactly the same function."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from modelserve_registry.errors import ExportError
from modelserve_runtime.errors import UnsafeArtifact
from modelserve_runtime.manifest import GraphSpec, Task
from modelserve_runtime.torch_graph import WEIGHTS, ExportableModel, backbone_class

SOURCE_SPEC = "modelserve.json"
CONFIG = "config.json"
# Encoder families (config.json's model_type) that every variant is exported and verified for
# in the coverage matrix (tests/model_registry/test_coverage.py); others are refused up front.
SUPPORTED_FAMILIES = (
    "bert",
    "distilbert",
    "roberta",
    "xlm-roberta",
    "deberta-v2",
    "electra",
    "mpnet",
    "albert",
    "modernbert",
)


@dataclass
class SourceSpec:
    """What `modelserve.json` in a source folder says; inferred from config.json if absent."""

    task: Task
    labels: list[str]
    kind: str
    normalize: bool
    head_file: str | None
    max_sequence_length: int | None
    synthetic: bool = False
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def read_source_spec(source: Path) -> SourceSpec:
    if not (source / CONFIG).exists():
        raise ExportError(f"{source} is not a Hugging Face model folder (no {CONFIG})")
    config = json.loads((source / CONFIG).read_text())
    family = config.get("model_type")
    if family not in SUPPORTED_FAMILIES:
        raise ExportError(
            f"{source}: model type {family!r} is not supported; the families exported and "
            f"verified are {', '.join(SUPPORTED_FAMILIES)}"
        )
    declared = (
        json.loads((source / SOURCE_SPEC).read_text()) if (source / SOURCE_SPEC).exists() else {}
    )
    architectures = config.get("architectures") or []
    is_classifier = any(a.endswith("ForSequenceClassification") for a in architectures)
    task = declared.get("task", "text-classification" if is_classifier else "embedding")
    head_file = declared.get("head")
    if task == "text-classification" and not is_classifier and not head_file:
        raise ExportError(
            f"{source}: task text-classification needs a *ForSequenceClassification model or "
            f"a 'head' safetensors file named in {SOURCE_SPEC}"
        )
    labels = declared.get("labels")
    if labels is None and task == "text-classification" and is_classifier:
        id2label = config.get("id2label") or {}
        labels = [id2label[k] for k in sorted(id2label, key=int)]
    return SourceSpec(
        task=task,
        labels=list(labels or []),
        kind="sequence-classification" if is_classifier and not head_file else "mean-pooling",
        normalize=bool(declared.get("normalize", task == "embedding")),
        head_file=head_file,
        max_sequence_length=declared.get("max_sequence_length"),
        synthetic=bool(declared.get("synthetic", False)),
        description=declared.get("description", ""),
    )


def graph_spec(config: Any, kind: str, normalize: bool, head: bool) -> GraphSpec:
    return GraphSpec(
        kind=kind,  # type: ignore[arg-type]
        normalize=normalize,
        head=head,
        model_type=config.model_type,
        num_attention_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
    )


def load_reference(source: Path, spec: SourceSpec, attention: str = "eager") -> ExportableModel:
    """Build the FP32 reference from a source folder (safetensors only, never pickles).

    Eager attention is what ONNX Runtime's fusion passes recognise; SDPA exports a pattern
    they leave unfused."""
    if not any(source.glob("*.safetensors")):
        raise UnsafeArtifact(f"{source} has no .safetensors weights (pickled weights are refused)")
    backbone = backbone_class(spec.kind).from_pretrained(
        source, attn_implementation=attention, use_safetensors=True, dtype=torch.float32
    )
    head = None
    if spec.head_file:
        tensors = load_file(source / spec.head_file)
        weight, bias = tensors["weight"], tensors["bias"]
        head = nn.Linear(weight.shape[1], weight.shape[0])
        head.weight.data.copy_(weight)
        head.bias.data.copy_(bias)
        if spec.labels and len(spec.labels) != weight.shape[0]:
            raise ExportError(f"head has {weight.shape[0]} outputs but {len(spec.labels)} labels")
    graph = graph_spec(backbone.config, spec.kind, spec.normalize, head is not None)
    return ExportableModel(backbone, graph, head).eval()


def save_torch_variant(model: ExportableModel, folder: Path, dtype: torch.dtype) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.backbone.config.save_pretrained(folder)
    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    # Tied weights share storage; safetensors refuses shared tensors, so store copies.
    state = {k: v.clone() for k, v in state.items()}
    save_file(state, folder / WEIGHTS, metadata={"dtype": str(dtype)})
