"""The default models: realistic tokenisation for the synthetic RoBERTa, the study's
architecture, and real bootstraps (one quick, the full one marked slow)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from modelserve_registry.bootstrap import (
    DEFAULT_ALIAS,
    FIRST_RUN_SAMPLE,
    _variants_to_build,
    bootstrap,
    write_roberta_tokenizer,
)
from modelserve_registry.cli import cli
from modelserve_registry.errors import ExportError
from modelserve_registry.head import minilm_folder
from modelserve_runtime.manifest import Variant
from modelserve_runtime.store import Registry


def test_synthetic_roberta_tokenizer_counts_like_a_real_bpe(
    tmp_path: Path, sp1786_val: Path
) -> None:
    write_roberta_tokenizer(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    with open(sp1786_val, newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)][:2000]
    lengths = np.array([len(ids) for ids in tokenizer(texts, verbose=False)["input_ids"]])
    # roberta-base's own tokenizer: median 21, p95 about 72 on this split (see notes)
    assert 18 <= np.median(lengths) <= 24
    assert 60 <= np.percentile(lengths, 95) <= 85
    encoded = tokenizer("Hello world")["input_ids"]
    assert encoded[0] == tokenizer.bos_token_id == 0 and encoded[-1] == tokenizer.eos_token_id == 2
    assert len(tokenizer) == 50261  # GPT-2 tokens + <s> <pad> </s> <unk> <mask>, no <|endoftext|>


def test_synthetic_roberta_has_the_study_architecture() -> None:
    from transformers import RobertaForSequenceClassification

    from modelserve_registry import bootstrap as module

    captured = {}

    class Stop(Exception):
        pass

    def fake_save(self, *args, **kwargs):  # stop before writing 500 MB
        captured["params"] = sum(p.numel() for p in self.parameters())
        captured["config"] = self.config
        raise Stop

    original = RobertaForSequenceClassification.save_pretrained
    RobertaForSequenceClassification.save_pretrained = fake_save
    try:
        with pytest.raises(Stop):
            module.build_roberta_synthetic(Path("/nonexistent-not-written"))
    finally:
        RobertaForSequenceClassification.save_pretrained = original
    config = captured["config"]
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (12, 768, 50265)
    assert 124e6 < captured["params"] < 126e6  # about 125M parameters, ~499 MB in FP32


@pytest.mark.data
def test_first_run_bootstrap_of_sentiment_minilm_scores_on_a_sample_and_is_idempotent(
    tmp_path: Path, sp1786_val: Path
) -> None:
    """What `predictor serve` runs on a fresh machine: the served variant only, validated on
    the seeded first-run sample."""
    registry = Registry.open(str(tmp_path / "registry"))
    (manifest,) = bootstrap(
        registry,
        tmp_path / "cache",
        names=["sentiment-minilm"],
        variants=[Variant.ONNX_INT8],
        eval_csv=sp1786_val,
        eval_sample=FIRST_RUN_SAMPLE,
    )
    assert registry.aliases("sentiment-minilm") == {DEFAULT_ALIAS: manifest.version}
    assert set(manifest.variants) == {Variant.ONNX_INT8}
    check = manifest.variants[Variant.ONNX_INT8].validation
    assert check.passed and check.eval_samples == FIRST_RUN_SAMPLE
    assert check.one_text_per_call is not None and check.one_text_per_call.passed
    assert check.accuracy > 0.6 and check.macro_f1 > 0.6
    assert manifest.max_sequence_length == 256 and manifest.graph.head
    steps: list[str] = []
    again = bootstrap(
        registry,
        tmp_path / "cache",
        names=["sentiment-minilm"],
        variants=[Variant.ONNX_INT8],
        step=lambda _name, message: steps.append(message),
    )
    assert again == [] and steps == ["already in the registry"]
    # Asking for one more variant means a new version holding both (versions are immutable).
    wanted = [Variant.ONNX_FP16]
    assert _variants_to_build(registry, "sentiment-minilm", wanted, rebuild=False) == [
        Variant.ONNX_FP16,
        Variant.ONNX_INT8,
    ]
    assert minilm_folder().exists()


def test_bootstrap_refuses_an_unknown_model_before_any_work(tmp_path: Path) -> None:
    registry = Registry.open(str(tmp_path / "registry"))
    with pytest.raises(ExportError, match="no default model named bert-huge"):
        bootstrap(registry, tmp_path / "cache", names=["bert-huge"])
    assert registry.models() == []


@pytest.mark.slow
def test_full_bootstrap_lists_three_models_with_every_variant(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    uri = str(tmp_path / "registry")
    assert cli(["--uri", uri, "bootstrap", "--all", "--json"]) == 0
    capsys.readouterr()
    assert cli(["--uri", uri, "list", "--json"]) == 0
    listed = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert set(listed) == {"sentiment-minilm", "minilm-embed", "roberta-base-synthetic"}
    for entry in listed.values():
        assert set(entry["variants"]) == {v.value for v in Variant}
        assert all(v["validation"]["passed"] for v in entry["variants"].values())
    assert listed["roberta-base-synthetic"]["synthetic"] is True
    assert cli(["--uri", uri, "verify"]) == 0
