"""Batching: what the adaptive batcher formed and what it cost (size, tokens, waits, runs)."""

from __future__ import annotations

from modelserve_dashboards.panels import (
    MODEL_FILTER,
    base,
    graph,
    mean,
    quantile,
    ratio,
    row,
    sum_rate,
)
from modelserve_metric_names import predictor as m

UID = "modelserve-batching"


def batch_size():
    return graph(
        "Texts per batch",
        "Mean and p99 batch size per model: above 1 means the batcher is merging requests.",
        "short",
        [
            (mean(m.BATCH_SIZE, "model"), "mean {{model}}"),
            (quantile(0.99, m.BATCH_SIZE, "model"), "p99 {{model}}"),
        ],
    )


def batches_per_second():
    return graph(
        "Batches per second",
        "Model runs per second, per worker: with batching this stays below the request rate.",
        "ops",
        [(sum_rate(m.BATCH_SIZE + "_count", "model, worker"), "{{model}} worker {{worker}}")],
    )


def tokens_per_batch():
    return graph(
        "Padded tokens per batch",
        "Tokens the model really computed per batch (texts x longest text in the batch).",
        "short",
        [
            (mean(m.BATCH_TOKENS, "model"), "mean {{model}}"),
            (quantile(0.99, m.BATCH_TOKENS, "model"), "p99 {{model}}"),
        ],
    )


def tokens_per_text():
    return graph(
        "Padded tokens per text",
        "Padding cost: tokens computed per text. Grows when short and long texts share batches.",
        "short",
        [
            (
                ratio(
                    sum_rate(m.BATCH_TOKENS + "_sum", "model"),
                    sum_rate(m.BATCH_SIZE + "_sum", "model"),
                ),
                "{{model}}",
            )
        ],
    )


def queue_wait():
    return graph(
        "Queue wait p50 / p99",
        "Time a text waited for its batch to start.",
        "s",
        [
            (quantile(0.5, m.QUEUE_WAIT_SECONDS, "model"), "p50 {{model}}"),
            (quantile(0.99, m.QUEUE_WAIT_SECONDS, "model"), "p99 {{model}}"),
        ],
    )


def inference_time():
    return graph(
        "Inference time per batch p50 / p99",
        "Tokenizer plus forward pass for one batch, per device.",
        "s",
        [
            (quantile(0.5, m.INFERENCE_SECONDS, "model, device"), "p50 {{model}} {{device}}"),
            (quantile(0.99, m.INFERENCE_SECONDS, "model, device"), "p99 {{model}} {{device}}"),
        ],
    )


def queue_depth():
    return graph(
        "Queue depth",
        "Texts waiting for a batch, summed over workers (bounded by max_queue, then 429).",
        "short",
        [(f"sum by (model) ({m.QUEUE_DEPTH}{{{MODEL_FILTER}}})", "{{model}}")],
    )


def dashboard():
    return (
        base(UID, "Predictor: batching", "What the adaptive batcher formed, and its costs.")
        .with_row(row("Batches"))
        .with_panel(batch_size())
        .with_panel(batches_per_second())
        .with_panel(tokens_per_batch())
        .with_panel(tokens_per_text())
        .with_row(row("Waiting and running"))
        .with_panel(queue_wait())
        .with_panel(inference_time())
        .with_panel(queue_depth())
    )
