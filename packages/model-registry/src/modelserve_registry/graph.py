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
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from modelserve_registry.errors import ExportError, UnsafeArtifact
from modelserve_registry.manifest import GraphSpec, Task

SOURCE_SPEC = "modelserve.json"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


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


class ExportableModel(nn.Module):
    """(input_ids, attention_mask) -> logits [batch, labels] or embeddings [batch, dim]."""

    def __init__(self, backbone: nn.Module, spec: GraphSpec, head: nn.Linear | None) -> None:
        super().__init__()
        self.backbone = backbone
        self.spec = spec
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.spec.kind == "sequence-classification":
            return self.backbone(input_ids=input_ids, attention_mask=attention_mask).logits.float()
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        pooled = pooled.float()  # pooling and head in FP32 whatever the backbone's precision
        if self.spec.normalize:
            pooled = nn.functional.normalize(pooled, p=2.0, dim=-1)
        if self.head is not None:
            return nn.functional.linear(pooled, self.head.weight.float(), self.head.bias.float())
        return pooled


def _backbone_class(kind: str) -> type:
    return AutoModelForSequenceClassification if kind == "sequence-classification" else AutoModel


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
    backbone = _backbone_class(spec.kind).from_pretrained(
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


def load_torch_variant(folder: Path, spec: GraphSpec, device: str = "cpu") -> ExportableModel:
    config = AutoConfig.from_pretrained(folder)
    backbone = _backbone_class(spec.kind).from_config(config, attn_implementation="sdpa")
    state = load_file(folder / WEIGHTS, device="cpu")
    head = None
    if spec.head:
        weight = state["head.weight"]
        head = nn.Linear(weight.shape[1], weight.shape[0])
    model = ExportableModel(backbone, spec, head)
    dtype = next(iter(state.values())).dtype
    model.to(dtype)
    # assign: the loaded tensors become the parameters (no copy into the randomly initialised
    # ones, which are then freed): resident memory ends at about one copy of the weights.
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    # Only buffers HF recreates itself (position ids) may be absent.
    real_missing = [k for k in missing if not k.endswith("position_ids")]
    if real_missing or unexpected:
        raise ExportError(f"{folder}: weights do not match the graph: {real_missing or unexpected}")
    return model.to(device).eval()
