"""Inputs for validation: a fixed set of probe texts (every export) and an optional labelled
CSV (`text` and `label` columns; labels as ids or as label names)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from modelserve_registry.errors import ExportError

PROBE_TEXTS = [
    "I love this product, it works perfectly!",
    "This is the worst service I have ever experienced.",
    "The package arrived on Tuesday.",
    "meh",
    "Not bad at all, though the battery could last longer.",
    "Absolutely terrible. Broke after two days and support never answered my emails.",
    "ok",
    "The update fixed the crash but now the app drains my battery twice as fast.",
    "Best purchase of the year!!! Highly recommend to anyone who cooks.",
    "I'm not sure how I feel about the new design.",
    "The meeting has been moved to 3pm in room 204.",
    "What a waste of money and time, never again",
    "Thanks so much for the quick reply, that solved it :)",
    "It does what it says on the box.",
    "@airline my flight got cancelled again and nobody tells us anything #fail",
    "Great camera, awful software. The pictures are stunning but the gallery app crashes "
    "every time I try to share an album, and the settings reset after every update. I want "
    "to like this phone, I really do, but three weeks in I am close to returning it.",
    "The film is long. The acting is fine. The ending surprised me.",
    "Couldn't be happier with the results",
    "Delivery was late and the box was damaged, but the item itself is fine.",
    "no",
    "The hotel staff were friendly, the room was clean and the breakfast was excellent.",
    "I waited forty minutes on hold just to be disconnected.",
    "Version 2.3 adds dark mode and fixes the login bug.",
    "Honestly? Overrated.",
    " ".join(["A very long review that goes on and on about many small things."] * 40),
]


@dataclass
class LabelledTexts:
    texts: list[str]
    labels: list[int]


def read_eval_csv(path: Path, label_names: list[str], limit: int | None = None) -> LabelledTexts:
    """Read the first `limit` rows of a CSV with `text` and `label` columns."""
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
    return LabelledTexts(texts, labels)
