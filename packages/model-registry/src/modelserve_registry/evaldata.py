"""Inputs for validation: a fixed set of probe texts (every export) and an optional labelled
CSV (`text` and `label` columns; labels as ids or as label names)."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from modelserve_registry.errors import ExportError
from modelserve_runtime.probes import PROBE_TEXTS

__all__ = ["PROBE_TEXTS", "LabelledTexts", "read_eval_csv", "seeded_sample"]

SAMPLE_SEED = 1786


@dataclass
class LabelledTexts:
    texts: list[str]
    labels: list[int]


def read_eval_csv(
    path: Path,
    label_names: list[str],
    limit: int | None = None,
    sample: int | None = None,
    seed: int = SAMPLE_SEED,
) -> LabelledTexts:
    """Read the first `limit` rows of a CSV with `text` and `label` columns, then keep a
    seeded random `sample` of them (the same rows on every run), in file order."""
    if not path.exists():
        raise ExportError(f"eval CSV {path} does not exist")
    by_name = {name.lower(): index for index, name in enumerate(label_names)}
    texts: list[str] = []
    labels: list[int] = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
            raise ExportError(f"{path} needs 'text' and 'label' columns, has {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            raw = (row["label"] or "").strip()
            if raw.isdigit():
                label = int(raw)
            elif raw.lower() in by_name:
                label = by_name[raw.lower()]
            else:
                raise ExportError(f"{path}:{line}: label {raw!r} is neither an id nor a label name")
            if label_names and not 0 <= label < len(label_names):
                raise ExportError(f"{path}:{line}: label {label} outside 0..{len(label_names) - 1}")
            texts.append((row["text"] or "").strip())
            labels.append(label)
            if limit is not None and len(texts) >= limit:
                break
    if not texts:
        raise ExportError(f"{path} holds no rows")
    if sample is not None and sample < len(texts):
        keep = seeded_sample(len(texts), sample, seed)
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    return LabelledTexts(texts, labels)


def seeded_sample(total: int, size: int, seed: int = SAMPLE_SEED) -> list[int]:
    """`size` of the indices 0..total-1, in order, the same ones on every run (all of them
    when size >= total)."""
    if size >= total:
        return list(range(total))
    return sorted(random.Random(seed).sample(range(total), size))
