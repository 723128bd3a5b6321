"""The export coverage matrix: for every encoder family the registry supports, a tiny
random-weight classifier and a plain encoder (embedding model), exported to every variant
and each checked against the FP32 reference by the real pipeline. What each case observed
must equal tests/model_registry/coverage.json, and the README's matrix is rendered from that
file, so the README cannot claim what no test saw. After a deliberate change:

    MODELSERVE_WRITE_COVERAGE=1 uv run pytest tests/model_registry -k coverage
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from modelserve_registry.errors import ExportError
from modelserve_registry.graph import SUPPORTED_FAMILIES
from modelserve_registry.pipeline import export_and_push
from modelserve_runtime.manifest import Variant
from modelserve_runtime.store import Registry

from .conftest import copy_tokenizer

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = Path(__file__).with_name("coverage.json")
README = ROOT / "README.md"
BEGIN, END = "<!-- coverage matrix: begin -->", "<!-- coverage matrix: end -->"
WRITE = os.environ.get("MODELSERVE_WRITE_COVERAGE") == "1"
HEADS = ("classifier", "encoder")
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
}
# Each family's own names for the tiny shape, where they differ from BERT's.
SHAPES: dict[str, dict] = {
    "distilbert": {"dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 64},
    "electra": {**TINY, "embedding_size": 32},
    "albert": {**TINY, "embedding_size": 16},
    "modernbert": {**TINY, "global_attn_every_n_layers": 1, "local_attention": 64},
}


def make_family_model(folder: Path, family: str, head: str) -> Path:
    """A random-weight `family` model with MiniLM's WordPiece tokenizer (30,522 ids, [PAD] 0):
    the tokenizer's kind does not change what the export has to handle."""
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    torch.manual_seed(0)
    shape = SHAPES.get(family, TINY) | {"vocab_size": 30522, "pad_token_id": 0}
    if family == "distilbert":
        shape["max_position_embeddings"] = 128
    labels = {"num_labels": 3} if head == "classifier" else {}
    config = AutoConfig.for_model(family, **shape, **labels)
    model_class = AutoModelForSequenceClassification if head == "classifier" else AutoModel
    model = model_class.from_config(config)
    if head == "classifier":  # logits of a few units, like a trained head, not ~0.01
        last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():
            last.weight.normal_(0.0, 1.0)
    model.save_pretrained(folder)
    copy_tokenizer(folder)
    return folder


def observe(family: str, head: str, tmp_path: Path) -> dict:
    source = make_family_model(tmp_path / "source", family, head)
    registry = Registry.open(str(tmp_path / "registry"))
    manifest = export_and_push(registry, source, f"{family}-{head}", list(Variant))
    assert manifest.task == ("text-classification" if head == "classifier" else "embedding")
    variants = {}
    for variant, entry in manifest.variants.items():
        assert entry.validation is not None
        fused = entry.runtime.fused_ops
        variants[variant.value] = {
            "verified": entry.validation.passed,
            **({"fused": {k: n for k, n in fused.items() if n}} if fused else {}),
        }
    return variants


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("family", SUPPORTED_FAMILIES)
def test_coverage_every_family_exports_every_variant_within_tolerance(
    family: str, head: str, tmp_path: Path
) -> None:
    observed = observe(family, head, tmp_path)
    assert all(v["verified"] for v in observed.values()), observed
    expected = json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}
    key = f"{family}/{head}"
    if WRITE:
        expected[key] = observed
        EXPECTED.write_text(json.dumps(dict(sorted(expected.items())), indent=1) + "\n")
    assert expected.get(key) == observed, f"{key} changed: run with MODELSERVE_WRITE_COVERAGE=1"


def render_matrix(results: dict) -> str:
    variants = [v.value for v in Variant]
    lines = [
        "| family | model | " + " | ".join(variants) + " | attention fused |",
        "|---|---|" + "---|" * len(variants) + "---|",
    ]
    for family in SUPPORTED_FAMILIES:
        for head in HEADS:
            found = results.get(f"{family}/{head}", {})
            cells = [
                "verified" if found.get(v, {}).get("verified") else "not verified" for v in variants
            ]
            fused = found.get("onnx-optimized", {}).get("fused", {})
            attention = f"{fused['Attention']} Attention nodes" if fused.get("Attention") else "no"
            model = "classifier" if head == "classifier" else "encoder (embeddings)"
            lines.append(f"| {family} | {model} | " + " | ".join(cells) + f" | {attention} |")
    return "\n".join(lines)


def test_coverage_matrix_in_the_readme_is_the_tests_results() -> None:
    results = json.loads(EXPECTED.read_text())
    assert set(results) == {f"{f}/{h}" for f in SUPPORTED_FAMILIES for h in HEADS}
    text = README.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    rendered = f"{head}{BEGIN}\n{render_matrix(results)}\n{END}{tail}"
    if WRITE:
        README.write_text(text := rendered)
    assert BEGIN in text and END in text, f"README.md lost its {BEGIN} / {END} markers"
    assert text == rendered, "run with MODELSERVE_WRITE_COVERAGE=1"


def test_coverage_an_unsupported_family_is_refused_before_any_work(tmp_path: Path) -> None:
    # config.json alone: the refusal must come from the family, before the weights are read
    (tmp_path / "config.json").write_text('{"model_type": "gpt2", "architectures": ["GPT2Model"]}')
    registry = Registry.open(str(tmp_path / "registry"))
    with pytest.raises(ExportError, match=r"model type 'gpt2' is not supported.*bert, distilbert"):
        export_and_push(registry, tmp_path, "decoder", list(Variant), scratch=tmp_path / "work")
    assert registry.models() == []
    assert not any((tmp_path / "work").iterdir())  # nothing exported, not even in scratch
