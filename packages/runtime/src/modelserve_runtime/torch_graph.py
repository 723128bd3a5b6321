"""A PyTorch variant rebuilt from config + safetensors: the Hugging Face encoder plus what
turns its output into the answer (its classifier, or mean pooling, L2 normalisation and an
optional linear head). The registry exports this very module to ONNX, so every variant
computes the same function. Imported only when a PyTorch variant is loaded: it needs the
`torch` extra (torch, transformers' model classes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from modelserve_runtime.errors import IntegrityError
from modelserve_runtime.manifest import GraphSpec

WEIGHTS = "model.safetensors"


class ExportableModel(nn.Module):
    """(input_ids, attention_mask) -> logits [batch, labels] or embeddings [batch, dim]."""

    def __init__(self, backbone: nn.Module, spec: GraphSpec, head: nn.Linear | None) -> None:
        super().__init__()
        self.backbone = backbone
        self.spec = spec
        self.head = head
        # What the encoder is given for the 0/1 mask; the exporter swaps in an additive 4D
        # mask that ONNX Runtime's fusion recognises (the pooling keeps the 0/1 mask).
        self.backbone_mask: Callable[[torch.Tensor], torch.Tensor] | None = None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = self.backbone_mask(attention_mask) if self.backbone_mask else attention_mask
        if self.spec.kind == "sequence-classification":
            return self.backbone(input_ids=input_ids, attention_mask=mask).logits.float()
        hidden = self.backbone(input_ids=input_ids, attention_mask=mask)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        pooled = pooled.float()  # pooling and head in FP32 whatever the backbone's precision
        if self.spec.normalize:
            pooled = nn.functional.normalize(pooled, p=2.0, dim=-1)
        if self.head is not None:
            return nn.functional.linear(pooled, self.head.weight.float(), self.head.bias.float())
        return pooled


def backbone_class(
    kind: str,
) -> type[AutoModelForSequenceClassification] | type[AutoModel]:
    return AutoModelForSequenceClassification if kind == "sequence-classification" else AutoModel


def load_torch_variant(folder: Path, spec: GraphSpec, device: str = "cpu") -> ExportableModel:
    config = AutoConfig.from_pretrained(folder)
    try:
        backbone = backbone_class(spec.kind).from_config(config, attn_implementation="sdpa")
    except ValueError:  # a family without an SDPA path (DeBERTa-v2): the eager one is exact too
        backbone = backbone_class(spec.kind).from_config(config, attn_implementation="eager")
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
        raise IntegrityError(
            f"{folder}: weights do not match the graph: {real_missing or unexpected}"
        )
    return model.to(device).eval()
