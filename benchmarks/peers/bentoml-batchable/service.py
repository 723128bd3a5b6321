"""BentoML as its documentation recommends for a small model on CPU: one service, one
worker, a batchable API (BentoML's adaptive batching, at most 32 texts a batch). A
batchable API takes a list, so clients send {"texts": [text]} (loadtest --endpoint
analyze-list); BentoML concatenates the lists of concurrent requests into one batch.

    cd benchmarks/peers/bentoml-batchable
    PEER_MODEL_DIR=... uv run --locked bentoml serve service:Sentiment --port 8000"""

from __future__ import annotations

import bentoml
from peer_common import Classifier


# access log off, as in the predictor and every other peer: no peer pays for a log line
@bentoml.service(workers=1, traffic={"timeout": 60}, logging={"access": {"enabled": False}})
class Sentiment:
    def __init__(self) -> None:
        self.classify = Classifier()

    # max_latency_ms is BentoML's latency bound for a batch, past which it refuses (503):
    # generous, so the comparison measures its batching rather than its shedding
    @bentoml.api(
        route="/analyze-sentiment", batchable=True, max_batch_size=32, max_latency_ms=10_000
    )
    def analyze_sentiment(self, texts: list[str]) -> list[dict]:
        return self.classify(texts)
