"""The model as every peer serves it, with the predictor's own files: `model.onnx` and the
tokenizer of a pulled registry variant (PEER_MODEL_DIR), the labels and maximum length from
its manifest.json. The same work per text as the predictor: the text cut to 12 characters a
token before tokenizing, truncation to the model's maximum, padding to the batch's longest,
softmax over the logits."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

CHARS_PER_TOKEN_BOUND = 12  # the predictor's cut before tokenizing (models.py)


def model_dir() -> Path:
    folder = os.environ.get("PEER_MODEL_DIR")
    if not folder or not (Path(folder) / "model.onnx").exists():
        raise SystemExit("PEER_MODEL_DIR must name a pulled variant folder with model.onnx")
    return Path(folder)


def threads() -> int:
    """ONNX Runtime intra-op threads: PEER_THREADS, else every core (as the predictor gives
    its one worker)."""
    return int(os.environ.get("PEER_THREADS") or len(os.sched_getaffinity(0)))


class Classifier:
    def __init__(self, folder: Path | None = None, intra_op_threads: int | None = None) -> None:
        folder = folder or model_dir()
        manifest = json.loads((folder / "manifest.json").read_text())
        self.labels: list[str] = manifest["labels"]
        self.max_length: int = manifest["max_sequence_length"]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer" / "tokenizer.json"))
        config = json.loads((folder / "tokenizer" / "tokenizer_config.json").read_text())
        pad = config.get("pad_token") or "[PAD]"
        pad = pad["content"] if isinstance(pad, dict) else pad
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id(pad) or 0, pad_token=pad)
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads or threads()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(folder / "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.output = self.session.get_outputs()[0].name

    def __call__(self, texts: list[str]) -> list[dict]:
        cut = [t[: self.max_length * CHARS_PER_TOKEN_BOUND] for t in texts]
        encodings = self.tokenizer.encode_batch_fast(cut)
        feeds = {
            "input_ids": np.asarray([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
        }
        logits = self.session.run([self.output], feeds)[0]
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        scores = shifted / shifted.sum(axis=1, keepdims=True)
        return [
            {
                "label": self.labels[int(row.argmax())],
                "scores": {
                    label: round(float(p), 6) for label, p in zip(self.labels, row, strict=True)
                },
            }
            for row in scores
        ]
