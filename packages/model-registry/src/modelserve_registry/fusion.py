"""Getting ONNX Runtime's transformer optimizer to fuse the attention that transformers 5
exports, and counting what it fused.

Exported as transformers 5 writes it, no encoder got a single fused Attention node: its eager
attention scales the scores with a Mul (the mask is added through a second Mul, and the
optimizer follows the first one it finds), its mask comes from masking_utils as Where/Expand
nodes the optimizer does not know, and its Q/K/V reshapes say -1 heads, which the optimizer
cannot read. So, for the export only, the encoder gets:

- the classic additive mask, (1 - mask) x lowest float, built once in front of it (a 4D
  mask goes through masking_utils as is);
- an attention function that divides the scores by sqrt(head size), the pattern the
  optimizer was written for;
- a graph pass that writes the head count into those reshapes.

All three compute the same function: the parity checks compare every variant with the eager
reference, as before. Families whose encoder does not take a 4D mask or the attention
interface (their outputs would change) are exported as they are, and the manifest says that
their attention was left unfused."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel

from modelserve_runtime.torch_graph import ExportableModel

ATTENTION = "modelserve-onnx"
# Encoders checked to give the same outputs through the additive mask and ATTENTION, and to
# fuse that way (the export coverage matrix, tests/model_registry/test_coverage.py, proves
# it). DeBERTa-v2 builds its own mask and gave non-finite outputs; MPNet (relative position
# bias) and ModernBERT (rotary, local windows) stayed exact but unfused, so they are exported
# as they are.
ADDITIVE_MASK_FAMILIES = frozenset(
    {"bert", "roberta", "xlm-roberta", "electra", "distilbert", "albert"}
)
# The fused contrib ops a manifest reports.
FUSED_OPS = (
    "Attention",
    "QAttention",
    "MultiHeadAttention",
    "EmbedLayerNormalization",
    "SkipLayerNormalization",
    "BiasGelu",
    "FastGelu",
)


def classic_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **_: object,
) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' eager attention, with the scores divided by sqrt(head size) instead of
    multiplied by its inverse (a float rounding apart)."""
    scale = scaling if scaling is not None else query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) / (1.0 / scale)
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = nn.functional.softmax(scores, dim=-1)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


AttentionInterface.register(ATTENTION, classic_attention)


def additive_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """[batch, seq] of 0/1 -> [batch, 1, 1, seq]: 0 where attended, the lowest float where
    padded, in the Unsqueeze-Cast-Sub-Mul form the optimizer matches."""
    extended = attention_mask[:, None, None, :].to(torch.float32)
    return (1.0 - extended) * torch.finfo(torch.float32).min


@contextlib.contextmanager
def fusable_form(model: ExportableModel) -> Iterator[bool]:
    """While exporting: the encoder takes the additive mask and ATTENTION, where its family
    is known to give the same outputs that way (yields whether it does)."""
    if model.spec.model_type not in ADDITIVE_MASK_FAMILIES:
        yield False
        return
    backbone = cast(PreTrainedModel, model.backbone)
    backbone.set_attn_implementation(ATTENTION)
    model.backbone_mask = additive_mask
    try:
        yield True
    finally:
        backbone.set_attn_implementation("eager")  # the reference the variants are judged by
        model.backbone_mask = None


def name_head_count(path: Path, num_heads: int, head_size: int) -> int:
    """Rewrite, in place, the Q/K/V reshapes' shape [batch, seq, -1, head_size] to say
    num_heads instead of -1 (the same shape; the optimizer reads the head count there).
    Returns how many were rewritten."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    constants = {
        node.output[0]: numpy_helper.to_array(node.attribute[0].t)
        for node in graph.node
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value"
    }
    constants |= {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producer = {output: node for node in graph.node for output in node.output}

    def scalar(name: str) -> int | None:
        value = constants.get(name)
        return int(value.reshape(-1)[0]) if value is not None and value.size == 1 else None

    heads = "modelserve_num_heads"
    rewritten = 0
    for node in graph.node:
        concat = producer.get(node.input[1]) if node.op_type == "Reshape" else None
        if concat is None or concat.op_type != "Concat" or len(concat.input) != 4:
            continue
        if scalar(concat.input[2]) == -1 and scalar(concat.input[3]) == head_size:
            concat.input[2] = heads
            rewritten += 1
    if rewritten:
        graph.initializer.append(numpy_helper.from_array(np.array([num_heads], np.int64), heads))
        # the -1 constants nothing reads now (ONNX Runtime would warn about each, every load)
        read = {name for node in graph.node for name in node.input}
        unread = [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in read]
        for node in unread:
            graph.node.remove(node)
        onnx.save(model, str(path))
    return rewritten


def fused_ops(graph) -> dict[str, int]:
    """Counts of the fused contrib ops in an onnx GraphProto (zeros included)."""
    counts = collections.Counter(node.op_type for node in graph.node)
    return {op: counts.get(op, 0) for op in FUSED_OPS}
