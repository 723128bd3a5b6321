"""Request bodies: texts from a CSV column (or a small built-in set), shaped for the
predictor's /analyze-sentiment or the Open Inference Protocol infer route."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

from modelserve_loadtest.errors import BadArguments

BUILT_IN = [
    "I love this product, it works perfectly!",
    "This is the worst service I have ever experienced.",
    "The package arrived on Tuesday.",
    "Not bad at all, though the battery could last longer.",
    "Thanks so much for the quick reply, that solved it :)",
    "@airline my flight got cancelled again and nobody tells us anything #fail",
    "The hotel staff were friendly and the breakfast was excellent.",
    "Honestly? Overrated.",
]


def read_texts(path: str | None, column: str = "text", limit: int = 10_000) -> list[str]:
    if path is None:
        return list(BUILT_IN)
    file = Path(path)
    if not file.exists():
        raise BadArguments(f"texts file {file} does not exist")
    with open(file, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or column not in reader.fieldnames:
            raise BadArguments(f"{file} has no column {column!r} (has {reader.fieldnames})")
        texts = [row[column].strip() for row in itertools.islice(reader, limit)]
        texts = [text for text in texts if text]
    if not texts:
        raise BadArguments(f"{file} holds no non-empty {column!r} values")
    return texts


# oip-batched: the OIP body with the batch dimension, shape [1, 1], as Triton's batched
# models (max_batch_size > 0) take one text
ENDPOINTS = ("analyze", "analyze-list", "oip", "oip-batched")


def route(endpoint: str, model: str | None) -> str:
    if endpoint in ("analyze", "analyze-list"):
        return "/analyze-sentiment"
    if endpoint in ("oip", "oip-batched"):
        if not model:
            raise BadArguments("--endpoint oip needs --model")
        return f"/v2/models/{model}/infer"
    raise BadArguments(f"unknown endpoint {endpoint!r}: use one of {', '.join(ENDPOINTS)}")


def bodies(texts: list[str], endpoint: str, model: str | None) -> list[dict]:
    if endpoint in ("oip", "oip-batched"):
        shape = [1, 1] if endpoint == "oip-batched" else [1]
        return [
            {"inputs": [{"name": "text", "shape": shape, "datatype": "BYTES", "data": [t]}]}
            for t in texts
        ]
    extra = {"model": model} if model else {}
    if endpoint == "analyze-list":
        # one text as a one-element list: the body a batching server's list API takes
        # (BentoML's batchable APIs); the predictor answers it like {"text": ...}
        return [{"texts": [t], **extra} for t in texts]
    return [{"text": t, **extra} for t in texts]
