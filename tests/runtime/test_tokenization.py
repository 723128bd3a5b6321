"""The runtime's `tokenizers`-only encoding gives exactly the ids, mask and truncation flags
that transformers' tokenizer (what the exporter uses) gives, for both tokenizer families the
default models use: WordPiece (MiniLM) and byte-level BPE (RoBERTa)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from modelserve_registry.bootstrap import write_roberta_tokenizer
from modelserve_registry.head import minilm_folder
from modelserve_runtime.errors import IntegrityError
from modelserve_runtime.probes import PROBE_TEXTS
from modelserve_runtime.tokenization import TextTokenizer

TEXTS = [
    *PROBE_TEXTS,
    "",
    "   ",
    "word " * 600,
    "été café naïve 😀 ☕",
    "tab\tand\nnewline",
    "@user http://example.com #tag",
]


@pytest.fixture(params=["wordpiece", "bpe"])
def tokenizer_folder(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "bpe":
        write_roberta_tokenizer(tmp_path)
    else:
        AutoTokenizer.from_pretrained(minilm_folder()).save_pretrained(tmp_path)
    return tmp_path


@pytest.mark.parametrize("max_length", [16, 256])
def test_encoding_matches_transformers(tokenizer_folder: Path, max_length: int) -> None:
    reference = AutoTokenizer.from_pretrained(tokenizer_folder)
    ours = TextTokenizer(tokenizer_folder, max_length)
    assert ours.pad_id == reference.pad_token_id
    for start in range(0, len(TEXTS), 8):
        batch = TEXTS[start : start + 8]
        encoded = ours.encode(batch)
        theirs = reference(
            batch, padding="longest", truncation=True, max_length=max_length, return_tensors="np"
        )
        np.testing.assert_array_equal(encoded.input_ids, theirs["input_ids"])
        np.testing.assert_array_equal(encoded.attention_mask, theirs["attention_mask"])
        full = reference(batch, truncation=False, verbose=False)["input_ids"]
        assert encoded.truncated == [len(ids) > max_length for ids in full]
        assert encoded.input_ids.dtype == np.int64 and encoded.input_ids.shape[1] <= max_length


def test_a_folder_without_a_fast_tokenizer_is_refused(tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    with pytest.raises(IntegrityError, match=r"tokenizer\.json"):
        TextTokenizer(tmp_path, 128)


def test_fixed_length_encoding_pads_and_cuts_every_row_to_the_length(
    tokenizer_folder: Path,
) -> None:
    ours = TextTokenizer(tokenizer_folder, 256)
    fixed = ours.encode_fixed(["short", "word " * 100], 64)
    assert fixed.input_ids.shape == (2, 64)
    assert fixed.truncated == [False, True]
    assert fixed.attention_mask[0].sum() < 64 == fixed.attention_mask[1].sum()
    # the serving tokenizer keeps padding to the batch's own longest text
    assert ours.encode(["short"]).input_ids.shape[1] < 64
