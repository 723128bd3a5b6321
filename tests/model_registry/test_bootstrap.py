"""The default models: realistic tokenisation for the synthetic RoBERTa, the study's
architecture, and real bootstraps (one quick, the full one marked slow)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from modelserve_registry.bootstrap import DEFAULT_ALIAS, bootstrap, write_roberta_tokenizer
from modelserve_registry.cli import cli
from modelserve_registry.head import minilm_folder
from modelserve_registry.manifest import Variant
from modelserve_registry.store import Registry


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
def test_bootstrap_sentiment_minilm_scores_on_sp1786_and_is_idempotent(
    tmp_path: Path, sp1786_val: Path
) -> None:
    registry = Registry.open(str(tmp_path / "registry"))
    variants = [Variant.ONNX_FP32, Variant.ONNX_INT8]
    (manifest,) = bootstrap(
        registry,
        tmp_path / "cache",
        names=["sentiment-minilm"],
        variants=variants,
        eval_csv=sp1786_val,
        eval_limit=400,
    )
    assert registry.aliases("sentiment-minilm") == {DEFAULT_ALIAS: manifest.version}
    for variant in variants:
        check = manifest.variants[variant].validation
        assert check.passed and check.eval_samples == 400
        assert check.accuracy > 0.55 and check.macro_f1 > 0.5
    assert manifest.max_sequence_length == 256 and manifest.graph.head
    assert bootstrap(registry, tmp_path / "cache", names=["sentiment-minilm"]) == []
    assert minilm_folder().exists()


@pytest.mark.slow
def test_full_bootstrap_lists_three_models_with_every_variant(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    uri = str(tmp_path / "registry")
    assert cli(["--uri", uri, "bootstrap", "--json"]) == 0
    capsys.readouterr()
    assert cli(["--uri", uri, "list", "--json"]) == 0
    listed = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert set(listed) == {"sentiment-minilm", "minilm-embed", "roberta-base-synthetic"}
    for entry in listed.values():
        assert set(entry["variants"]) == {v.value for v in Variant}
        assert all(v["validation"]["passed"] for v in entry["variants"].values())
    assert listed["roberta-base-synthetic"]["synthetic"] is True
    assert cli(["--uri", uri, "verify"]) == 0
