"""Tokenization with the `tokenizers` library itself: truncation to the model's maximum
(special tokens kept) and padding to the batch's own longest text both happen in Rust, for
the whole batch in one call. transformers is never imported to serve a model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from modelserve_runtime.errors import IntegrityError

TOKENIZER_FILE = "tokenizer.json"


@dataclass
class Encoded:
    input_ids: np.ndarray
    attention_mask: np.ndarray
    truncated: list[bool]


def _pad_token(folder: Path) -> str | None:
    """The pad token as transformers saved it (a string, or {"content": ...} in older files)."""
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        path = folder / name
        if not path.exists():
            continue
        token = json.loads(path.read_text(encoding="utf-8")).get("pad_token")
        if isinstance(token, dict):
            token = token.get("content")
        if isinstance(token, str):
            return token
    return None


class TextTokenizer:
    """`encode(texts)`: int64 input ids and attention mask [batch, longest], and which texts
    were cut to `max_length` tokens."""

    def __init__(self, folder: Path, max_length: int) -> None:
        path = folder / TOKENIZER_FILE
        if not path.exists():
            raise IntegrityError(f"{folder}: no {TOKENIZER_FILE} (a fast tokenizer is required)")
        self.tokenizer = Tokenizer.from_file(str(path))
        pad_token = _pad_token(folder)
        pad_id = self.tokenizer.token_to_id(pad_token) if pad_token else None
        self.pad_id = int(pad_id or 0)
        self.pad_token = pad_token or "[PAD]"
        self.max_length = max_length
        self._fixed: dict[int, Tokenizer] = {}
        # The post-processor adds [CLS]/[SEP] (or <s>/</s>) after truncation, so a cut text
        # still ends with its closing special token, as the model was trained.
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token)

    def encode(self, texts: list[str]) -> Encoded:
        return self._encode(self.tokenizer, texts)

    def encode_fixed(self, texts: list[str], length: int) -> Encoded:
        """Every row exactly `length` tokens (benchmarks at a fixed shape), from a copy of
        the tokenizer: its padding settings are per object, and serving shares `tokenizer`."""
        if length not in self._fixed:
            fixed = Tokenizer.from_str(self.tokenizer.to_str())
            fixed.enable_truncation(length)
            fixed.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token, length=length)
            self._fixed[length] = fixed
        return self._encode(self._fixed[length], texts)

    @staticmethod
    def _encode(tokenizer: Tokenizer, texts: list[str]) -> Encoded:
        encodings = tokenizer.encode_batch_fast(texts)
        return Encoded(
            input_ids=np.asarray([e.ids for e in encodings], dtype=np.int64),
            attention_mask=np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
            truncated=[bool(e.overflowing) for e in encodings],
        )
