"""The study's "Base" service, as the naive baseline for the service-level benchmarks: BentoML
with a plain transformers `pipeline`, FP32 PyTorch, one text per call, no batching, no
length-aware padding, no ONNX. It answers the predictor's /analyze-sentiment body
(`{"text": ..., "model": ...}`), so the same load test drives both.

    BASELINE_MODEL_DIR=/path/to/hf-folder \
        uv run bentoml serve benchmarks.baseline.service:Baseline --port 3100

`python benchmarks/baseline/service.py --build DIR` writes roberta-base-synthetic's Hugging
Face folder (the study's architecture, the registry bootstrap's seeded weights) to serve."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import bentoml


@bentoml.service(workers=1, traffic={"timeout": 60})
class Baseline:
    def __init__(self) -> None:
        from transformers import pipeline

        folder = Path(os.environ.get("BASELINE_MODEL_DIR", "out/baseline-model"))
        self.name = folder.name
        self.classify = pipeline("text-classification", model=str(folder), device=-1, top_k=None)

    @bentoml.api(route="/analyze-sentiment")
    def analyze(self, text: str, model: str | None = None) -> dict[str, Any]:
        scores = self.classify(text, truncation=True)
        if scores and isinstance(scores[0], list):  # transformers 5 nests one text's scores
            scores = scores[0]
        best = max(scores, key=lambda s: s["score"])
        return {
            "model": self.name,
            "label": best["label"],
            "scores": {s["label"]: round(float(s["score"]), 6) for s in scores},
        }


def build(folder: Path) -> None:
    from modelserve_registry.bootstrap import build_roberta_synthetic

    build_roberta_synthetic(folder)
    print(f"wrote {folder}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--build":
        build(Path(sys.argv[2]))
    else:
        sys.exit(__doc__)
