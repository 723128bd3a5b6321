"""Every metric the predictor exports: names and label sets declared once, imported by the
code that records them and by the dashboards that query them.

prometheus_client objects are created lazily (`Metrics.create()`), inside the worker, after
BentoML has set PROMETHEUS_MULTIPROC_DIR, so that /metrics aggregates all workers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PREFIX = "predictor"
MODEL_LABELS = ("model", "variant", "device", "worker")

INFERENCE_SECONDS = f"{PREFIX}_inference_seconds"
BATCH_SIZE = f"{PREFIX}_batch_size"
BATCH_TOKENS = f"{PREFIX}_batch_tokens"
QUEUE_WAIT_SECONDS = f"{PREFIX}_queue_wait_seconds"
QUEUE_DEPTH = f"{PREFIX}_queue_depth"
REJECTED_TOTAL = f"{PREFIX}_rejected_total"
TRUNCATED_TOTAL = f"{PREFIX}_truncated_total"
MODEL_LOAD_SECONDS = f"{PREFIX}_model_load_seconds"
MODEL_INFO = f"{PREFIX}_model_info"
REQUESTS_TOTAL = f"{PREFIX}_requests_total"
REQUEST_SECONDS = f"{PREFIX}_request_seconds"
REQUESTS_IN_PROGRESS = f"{PREFIX}_requests_in_progress"
# BentoML's own HTTP metrics (per route, all workers; bentoml 1.4 `bentoml_service_*`).
HTTP_REQUESTS_TOTAL = "bentoml_service_request_total"
HTTP_REQUEST_SECONDS = "bentoml_service_request_duration_seconds"
HTTP_IN_PROGRESS = "bentoml_service_request_in_progress"

# Outcomes of one model call, as the `outcome` label of REQUESTS_TOTAL.
OUTCOMES = ("ok", "rejected", "error", "cancelled")

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128)
TOKEN_BUCKETS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


@dataclass
class Metrics:
    inference_seconds: Any
    batch_size: Any
    batch_tokens: Any
    queue_wait_seconds: Any
    queue_depth: Any
    rejected_total: Any
    truncated_total: Any
    model_load_seconds: Any
    model_info: Any
    requests_total: Any
    request_seconds: Any
    requests_in_progress: Any

    @classmethod
    def create(cls) -> Metrics:
        from prometheus_client import Counter, Gauge, Histogram

        return cls(
            inference_seconds=Histogram(
                INFERENCE_SECONDS,
                "Model run time per batch (tokenizer + forward pass)",
                MODEL_LABELS,
                buckets=LATENCY_BUCKETS,
            ),
            batch_size=Histogram(
                BATCH_SIZE, "Texts per executed batch", MODEL_LABELS, buckets=BATCH_BUCKETS
            ),
            batch_tokens=Histogram(
                BATCH_TOKENS,
                "Padded tokens per executed batch",
                MODEL_LABELS,
                buckets=TOKEN_BUCKETS,
            ),
            queue_wait_seconds=Histogram(
                QUEUE_WAIT_SECONDS,
                "Time a text waited before its batch started",
                MODEL_LABELS,
                buckets=LATENCY_BUCKETS,
            ),
            queue_depth=Gauge(
                QUEUE_DEPTH, "Texts waiting for a batch", MODEL_LABELS, multiprocess_mode="livesum"
            ),
            rejected_total=Counter(
                REJECTED_TOTAL, "Requests refused for overload", (*MODEL_LABELS, "reason")
            ),
            truncated_total=Counter(
                TRUNCATED_TOTAL, "Texts truncated to the model maximum", MODEL_LABELS
            ),
            model_load_seconds=Gauge(
                MODEL_LOAD_SECONDS,
                "Time to pull, verify, load and warm up",
                MODEL_LABELS,
                multiprocess_mode="liveall",
            ),
            model_info=Gauge(
                MODEL_INFO,
                "1 for each model served, by worker and device",
                (*MODEL_LABELS, "version", "sha256"),
                multiprocess_mode="liveall",
            ),
            requests_total=Counter(
                REQUESTS_TOTAL,
                "Model calls (one per request) by outcome: " + ", ".join(OUTCOMES),
                (*MODEL_LABELS, "outcome"),
            ),
            request_seconds=Histogram(
                REQUEST_SECONDS,
                "Time from a request reaching its model to its rows (queue wait + batches)",
                MODEL_LABELS,
                buckets=LATENCY_BUCKETS,
            ),
            requests_in_progress=Gauge(
                REQUESTS_IN_PROGRESS,
                "Requests inside a model (queued or running)",
                MODEL_LABELS,
                multiprocess_mode="livesum",
            ),
        )
